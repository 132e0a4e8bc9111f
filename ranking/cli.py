"""The one front end of ranking a vote file from the command line, shared by `python -m ranking VOTES.csv`
(no Django) and `manage.py leaderboard --from-csv VOTES.csv`: the options, the reading, the anchoring,
the table. Plain Python: the vote file is read by the one reader of that format,
`annotations.imports.parse.read_votes_csv` (Django-free), and ranked by `ranking.ratings`.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace

from annotations.imports.parse import ImportFileError, read_votes_csv

from .ratings import METHOD_TITLES, METHODS, Leaderboard, RatingError, compute_leaderboard

FILE_HELP = ("CSV with instance_id,system_a,system_b,sample_a,sample_b,winner,annotator[,created_at][,weight] "
             "(as import_votes reads and the dashboard exports), or Chatbot Arena's model_a,model_b,winner")
ABOUT = ("Chatbot Arena battle tables saved as CSV (model_a, model_b, winner in model_a, model_b, tie, "
         "tie (bothbad); optional question_id, judge, tstamp) are read as they are; 'tie (bothbad)' is a "
         "both-bad vote. The weighted methods need a weight column (0 to 1) in the file; weights below 0.05 "
         "count as 0.05. Ratings are bootstrap medians (with --rounds 0: Elo in file order, or the "
         "Bradley-Terry maximum-likelihood estimate).")


class CommandLineError(Exception):
    """Bad input: the one line to print on standard error (exit status 1)."""


def add_rating_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both commands take (the file itself is named differently by each)."""
    parser.add_argument("--method", choices=METHODS, default="bt", help="rating method (default: bt)")
    parser.add_argument("--json", action="store_true",
                        help='print {"method", "ratings": [{"system", "rating", "ci_low", "ci_high", "rank", '
                             '"votes", "win_rate"}], ...} instead of a table')
    parser.add_argument("--matrices", action="store_true", help="with --json: add win-rate and vote-count matrices")
    parser.add_argument("--rounds", type=int, default=100, help="bootstrap rounds for the intervals (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--k", type=float, default=4.0, help="Elo K factor (default 4)")
    parser.add_argument("--anchor", metavar="SYSTEM=RATING",
                        help="shift every rating (and interval) so SYSTEM gets RATING, as published leaderboards "
                             "do (e.g. Chatbot Arena anchors mixtral-8x7b-instruct-v0.1 at 1114); ranks are unchanged")
    parser.add_argument("--both-bad", choices=("tie", "drop"), default="tie",
                        help="count 'both bad' votes as ties (default) or drop them (a study's own board uses "
                             "the study's setting)")


def check_rounds(rounds: int) -> None:
    if rounds < 0:
        raise CommandLineError("--rounds must be 0 or more")


def board_from_csv(path: str, method: str, rounds: int = 100, seed: int = 0, both_bad: str = "tie",
                   k: float = 4.0) -> Leaderboard:
    """The leaderboard of a vote file; CommandLineError names the file, line and field of what is wrong."""
    check_rounds(rounds)
    try:
        table = read_votes_csv(path)
    except ImportFileError as error:
        raise CommandLineError(str(error)) from None
    weighted = method.startswith("weighted")
    if weighted and table.weight is None:
        raise CommandLineError(f"{path}:1: weight: missing column; --method {method} needs a per-vote weight in "
                               "[0, 1] (e.g. the instance's normalised separability clipped to [0, 1])")
    try:
        return compute_leaderboard(table.system_a, table.system_b, table.winner, method=method,
                                   weights=table.weight if weighted else None, both_bad=both_bad,
                                   rounds=rounds, seed=seed, k=k)
    except RatingError as error:
        raise CommandLineError(f"{path}: {error}") from None


def anchored(board: Leaderboard, anchor: str) -> Leaderboard:
    """`--anchor SYSTEM=RATING`: every rating and interval shifted by the same amount."""
    name, _, value = anchor.rpartition("=")
    try:
        target = float(value)
    except ValueError:
        raise CommandLineError(f"--anchor takes SYSTEM=RATING, got {anchor!r}") from None
    try:
        shift = target - board.row(name).rating
    except KeyError:
        raise CommandLineError(f"--anchor: no system {name!r} in these votes") from None
    board.rows = [replace(row, rating=row.rating + shift, ci_low=row.ci_low + shift, ci_high=row.ci_high + shift)
                  for row in board.rows]
    board.notes.append(f"ratings shifted by {shift:+.3f} so that {name} = {target:g}")
    return board


def format_table(board: Leaderboard, source: str) -> str:
    """An aligned text table, best system first."""
    header = ("rank", "system", "rating", "95% CI low", "95% CI high", "votes", "win rate")
    body = [(str(row.rank), row.system, f"{row.rating:.1f}", f"{row.ci_low:.1f}", f"{row.ci_high:.1f}",
             f"{row.votes:,}", "" if math.isnan(row.win_rate) else f"{100 * row.win_rate:.1f}%")
            for row in board.rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: tuple[str, ...] | list[str]) -> str:
        # The system name is the only left-aligned column.
        return "  ".join(cell.ljust(w) if i == 1 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(cells, widths, strict=True)))

    rounds = f"{board.rounds} bootstrap rounds, seed {board.seed}" if board.rounds else "no bootstrap"
    title = f"{METHOD_TITLES[board.method]} from {source}: {board.votes_used:,} votes, {len(board.rows)} systems"
    out = [f"{title}, {rounds}", line(header), line(["-" * w for w in widths])]
    out += [line(cells) for cells in body]
    out += [f"note: {note}" for note in board.notes]
    return "\n".join(out)


def render(board: Leaderboard, source: str, as_json: bool = False, matrices: bool = False,
           anchor: str | None = None) -> str:
    """What both commands print: the table or the JSON, after the optional anchoring."""
    if anchor:
        board = anchored(board, anchor)
    if as_json:
        return json.dumps(board.to_dict(matrices=matrices), indent=2)
    return format_table(board, source)
