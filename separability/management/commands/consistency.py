"""`consistency --study SLUG`: per-unit rating consistency and its Spearman correlation with separability."""
import json

from django.core.management.base import BaseCommand, CommandError

from annotations.models import Study
from separability.study_consistency import study_consistency


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--study", required=True)
        parser.add_argument("--metric", help="Separability metric (default: the study's).")
        parser.add_argument("--summary", action="store_true", help="Leave out the per-unit list.")

    def handle(self, *args, **options):
        study = Study.objects.filter(slug=options["study"]).first()
        if study is None:
            raise CommandError(f"no study {options['study']!r}")
        report = study_consistency(study, options["metric"])
        if options["summary"]:
            report.pop("units")
        self.stdout.write(json.dumps(report, indent=2))
