"""`judge_agreement --from-csv HUMANS.csv --judge NAME=JUDGE.csv [--judge ...] [--json]`: each judge's
agreement with the human majority and Cohen's kappa, from vote files alone (no database; `judges.cli`).
Bad input: one line `FILE:LINE: field: what is wrong` on stderr and exit status 1."""
from typing import NoReturn

from django.core.management.base import BaseCommand

from judges.cli import CommandLineError, judge_agreement, judge_file, render


class Command(BaseCommand):
    help = ("Agreement of LLM judges with the human majority (share of equal labels, Cohen's kappa over a/b/tie), "
            "from vote CSV files (instance_id,system_a,system_b,sample_a,sample_b,winner,annotator); no database.")
    requires_system_checks: list[str] = []  # reads files only

    def add_arguments(self, parser):
        parser.add_argument("--from-csv", metavar="HUMANS.csv", required=True, help="the human votes")
        parser.add_argument("--judge", metavar="NAME=JUDGE.csv", action="append", default=[],
                            help="a judge's verdicts in the same format (repeat for several judges)")
        parser.add_argument("--json", action="store_true",
                            help='print {"judges": [{"judge", "comparisons", "agreement", "cohen_kappa"}]}')

    def handle(self, *args, **options):
        try:
            judges = [judge_file(argument) for argument in options["judge"]]
            self.stdout.write(render(judge_agreement(options["from_csv"], judges), options["json"]))
        except CommandLineError as error:
            self.fail(str(error))

    def fail(self, message: str) -> NoReturn:
        self.stderr.write(message)
        raise SystemExit(1)
