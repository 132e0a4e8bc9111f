"""`export_votes --study SLUG --format csv|jsonl|dpo [--output FILE]`: a study's votes (or DPO pairs).

Writes to stdout, or to FILE through a temporary file renamed into place (nothing half-written).
Annotators appear under their pseudonym only.
"""
import os
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotations.models import Study
from dashboard import exports


class Command(BaseCommand):
    help = ("Export a study's votes as CSV or JSONL, or its decisive votes as DPO pairs "
            "({prompt, chosen, rejected} JSONL). Annotators appear under their pseudonym only.")

    def add_arguments(self, parser):
        parser.add_argument("--study", required=True, help="Study slug.")
        parser.add_argument("--format", required=True, choices=exports.FORMATS, dest="fmt")
        parser.add_argument("--output", help="File to write (default: stdout).")

    def handle(self, *args, study, fmt, output=None, **options):
        study_obj = Study.objects.filter(slug=study).first()
        if study_obj is None:
            raise CommandError(f"no study {study!r}")
        total = exports.export_size(study_obj, fmt)
        records = tqdm(exports.records_for(study_obj, fmt), total=total, desc="records", file=sys.stderr,
                       disable=None if output else True)
        chunks = exports.iter_csv(records) if fmt == "csv" else exports.iter_jsonl(records)
        if not output:
            for chunk in chunks:
                self.stdout.write(chunk, ending="")
            return
        target = Path(output)
        if target.parent and not target.parent.is_dir():
            raise CommandError(f"{target.parent} is not a directory")
        partial = target.with_name(f".{target.name}.part")
        try:
            with open(partial, "w", encoding="utf-8", newline="") as out:
                for chunk in chunks:
                    out.write(chunk)
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        self.stderr.write(f"wrote {records.n} records to {target}")
