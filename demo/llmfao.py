"""LLMFAO (Ustalov; demo/data/llmfao/, CC BY 4.0): 59 chat models on 13 prompts, the crowd's 8,931 votes and
GPT-4's verdicts on the same 2,139 pairs, read into this project's shapes, and written as vote files.

- An instance is a prompt, named by its `slug`; a system is a model, named by its `name`; each model has
  one output per prompt (k = 1: separability is undefined, and the site says so).
- A vote's `left` / `right` are the models shown on each side and `winner` names the displayed side
  (`left`, `right`, `tie`), so a vote becomes system_a = left, system_b = right, winner a / b / tie: the
  order the voter saw is kept (the judge's position bias is measured from it).
- 289 of the 2,139 pairs show an empty output (a model that answered nothing). The vote files keep them
  (they name no text); the demo study skips them, as it skips PandaLM's empty responses (an empty text is
  never stored: `annotations.imports.write.write_generations`), and `load_demo` says how many.

`python -m demo.llmfao OUTDIR` writes OUTDIR/crowd-votes.csv and OUTDIR/gpt4-votes.csv in the votes CSV
format of the README, for `judge_agreement --from-csv`. Pure Python, no Django.
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from annotations.imports.parse import (
    ImportFileError,
    ParsedGeneration,
    ParsedGenerations,
    ParsedInstance,
    ParsedVote,
    check_text,
    read_json_line,
    read_utf8_text,
    shown,
)

LLMFAO_DIR = Path(__file__).resolve().parent / "data" / "llmfao"
CROWD_FILE = "crowd-comparisons.csv"
GPT4_FILE = "gpt4-crowd-comparisons.csv"
GPT4_JUDGE = "gpt-4"
WINNERS = {"left": "a", "right": "b", "tie": "tie"}
CROWD_COLUMNS = ("id", "prompt", "model_x", "model_y", "worker", "winner", "left", "right")
GPT4_COLUMNS = ("id", "prompt", "model_x", "model_y", "winner", "left", "right")


@dataclass
class LLMFAO:
    generations: ParsedGenerations  # every model's output on every compared prompt, empty ones left out
    crowd: list[ParsedVote]
    gpt4: list[ParsedVote]
    empty_pairs: set[tuple[str, str, str]] = field(default_factory=set)  # (prompt slug, left, right)

    def judgeable(self, votes: Iterable[ParsedVote]) -> list[ParsedVote]:
        """The votes whose two outputs are not empty (the ones a study can hold)."""
        return [v for v in votes if (v.instance_id, v.system_a, v.system_b) not in self.empty_pairs]

    @property
    def systems(self) -> list[str]:
        return sorted({v.system_a for v in self.crowd} | {v.system_b for v in self.crowd})


def _jsonl(path: Path) -> list[tuple[int, dict[str, object]]]:
    rows = []
    for number, raw in enumerate(read_utf8_text(path).splitlines(), start=1):
        if not raw.strip():
            continue
        value = read_json_line(str(path), number, raw)
        if not isinstance(value, dict):
            raise ImportFileError(str(path), number, "line", "must be a JSON object")
        rows.append((number, value))
    return rows


def _key(path: Path, line: int, row: dict[str, object], key: str) -> object:
    if key not in row:
        raise ImportFileError(str(path), line, key, "is missing")
    return row[key]


def _csv_rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(read_utf8_text(path).splitlines())
    missing = next((c for c in columns if c not in (reader.fieldnames or [])), None)
    if missing:
        raise ImportFileError(str(path), 1, missing, "missing column")
    return [(number, row) for number, row in enumerate(reader, start=2)]


def read_llmfao(directory: Path = LLMFAO_DIR) -> LLMFAO:
    """The prompts, outputs and both vote files; ImportFileError names the file, line and field of a problem."""
    prompts: dict[str, tuple[str, str, int]] = {}  # id -> (slug, text, line)
    for line, row in _jsonl(directory / "prompts.jsonl"):
        slug = check_text(str(directory / "prompts.jsonl"), line, "slug", _key(directory / "prompts.jsonl", line, row,
                                                                                   "slug"))
        text = check_text(str(directory / "prompts.jsonl"), line, "text", _key(directory / "prompts.jsonl", line, row,
                                                                                   "text"))
        prompts[str(_key(directory / "prompts.jsonl", line, row, "id"))] = (slug, text, line)
    outputs: dict[tuple[str, str], tuple[str, int]] = {}  # (prompt id, model id) -> (text, line)
    results = directory / "results.jsonl"
    for line, row in _jsonl(results):
        result = _key(results, line, row, "result")
        if not isinstance(result, str):
            raise ImportFileError(str(results), line, "result", f"{shown(result)} is not a string")
        outputs[(str(_key(results, line, row, "prompt")), str(_key(results, line, row, "model")))] = (result, line)

    generations = ParsedGenerations(str(results))
    seen_generation: set[tuple[str, str]] = set()
    empty_pairs: set[tuple[str, str, str]] = set()

    def votes_of(name: str, columns: tuple[str, ...], worker: str | None) -> list[ParsedVote]:
        path = directory / name
        votes = []
        for line, row in _csv_rows(path, columns):
            prompt = prompts.get(row["prompt"])
            if prompt is None:
                raise ImportFileError(str(path), line, "prompt", f"unknown prompt id {shown(row['prompt'])}")
            slug, prompt_text, prompt_line = prompt
            winner = WINNERS.get(row["winner"])
            if winner is None:
                raise ImportFileError(str(path), line, "winner", f"{shown(row['winner'])} is not left, right or tie")
            names = []
            empty = False
            for id_key, name_key in (("model_x", "left"), ("model_y", "right")):
                system = check_text(str(path), line, name_key, row[name_key])
                output = outputs.get((row["prompt"], row[id_key]))
                if output is None:
                    raise ImportFileError(str(path), line, id_key, f"no output of model {shown(row[id_key])} for "
                                          f"prompt {shown(row['prompt'])} in results.jsonl")
                text, result_line = output
                if not text.strip():
                    empty = True
                elif (slug, system) not in seen_generation:
                    seen_generation.add((slug, system))
                    generations.generations.append(ParsedGeneration(slug, system, 0, text, result_line, "result"))
                names.append(system)
            if names[0] == names[1]:
                raise ImportFileError(str(path), line, "right", f"{shown(names[1])} is the model on the left too")
            if slug not in generations.instances:
                generations.instances[slug] = ParsedInstance(slug, prompt_line, prompt_text, None, {})
            if empty:
                empty_pairs.add((slug, names[0], names[1]))
            annotator = f"worker-{row['worker']}" if worker is None else worker
            votes.append(ParsedVote(slug, names[0], names[1], 0, 0, winner, annotator, None, line))
        return votes

    crowd = votes_of(CROWD_FILE, CROWD_COLUMNS, None)
    gpt4 = votes_of(GPT4_FILE, GPT4_COLUMNS, GPT4_JUDGE)
    return LLMFAO(generations, crowd, gpt4, empty_pairs)


def write_votes_csv(votes: Iterable[ParsedVote], path: Path) -> int:
    """The votes in the votes CSV format of the README; returns how many were written."""
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["instance_id", "system_a", "system_b", "sample_a", "sample_b", "winner", "annotator"])
        for vote in votes:
            writer.writerow([vote.instance_id, vote.system_a, vote.system_b, vote.sample_a, vote.sample_b,
                             vote.winner, vote.annotator])
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.llmfao", description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path, help="where crowd-votes.csv and gpt4-votes.csv are written")
    parser.add_argument("--data", type=Path, default=LLMFAO_DIR, help="the LLMFAO files (default: demo/data/llmfao)")
    parser.add_argument("--judgeable-only", action="store_true",
                        help="leave out the pairs with an empty output, as the demo study does")
    args = parser.parse_args(argv)
    try:
        data = read_llmfao(args.data)
    except ImportFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    args.outdir.mkdir(parents=True, exist_ok=True)
    for name, votes in (("crowd-votes.csv", data.crowd), ("gpt4-votes.csv", data.gpt4)):
        kept = data.judgeable(votes) if args.judgeable_only else votes
        print(f"{args.outdir / name}: {write_votes_csv(kept, args.outdir / name)} votes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
