"""`leaderboard --study SLUG` or `leaderboard --from-csv VOTES.csv`: rank systems from the command line.

With --study the votes come from the database (the same votes and weights the site uses); with
--from-csv they come from a vote file and no database is touched, exactly as `python -m ranking` reads
it (both are `ranking.cli`). Bad input: one line on stderr and exit status 1.
"""
from typing import NoReturn

from django.core.management.base import BaseCommand, CommandError

from annotations.models import Study
from ranking.cli import ABOUT, FILE_HELP, CommandLineError, add_rating_arguments, board_from_csv, check_rounds, render
from ranking.ratings import RatingError
from ranking.services import study_leaderboard


class Command(BaseCommand):
    help = ("Leaderboard (Elo, separability-weighted Elo or Bradley-Terry with 95% bootstrap intervals) of a "
            "study's votes, or of a CSV vote file without any database. " + ABOUT)

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--study", metavar="SLUG", help="rank the votes stored for this study")
        source.add_argument("--from-csv", metavar="VOTES.csv", help=f"rank the votes of this file (no database): "
                                                                    f"{FILE_HELP}")
        add_rating_arguments(parser)

    def handle(self, *args, **options):
        try:
            if options["from_csv"]:
                source = options["from_csv"]
                board = board_from_csv(source, options["method"], rounds=options["rounds"], seed=options["seed"],
                                       both_bad=options["both_bad"], k=options["k"])
            else:
                source = f"study {options['study']}"
                board = self.from_study(options["study"], options["method"], options["rounds"], options["seed"])
            self.stdout.write(render(board, source, as_json=options["json"], matrices=options["matrices"],
                                     anchor=options["anchor"]))
        except CommandLineError as error:
            self.fail(str(error))

    def fail(self, message: str) -> NoReturn:
        self.stderr.write(message)
        raise SystemExit(1)

    def from_study(self, slug, method, rounds, seed):
        check_rounds(rounds)
        study = Study.objects.filter(slug=slug).first()
        if study is None:
            raise CommandError(f"no study {slug!r}")
        try:
            return study_leaderboard(study, method, rounds=rounds, seed=seed)
        except RatingError as error:
            raise CommandLineError(f"study {slug}: {error}") from None
