"""`judge_study --study S --judge NAME [--endpoint E] [--wait]`: ask an LLM judge about every comparison of a
study in both orders (only what it has not answered yet), through the judge's model endpoint."""
import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotations.models import Study
from generation.services import failures_by_kind, wait_for
from judges import runs
from judges.models import JudgeRun
from lib.tasks import tasks_run_eagerly


class Command(BaseCommand):
    help = "Run an LLM judge on a study's comparisons, each in both orders."

    def add_arguments(self, parser):
        parser.add_argument("--study", required=True)
        parser.add_argument("--judge", required=True, metavar="NAME",
                            help="The judge; a new one is created with --endpoint (and the default prompt).")
        parser.add_argument("--endpoint", default="", metavar="E",
                            help="The model endpoint to ask (required for a new judge; a judge keeps its endpoint).")
        parser.add_argument("--temperature", type=float, default=0.0)
        parser.add_argument("--max-tokens", type=int, default=1024)
        parser.add_argument("--wait", action="store_true",
                            help="Wait with a progress bar until the run has finished. Embedded (no broker) the "
                                 "command always waits: the work runs in it.")

    def handle(self, *args, **options):
        study = Study.objects.filter(slug=options["study"]).first()
        if study is None:
            raise CommandError(f"--study: no study {options['study']!r}")
        settings = runs.JudgeRunSettings(temperature=options["temperature"], max_tokens=options["max_tokens"])
        try:
            run, chunks = runs.start_run(study, options["judge"], options["endpoint"], settings)
        except runs.JudgeRunError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"judge run {run.pk}: {run.judge.name} on {run.total // 2} comparisons x 2 orders = "
                          f"{run.total} answers ({run.existing} already stored, {run.total - run.existing} to ask "
                          f"for) in {len(chunks)} chunks")
        eager = tasks_run_eagerly()
        runs.launch(run, chunks)  # embedded: in a thread of this process, which the bar follows
        if not (options["wait"] or eager):
            self.stdout.write(f"queued; follow it on /judges/{study.slug}/ or with --wait")
            return
        bar = tqdm(total=run.total, initial=run.existing, unit="answer", file=sys.stderr, disable=None)

        def show(current):
            bar.update(current.done - bar.n)
            bar.set_postfix(unparseable=current.unparseable, failed=current.failed, refresh=False)

        run = wait_for(run, show)
        bar.close()
        self.stdout.write(f"judge run {run.pk}: {run.get_status_display()}: {run.done}/{run.total} answers stored "
                          f"({run.unparseable} unparseable), {run.failed} failed; tokens in {run.tokens_in}, "
                          f"out {run.tokens_out}")
        for row in failures_by_kind(run):
            self.stderr.write(f"  {row['n']} x {row['kind']}: {row['example']}")
        if run.error:
            self.stderr.write(f"  {run.error}")
        if run.status in (JudgeRun.Status.FAILED, JudgeRun.Status.CANCELLED):
            raise SystemExit(1)
