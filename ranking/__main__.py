"""Command line: rank the systems of a vote file without the site or a database.

    python -m ranking VOTES.csv [--method elo|weighted_elo|bt|weighted_bt] [--json] [--rounds N] [--seed S]

The file layouts are described in ranking/votes_csv.py (this project's vote export, or Chatbot Arena's
model_a,model_b,winner). The weighted methods need a `weight` column. Exit status 1 on bad input, with
the reason on standard error.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from .ratings import METHOD_TITLES, METHODS, Leaderboard, RatingError, compute_leaderboard
from .votes_csv import VoteFileError, read_votes_csv


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ranking",
        description="Leaderboard (Elo or Bradley-Terry with bootstrap intervals) from a CSV file of pairwise votes.",
        epilog="Chatbot Arena battle tables saved as CSV (model_a, model_b, winner in model_a, model_b, tie, "
               "tie (bothbad); optional question_id, judge, tstamp) are read as they are; 'tie (bothbad)' "
               "is a both-bad vote. Weighted methods need a weight column (0 to 1) in the file; weights below 0.05 "
               "count as 0.05. Ratings are bootstrap medians (with --rounds 0: Elo in file order, or the "
               "Bradley-Terry maximum-likelihood estimate).",
    )
    parser.add_argument("file", help="CSV with instance_id,system_a,system_b,sample_a,sample_b,winner,annotator"
                                     "[,created_at][,weight], or Chatbot Arena's model_a,model_b,winner")
    parser.add_argument("--method", choices=METHODS, default="bt", help="rating method (default: bt)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--rounds", type=int, default=100, help="bootstrap rounds for the intervals (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--both-bad", choices=("tie", "drop"), default="tie",
                        help="count 'both bad' votes as ties (default) or drop them")
    parser.add_argument("--k", type=float, default=4.0, help="Elo K factor (default 4)")
    parser.add_argument("--matrices", action="store_true", help="with --json: add win-rate and vote-count matrices")
    return parser


def format_table(board: Leaderboard, path: str) -> str:
    lines = [f"{METHOD_TITLES[board.method]} from {path}: {board.votes_used:,} votes, {len(board.rows)} systems"]
    width = max(6, *(len(row.system) for row in board.rows))
    lines.append(f"{'rank':>4}  {'system':<{width}}  {'rating':>8}  {'95% interval':>19}  "
                 f"{'votes':>7}  {'win rate':>8}")
    for row in board.rows:
        interval = f"[{row.ci_low:8.1f}, {row.ci_high:8.1f}]"
        rate = "" if math.isnan(row.win_rate) else f"{100 * row.win_rate:7.1f}%"
        lines.append(f"{row.rank:>4}  {row.system:<{width}}  {row.rating:8.1f}  {interval:>19}  "
                     f"{row.votes:>7,}  {rate:>8}")
    lines.extend(f"note: {note}" for note in board.notes)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        table = read_votes_csv(args.file)
        board = compute_leaderboard(
            table.system_a,
            table.system_b,
            table.winner,
            method=args.method,
            weights=table.weight if args.method.startswith("weighted") else None,
            both_bad=args.both_bad,
            rounds=args.rounds,
            seed=args.seed,
            k=args.k,
        )
    except VoteFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except RatingError as error:
        hint = ""
        if args.method.startswith("weighted") and table.weight is None:
            hint = " (add a weight column to the file)"
        print(f"error: {args.file}: {error}{hint}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(board.to_dict(matrices=args.matrices), indent=2))
    else:
        print(format_table(board, args.file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
