"""Shared plumbing for the import commands: one transaction, a progress bar, one-line errors."""
import sys

from django.db import transaction
from tqdm import tqdm

from annotations.importers import ImportFileError


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
