"""The fourth demo study: LLMFAO's 59 chat models with the crowd's votes as history and GPT-4's verdicts as a
judge; its judges page shows the 59-system human board and the judge table, whose figures equal an
independent count from the raw files."""
import csv
import io
import json
from collections import Counter, defaultdict

import pytest
from django.core.management import call_command
from django.urls import reverse
from sklearn.metrics import cohen_kappa_score

from annotations.models import Study, Vote
from demo.llmfao import LLMFAO_DIR
from demo.management.commands.load_demo import Command as LoadDemo
from judges.services import study_judge_tables
from ranking.services import study_leaderboard
from tests.factories import make_account

pytestmark = pytest.mark.django_db


def load():
    command = LoadDemo(stdout=io.StringIO(), stderr=io.StringIO())
    return command.load_llmfao()


@pytest.fixture(scope="module")
def llmfao(django_db_setup, django_db_blocker):
    """The LLMFAO study, loaded once for the module (twice: the second load must add nothing), then removed."""
    with django_db_blocker.unblock():
        first = load()
        again = load()
        yield first, again
        call_command("flush", "--noinput", verbosity=0)


def raw_labels(name, outputs):
    """Independently of the project's readers, on the raw files: comparisons (prompt, model ids) whose two
    outputs are not empty -> (the unique most frequent label, canonical by model name), and GPT-4's positions."""
    labels = defaultdict(list)
    with open(LLMFAO_DIR / name, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if not all(outputs[(row["prompt"], row[model])].strip() for model in ("model_x", "model_y")):
                continue
            first, second = sorted((row["left"], row["right"]))
            won = {"left": row["left"], "right": row["right"]}.get(row["winner"])
            labels[(row["prompt"], first, second)].append("tie" if won is None else "a" if won == first else "b")
    out = {}
    for key, values in labels.items():
        ranked = Counter(values).most_common()
        if len(ranked) == 1 or ranked[0][1] > ranked[1][1]:
            out[key] = ranked[0][0]
    return out


def test_llmfao_loads_59_systems_the_crowd_as_history_and_gpt4_as_a_judge(llmfao):
    (study, summary, skipped), (_, summary_again, _) = llmfao
    assert study.status == Study.Status.CLOSED
    assert study.systems.count() == 59
    human = Vote.objects.filter(study=study, source=Vote.Source.IMPORTED)
    judge = Vote.objects.filter(study=study, source=Vote.Source.JUDGE)
    # 8,931 crowd votes and 2,139 GPT-4 verdicts in the files; 289 pairs (1,208 votes) show an empty output.
    assert (human.count(), judge.count()) == (8931 - 1208, 2139 - 289)
    assert "skipped 289 of 2139 pairs" in skipped
    board = study_leaderboard(study, "bt", rounds=0)
    assert len(board.rows) == 59 and board.votes_used == human.count()
    assert "votes created" in summary and "created" not in summary_again  # the second load added nothing


def test_the_judge_table_equals_an_independent_count_from_the_raw_files(llmfao):
    study = llmfao[0][0]
    outputs = {(str(r["prompt"]), str(r["model"])): r["result"]
               for r in map(json.loads, (LLMFAO_DIR / "results.jsonl").read_text(encoding="utf-8").splitlines())}
    human, gpt4 = raw_labels("crowd-comparisons.csv", outputs), raw_labels("gpt4-crowd-comparisons.csv", outputs)
    shared = [key for key in human if key in gpt4]
    [table] = study_judge_tables(study, rounds=100)
    report = table.report
    assert table.name == "gpt-4" and table.comparisons == 1850
    assert report.unparseable == 0
    assert report.agreement.n == len(shared)
    assert report.agreement.value == pytest.approx(sum(human[k] == gpt4[k] for k in shared) / len(shared))
    assert report.cohen_kappa.value == pytest.approx(
        cohen_kappa_score([human[k] for k in shared], [gpt4[k] for k in shared]))
    # Position bias: GPT-4's decisive verdicts on the judgeable pairs, counted from the raw file.
    with open(LLMFAO_DIR / "gpt4-crowd-comparisons.csv", newline="", encoding="utf-8") as handle:
        shown = Counter(row["winner"] for row in csv.DictReader(handle)
                        if outputs[(row["prompt"], row["model_x"])].strip()
                        and outputs[(row["prompt"], row["model_y"])].strip())
    assert report.position_bias.n == shown["left"] + shown["right"]
    assert report.position_bias.value == pytest.approx(shown["left"] / (shown["left"] + shown["right"]))
    assert report.position_consistency.n == 0  # LLMFAO judged each pair in one order only
    assert report.self_preference is not None and report.self_preference.judge.n > 0  # "GPT 4" is a system


def test_the_judges_page_shows_both_boards_and_the_table_to_staff_only(llmfao, client):
    study = llmfao[0][0]
    url = reverse("judges:study", args=[study.slug])
    client.force_login(make_account("annotator-x"))
    assert client.get(url).status_code == 403
    client.force_login(make_account("staff-x", staff=True))
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Agreement with the human majority" in html and "Position bias" in html and "Self-preference" in html
    assert html.count('<tr><th scope="row">') >= 59 + 8
    assert "GPT 3.5 Turbo" in html

