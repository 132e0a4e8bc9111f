"""`export_separability --dataset SLUG`: one JSON line per (instance, system pair, metric)."""
import json

from django.core.management.base import BaseCommand, CommandError

from annotations.models import Dataset
from separability.exports import iter_separability_records


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--metric", help="Only this metric.")
        parser.add_argument("--output", help="Write to this file instead of stdout.")

    def handle(self, *args, **options):
        dataset = Dataset.objects.filter(slug=options["dataset"]).first()
        if dataset is None:
            raise CommandError(f"no dataset {options['dataset']!r}")
        out = open(options["output"], "w", encoding="utf-8") if options["output"] else self.stdout
        try:
            count = 0
            for record in iter_separability_records(dataset, options["metric"]):
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
        finally:
            if options["output"]:
                out.close()
        if count == 0:
            self.stderr.write(f"dataset {dataset.slug!r} has no separability yet: run compute_separability")
