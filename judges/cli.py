"""`manage.py judge_agreement --from-csv HUMANS.csv --judge NAME=JUDGE.csv [...] --json`: a judge's agreement
with the human majority, from vote files alone (no database), as `leaderboard --from-csv` ranks them.

Both files are in the votes CSV format of the README, read by its one reader
(`annotations.imports.parse.read_votes_csv`). A comparison is (instance_id, unordered system pair); its
label is `a` when the system whose name sorts first wins, `b` when the other wins, `tie` otherwise (both
bad counts as a tie). The human label is the most frequent label of the comparison's human votes;
comparisons without a unique most frequent label are left out, as are those the judge did not label. A
judge that labelled a comparison more than once (both orders, say) gets the same most-frequent rule.
Plain Python: the figures are `judges.metrics`'.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass

from annotations.imports.parse import ImportFileError, read_votes_csv

from .metrics import agreement_and_kappa, comparison_label, majority_label


class CommandLineError(Exception):
    """Bad input: the one line to print on standard error (exit status 1)."""


ComparisonKey = tuple[str, str, str]  # (instance_id, the system whose name sorts first, the other)


def comparison_labels(path: str) -> dict[ComparisonKey, str]:
    """Each comparison of a vote file and its most frequent label (comparisons without one are left out)."""
    try:
        table = read_votes_csv(path)
    except ImportFileError as error:
        raise CommandLineError(str(error)) from None
    if table.layout != "votes":
        raise CommandLineError(f"{path}:1: header: a comparison needs instance_id; this is a Chatbot Arena "
                               "table (model_a, model_b, winner), expected the votes CSV format "
                               "instance_id,system_a,system_b,sample_a,sample_b,winner,annotator")
    if not len(table):
        raise CommandLineError(f"{path}:2: file: contains no votes")
    labels: dict[ComparisonKey, list[str]] = defaultdict(list)
    for instance, first, second, winner in zip(table.instance_id, table.system_a, table.system_b, table.winner,
                                               strict=True):
        label = comparison_label(winner)
        if first > second:
            first, second = second, first
            label = {"a": "b", "b": "a"}.get(label, label)
        labels[(instance, first, second)].append(label)
    majority = {key: majority_label(values) for key, values in labels.items()}
    return {key: label for key, label in majority.items() if label is not None}


@dataclass(frozen=True)
class JudgeFile:
    name: str
    path: str


def judge_file(argument: str) -> JudgeFile:
    """`--judge NAME=JUDGE.csv`."""
    name, separator, path = argument.partition("=")
    if not separator or not name.strip() or not path.strip():
        raise CommandLineError(f"--judge takes NAME=JUDGE.csv, got {argument!r}")
    if not os.path.exists(path):
        raise CommandLineError(f"{path}:0: file: no such file (--judge {name})")
    return JudgeFile(name.strip(), path)


def judge_agreement(humans_path: str, judges: list[JudgeFile]) -> dict[str, list[dict[str, object]]]:
    """{"judges": [{"judge", "comparisons", "agreement", "cohen_kappa"}]} in the order the judges were named."""
    names = [judge.name for judge in judges]
    repeated = next((name for name in names if names.count(name) > 1), None)
    if repeated:
        raise CommandLineError(f"--judge {repeated} is named twice")
    if not judges:
        raise CommandLineError("name at least one judge: --judge NAME=JUDGE.csv")
    human = comparison_labels(humans_path)
    rows: list[dict[str, object]] = []
    for judge in judges:
        labelled = comparison_labels(judge.path)
        shared = [key for key in human if key in labelled]
        agreement, kappa = agreement_and_kappa([human[k] for k in shared], [labelled[k] for k in shared], rounds=0)
        rows.append({"judge": judge.name, "comparisons": len(shared), "agreement": agreement.value,
                     "cohen_kappa": kappa.value})
    return {"judges": rows}


def format_table(result: dict[str, list[dict[str, object]]]) -> str:
    """The same figures as an aligned text table."""
    lines = [f"{'judge':<24} {'comparisons':>11} {'agreement':>9} {'kappa':>7}"]
    for row in result["judges"]:
        agreement, kappa = row["agreement"], row["cohen_kappa"]
        lines.append(f"{row['judge']!s:<24} {row['comparisons']!s:>11} "
                     f"{'—' if agreement is None else format(agreement, '.3f'):>9} "
                     f"{'—' if kappa is None else format(kappa, '.3f'):>7}")
    return "\n".join(lines)


def render(result: dict[str, list[dict[str, object]]], as_json: bool) -> str:
    return json.dumps(result, indent=2) if as_json else format_table(result)
