"""`import_prompts FILE --dataset SLUG`: a dataset's instances (inputs only) for the site to sample outputs for."""
from django.conf import settings
from django.core.management.base import BaseCommand

from annotations.imports.parse import parse_prompts
from annotations.imports.write import write_generations
from annotations.management.commands._importing import check_slug, run_atomically_or_exit
from annotations.services import get_or_create_dataset


class Command(BaseCommand):
    help = ("Import prompts without outputs. JSONL: one object per instance with instance_id, input and optional "
            "reference and metadata. CSV: columns instance_id,input[,reference]. Then `generate` samples them.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--dataset", required=True, help="Dataset slug (created if new).")
        parser.add_argument("--format", choices=["jsonl", "csv"], help="Default: from the file extension.")
        parser.add_argument("--max-text-bytes", type=int, default=settings.IMPORT_MAX_TEXT_BYTES)

    def handle(self, *args, **options):
        check_slug("--dataset", options["dataset"])

        def do_import():
            parsed = parse_prompts(options["file"], options["max_text_bytes"], fmt=options["format"])
            return write_generations(get_or_create_dataset(options["dataset"]), parsed)

        summary = run_atomically_or_exit(self, do_import)
        self.stdout.write(f"{options['dataset']}: {summary.as_text()}")
