"""`leaderboard --study SLUG` or `leaderboard --from-csv VOTES.csv`: rank systems from the command line.

With --study the votes come from the database (the same votes and weights the site uses); with
--from-csv they come from a vote file and no database is touched, so researchers can rank any vote file,
including Chatbot Arena's battle tables. Bad input: one line on stderr and exit status 1.
"""
import json
from dataclasses import replace

from django.core.management.base import BaseCommand, CommandError

from ranking.ratings import METHOD_TITLES, METHODS, Leaderboard, RatingError, compute_leaderboard
from ranking.votes_csv import VoteFileError, read_votes_csv


def format_table(board: Leaderboard, source: str) -> str:
    """An aligned text table, best system first."""
    header = ("rank", "system", "rating", "95% CI low", "95% CI high", "votes", "win rate")
    body = [(str(row.rank), row.system, f"{row.rating:.1f}", f"{row.ci_low:.1f}", f"{row.ci_high:.1f}",
             str(row.votes), f"{100 * row.win_rate:.1f}%") for row in board.rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells):
        # The system name is the only left-aligned column.
        return "  ".join(cell.ljust(w) if i == 1 else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths)))

    rounds = f"{board.rounds} bootstrap rounds, seed {board.seed}" if board.rounds else "no bootstrap"
    title = f"{METHOD_TITLES[board.method]} from {source}: {board.votes_used} votes, {len(board.rows)} systems"
    out = [f"{title}, {rounds}", line(header), line(["-" * w for w in widths])]
    out += [line(cells) for cells in body]
    out += [f"note: {note}" for note in board.notes]
    return "\n".join(out)


class Command(BaseCommand):
    help = ("Leaderboard (Elo, separability-weighted Elo or Bradley-Terry with 95% bootstrap intervals) of a "
            "study's votes, or of a CSV vote file without any database: columns instance_id,system_a,system_b,"
            "sample_a,sample_b,winner,annotator[,created_at][,weight] as import_votes reads, or Chatbot Arena's "
            "model_a,model_b,winner. The weighted methods need the weight column (0 to 1) in a file; weights below "
            "0.05 count as 0.05. Ratings are bootstrap medians; with --rounds 0 Elo in vote order or the "
            "Bradley-Terry maximum-likelihood estimate.")

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--study", metavar="SLUG", help="rank the votes stored for this study")
        source.add_argument("--from-csv", metavar="VOTES.csv", help="rank the votes of this CSV file (no database)")
        parser.add_argument("--method", choices=METHODS, default="bt", help="rating method (default: bt)")
        parser.add_argument("--json", action="store_true",
                            help='print {"method", "ratings": [{"system", "rating", "ci_low", "ci_high", "rank", '
                                 '"votes", "win_rate"}], ...} instead of a table')
        parser.add_argument("--rounds", type=int, default=100, help="bootstrap rounds for the intervals (default 100)")
        parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
        parser.add_argument("--anchor", metavar="SYSTEM=RATING",
                            help="shift every rating (and interval) so SYSTEM gets RATING, as published leaderboards "
                                 "do (e.g. Chatbot Arena anchors mixtral-8x7b-instruct-v0.1 at 1114); ranks are unchanged")
        parser.add_argument("--both-bad", choices=("tie", "drop"), default="tie",
                            help="with --from-csv: count 'both bad' as a tie (default) or drop it; "
                                 "--study uses the study's own setting")

    def handle(self, *args, **options):
        method, rounds, seed = options["method"], options["rounds"], options["seed"]
        if rounds < 0:
            raise CommandError("--rounds must be 0 or more")
        if options["from_csv"]:
            source = options["from_csv"]
            board = self.from_csv(source, method, rounds, seed, options["both_bad"])
        else:
            source = f"study {options['study']}"
            board = self.from_study(options["study"], method, rounds, seed)
        if options["anchor"]:
            board = self.anchored(board, options["anchor"])
        if options["json"]:
            self.stdout.write(json.dumps(board.to_dict(), indent=2))
        else:
            self.stdout.write(format_table(board, source))

    def anchored(self, board: Leaderboard, anchor: str) -> Leaderboard:
        name, _, value = anchor.rpartition("=")
        try:
            target = float(value)
        except ValueError:
            raise CommandError(f"--anchor takes SYSTEM=RATING, got {anchor!r}") from None
        try:
            shift = target - board.row(name).rating
        except KeyError:
            raise CommandError(f"--anchor: no system {name!r} in these votes") from None
        board.rows = [replace(row, rating=row.rating + shift, ci_low=row.ci_low + shift, ci_high=row.ci_high + shift)
                      for row in board.rows]
        board.notes.append(f"ratings shifted by {shift:+.3f} so that {name} = {target:g}")
        return board

    def fail(self, message: str):
        self.stderr.write(message)
        raise SystemExit(1)

    def from_csv(self, path, method, rounds, seed, both_bad) -> Leaderboard:
        try:
            table = read_votes_csv(path)
        except VoteFileError as error:
            self.fail(str(error))
        weighted = method.startswith("weighted")
        if weighted and table.weight is None:
            self.fail(f"{path}:1: weight: missing column; --method {method} needs a per-vote weight in [0, 1] "
                      "(e.g. the instance's normalised separability clipped to [0, 1])")
        try:
            return compute_leaderboard(table.system_a, table.system_b, table.winner, method=method,
                                       weights=table.weight if weighted else None, both_bad=both_bad,
                                       rounds=rounds, seed=seed)
        except RatingError as error:
            self.fail(f"{path}: {error}")

    def from_study(self, slug, method, rounds, seed) -> Leaderboard:
        from annotations.models import Study
        from ranking.services import study_leaderboard

        study = Study.objects.filter(slug=slug).first()
        if study is None:
            raise CommandError(f"no study {slug!r}")
        try:
            return study_leaderboard(study, method, rounds=rounds, seed=seed)
        except RatingError as error:
            self.fail(f"study {slug}: {error}")
