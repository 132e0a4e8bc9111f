"""`import_generations FILE --dataset SLUG`: JSONL or CSV generations into a dataset."""
from django.conf import settings
from django.core.management.base import BaseCommand

from annotations.imports.parse import parse_generations
from annotations.imports.write import write_generations
from annotations.services import get_or_create_dataset

from ._importing import check_slug, progress_bar, run_atomically_or_exit


class Command(BaseCommand):
    help = ("Import generations. JSONL: one object per (instance, system) with instance_id, input, system, "
            "generations (list). CSV: columns instance_id,input,system,sample_index,text.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--dataset", required=True, help="Dataset slug (created if new).")
        parser.add_argument("--format", choices=["jsonl", "csv"], help="Default: from the file extension.")
        parser.add_argument("--max-text-bytes", type=int, default=settings.IMPORT_MAX_TEXT_BYTES)

    def handle(self, *args, **options):
        check_slug("--dataset", options["dataset"])

        def do_import():
            parsed = parse_generations(options["file"], options["max_text_bytes"], fmt=options["format"])
            dataset = get_or_create_dataset(options["dataset"])
            with progress_bar(len(parsed.generations), "generations") as bar:
                return write_generations(dataset, parsed, progress=bar.update)

        summary = run_atomically_or_exit(self, do_import)
        self.stdout.write(f"{options['dataset']}: {summary.as_text()}")
