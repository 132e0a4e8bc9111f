"""`import_pairwise_csv FILE --dataset SLUG --study SLUG --systems NAME1,NAME2`: the separability paper's
crowd-batch format (generations of both systems and the historical votes)."""
from django.conf import settings
from django.core.management.base import BaseCommand

from annotations.imports.parse import parse_pairwise_csv
from annotations.imports.write import write_pairwise
from annotations.models import Study

from ._importing import check_slug, check_system_names, progress_bar, run_atomically_or_exit


class Command(BaseCommand):
    help = ("Import a crowd batch in the format released with the separability paper (WorkerId, "
            "Input.model{1,2}_summary1..5, Input.id1..5, Answer.pref1..5). System 1 is the first name in "
            "--systems (the first model in the file name).")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--study", required=True, help="Study slug (created if new).")
        parser.add_argument("--systems", required=True, help="NAME1,NAME2")
        parser.add_argument("--max-text-bytes", type=int, default=settings.IMPORT_MAX_TEXT_BYTES)

    def handle(self, *args, **options):
        check_slug("--dataset", options["dataset"])
        check_slug("--study", options["study"], Study)
        names = check_system_names("--systems", options["systems"])

        def do_import():
            parsed = parse_pairwise_csv(options["file"], options["max_text_bytes"])
            with progress_bar(len(parsed.judgments), "votes") as bar:
                return write_pairwise(parsed, options["dataset"], options["study"], names, progress=bar.update)

        study, summary = run_atomically_or_exit(self, do_import)
        self.stdout.write(f"{study.slug}: {summary.as_text()}")
