"""`manage.py judge_agreement --from-csv`: the issue's definition on hand-counted files, on the real LLMFAO
crowd and GPT-4 votes (against an independent count from the raw files and scikit-learn), and bad input."""
import csv
import json
from collections import Counter, defaultdict

import pytest
from django.core.management import call_command
from sklearn.metrics import cohen_kappa_score

from demo.llmfao import LLMFAO_DIR
from demo.llmfao import main as convert_llmfao

HEADER = "instance_id,system_a,system_b,sample_a,sample_b,winner,annotator\n"


def write(path, rows):
    path.write_text(HEADER + "".join(f"{row}\n" for row in rows), encoding="utf-8")
    return str(path)


def run(capsys, *args):
    call_command("judge_agreement", *args)
    return json.loads(capsys.readouterr().out)


def test_labels_follow_the_system_that_sorts_first_and_the_human_majority(tmp_path, capsys):
    """Comparisons (by instance and unordered pair):
    x1 {m, n}: humans n wins, n wins (written in both orders), tie -> label b (n sorts after m); judge: m wins -> a
    x2 {m, n}: humans a, b -> no unique majority: left out
    x3 {m, o}: humans o wins twice -> b; judge o wins (written as system_a) -> b: agrees
    x4 {n, o}: humans both_bad, tie -> tie; judge tie: agrees
    x5 {m, n}: humans m; the judge did not label it: left out
    So 3 comparisons, agreement 2/3; labels human (b, b, tie), judge (a, b, tie)."""
    humans = write(tmp_path / "h.csv", [
        "x1,m,n,0,0,b,h1", "x1,n,m,0,0,a,h2", "x1,m,n,0,0,tie,h3",
        "x2,m,n,0,0,a,h1", "x2,m,n,0,0,b,h2",
        "x3,m,o,0,0,b,h1", "x3,o,m,0,0,a,h2",
        "x4,n,o,0,0,both_bad,h1", "x4,o,n,0,0,tie,h2",
        "x5,m,n,0,0,a,h1",
    ])
    judge = write(tmp_path / "j.csv", ["x1,n,m,0,0,b,j", "x2,m,n,0,0,a,j", "x3,o,m,0,0,a,j", "x4,o,n,0,0,tie,j"])
    result = run(capsys, "--from-csv", humans, "--judge", f"scripted={judge}", "--json")
    [row] = result["judges"]
    assert set(row) == {"judge", "comparisons", "agreement", "cohen_kappa"}
    assert row["judge"] == "scripted" and row["comparisons"] == 3
    assert row["agreement"] == pytest.approx(2 / 3)
    assert row["cohen_kappa"] == pytest.approx(cohen_kappa_score(["b", "b", "tie"], ["a", "b", "tie"]))


def raw_llmfao_labels(name):
    """Independently of the project's readers: (prompt, unordered model ids) -> the unique most frequent label,
    a when the model whose *name* sorts first wins."""
    labels = defaultdict(list)
    with open(LLMFAO_DIR / name, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            shown = {"left": row["left"], "right": row["right"]}
            first, second = sorted(shown.values())
            won = shown.get(row["winner"])
            labels[(row["prompt"], first, second)].append("tie" if won is None else "a" if won == first else "b")
    out = {}
    for key, values in labels.items():
        ranked = Counter(values).most_common()
        if len(ranked) == 1 or ranked[0][1] > ranked[1][1]:
            out[key] = ranked[0][0]
    return out


def test_llmfao_gpt4_against_the_crowd_equals_an_independent_count(tmp_path, capsys):
    assert convert_llmfao([str(tmp_path)]) == 0
    capsys.readouterr()
    result = run(capsys, "--from-csv", str(tmp_path / "crowd-votes.csv"),
                 "--judge", f"gpt-4={tmp_path / 'gpt4-votes.csv'}", "--json")
    human, gpt4 = raw_llmfao_labels("crowd-comparisons.csv"), raw_llmfao_labels("gpt4-crowd-comparisons.csv")
    shared = [key for key in human if key in gpt4]
    [row] = result["judges"]
    assert row["comparisons"] == len(shared) > 1500
    assert row["agreement"] == pytest.approx(sum(human[k] == gpt4[k] for k in shared) / len(shared))
    assert row["cohen_kappa"] == pytest.approx(cohen_kappa_score([human[k] for k in shared], [gpt4[k] for k in shared]))


@pytest.mark.parametrize(("rows", "expected"), [
    (["x1,m,n,0,0,maybe,j"], "j.csv:2: winner: 'maybe' is not one of"),
    (["x1,m,m,0,0,a,j"], "j.csv:2: system_b: 'm' is the same system as system_a"),
    (["x1,m,n,zero,0,a,j"], "j.csv:2: sample_a: 'zero' is not a whole number"),
    ([], "j.csv:2: file: contains no votes"),
])
def test_a_bad_judge_file_is_one_line_naming_file_line_and_field(tmp_path, capsys, rows, expected):
    humans = write(tmp_path / "h.csv", ["x1,m,n,0,0,a,h1"])
    judge = write(tmp_path / "j.csv", rows)
    with pytest.raises(SystemExit) as exit_info:
        call_command("judge_agreement", "--from-csv", humans, "--judge", f"j={judge}", "--json")
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().startswith(str(tmp_path / expected.split(":")[0]) + ":" + expected.split(":", 1)[1])


@pytest.mark.parametrize(("judge_argument", "expected"), [
    ("no-equals-sign", "--judge takes NAME=JUDGE.csv"),
    ("j=/nonexistent/file.csv", "/nonexistent/file.csv:0: file: no such file"),
])
def test_a_bad_judge_argument_is_refused(tmp_path, capsys, judge_argument, expected):
    humans = write(tmp_path / "h.csv", ["x1,m,n,0,0,a,h1"])
    with pytest.raises(SystemExit):
        call_command("judge_agreement", "--from-csv", humans, "--judge", judge_argument)
    assert capsys.readouterr().err.strip().startswith(expected)


def test_a_missing_column_in_the_human_file_names_it(tmp_path, capsys):
    humans = tmp_path / "h.csv"
    humans.write_text("instance_id,system_a,system_b,winner\nx1,m,n,a\n", encoding="utf-8")
    judge = write(tmp_path / "j.csv", ["x1,m,n,0,0,a,j"])
    with pytest.raises(SystemExit):
        call_command("judge_agreement", "--from-csv", str(humans), "--judge", f"j={judge}")
    assert capsys.readouterr().err.strip().startswith(f"{humans}:1: sample_a: missing column")
