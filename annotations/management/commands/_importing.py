"""Shared plumbing for the import commands: one transaction, a progress bar, one-line errors."""
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.core.validators import validate_slug
from django.db import transaction
from tqdm import tqdm

from annotations.imports.parse import ImportFileError
from annotations.models import Dataset
from annotations.services import parse_system_names


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
    """--systems NAME1,NAME2 (`services.parse_system_names`), or a CommandError naming the option."""
    try:
        return parse_system_names(value)
    except ValueError as exc:
        raise CommandError(f"{option}: {exc}") from None
