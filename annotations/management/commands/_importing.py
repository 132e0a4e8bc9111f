"""Shared plumbing for the import commands: one transaction, a progress bar, one-line errors."""
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.core.validators import validate_slug
from django.db import transaction
from tqdm import tqdm

from annotations.importers import ImportFileError
from annotations.models import Dataset, System


def progress_bar(total: int, label: str):
    return tqdm(total=total, desc=label, unit="row", file=sys.stderr, disable=None, leave=False)


def run_atomically_or_exit(command, func, *args, **kwargs):
    """Run `func` in one transaction; an ImportFileError prints its one line and exits 1."""
    try:
        with transaction.atomic():
            return func(*args, **kwargs)
    except ImportFileError as exc:
        command.stderr.write(str(exc))
        raise SystemExit(1) from None


def check_slug(option: str, value: str, model=Dataset) -> str:
    """A --dataset / --study value that can be stored as `model`'s slug, or a CommandError naming the option."""
    limit = model._meta.get_field("slug").max_length
    if len(value) > limit:
        raise CommandError(f"{option}: {len(value)} characters, over the limit of {limit}")
    try:
        validate_slug(value)
    except ValidationError:
        raise CommandError(f"{option}: {value!r} is not a slug (letters, digits, '-' and '_' only)") from None
    return value


def check_system_names(option: str, value: str) -> tuple[str, str]:
    """--systems NAME1,NAME2: two different names, each short enough to store."""
    names = tuple(n.strip() for n in value.split(","))
    if len(names) != 2 or not all(names) or names[0] == names[1]:
        raise CommandError(f"{option} takes two different names separated by a comma")
    limit = System._meta.get_field("name").max_length
    for name in names:
        if len(name) > limit:
            raise CommandError(f"{option}: a name of {len(name)} characters, over the limit of {limit}")
    return names
