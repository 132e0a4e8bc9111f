"""Command line: rank the systems of a vote file without the site or a database.

    python -m ranking VOTES.csv [--method elo|weighted_elo|bt|weighted_bt] [--json] [--rounds N] [--seed S]

The options, the reading and the output are `ranking.cli`'s, shared with `manage.py leaderboard --from-csv`;
the file layouts are described with the reader, `annotations.imports.parse.read_votes_csv` (this project's
vote export, or Chatbot Arena's model_a,model_b,winner). Exit status 1 on bad input, with the reason on
standard error.
"""
from __future__ import annotations

import argparse
import sys

from .cli import ABOUT, FILE_HELP, CommandLineError, add_rating_arguments, board_from_csv, render


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ranking",
        description="Leaderboard (Elo or Bradley-Terry with bootstrap intervals) from a CSV file of pairwise votes.",
        epilog=ABOUT)
    parser.add_argument("file", help=FILE_HELP)
    add_rating_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        board = board_from_csv(args.file, args.method, rounds=args.rounds, seed=args.seed, both_bad=args.both_bad,
                               k=args.k)
        print(render(board, args.file, as_json=args.json, matrices=args.matrices, anchor=args.anchor))
    except CommandLineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
