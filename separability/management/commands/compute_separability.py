"""`compute_separability --dataset SLUG [--metric ...]`: queue (or, embedded, run) a separability run."""
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotations.models import Dataset
from separability.models import SeparabilityRun


class Command(BaseCommand):
    help = ("Compute per-instance separability for every system pair of a dataset. With a broker configured "
            "the work is queued on the 'gpu' queue (use --wait to follow it); embedded, it runs here.")

    def add_arguments(self, parser):
        from separability.engine import METRICS

        parser.add_argument("--dataset", required=True)
        parser.add_argument("--metric", action="append", choices=METRICS,
                            help="Repeat for several; default: all of " + ", ".join(METRICS))
        parser.add_argument("--wait", action="store_true", help="With a broker: follow the run until it ends.")

    def handle(self, *args, **options):
        from separability.services import compute_dataset_separability

        if not Dataset.objects.filter(slug=options["dataset"]).exists():
            raise CommandError(f"no dataset {options['dataset']!r}")
        run = compute_dataset_separability(options["dataset"], options["metric"])
        if settings.CELERY_BROKER_URL and options["wait"]:
            run = self.follow(run)
        self.stdout.write(f"run {run.pk}: {run.status}, {run.done}/{run.total} instances, "
                          f"device {run.device or 'pending'}, timings {run.timings}")
        if run.status == SeparabilityRun.Status.FAILED:
            for error in run.errors:
                self.stderr.write(f"chunk {error['chunk']}: {error['error']}")
            raise SystemExit(1)

    def follow(self, run):
        with tqdm(total=run.total, desc="instances", file=sys.stderr, disable=None) as bar:
            while run.status in (SeparabilityRun.Status.QUEUED, SeparabilityRun.Status.RUNNING):
                time.sleep(1)
                run.refresh_from_db()
                bar.update(run.done - bar.n)
        return run
