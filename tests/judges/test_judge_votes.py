"""A judge's verdicts are votes with source `judge` under the judge's own account: `import_votes --judge`
stores them with the order the judge saw, the human leaderboards never count them, and the study's judge
table measures them against the human majority (figures counted by hand)."""
import io

import pytest
from django.core.management import call_command

from annotations.models import Generation, Vote
from judges.models import Judge
from judges.services import get_or_create_judge, study_judge_tables
from ranking.services import counted_votes, rebuild_study_ratings, study_vote_table
from tests.factories import add_vote, make_rating_study

pytestmark = pytest.mark.django_db

HEADER = "instance_id,system_a,system_b,sample_a,sample_b,winner,annotator\n"


def study_with_humans():
    """alpha, beta, gamma on x0..x2; alpha's outputs are the longest. Human majorities:
    x0 alpha-beta: alpha (2 of 3); x1 alpha-gamma: gamma (2 of 2); x2 beta-gamma: tie (1 tie, 1 both_bad)."""
    study = make_rating_study("judged", systems=("alpha", "beta", "gamma"), n_instances=3)
    for generation in Generation.objects.filter(instance__dataset=study.dataset).select_related("system"):
        generation.text = {"alpha": "a much longer answer than the others", "beta": "short", "gamma": "shorter"}[
            generation.system.name]
        generation.save(update_fields=["text"])
    for x, y, outcome, instance in [("alpha", "beta", "x", 0), ("alpha", "beta", "x", 0), ("alpha", "beta", "y", 0),
                                    ("alpha", "gamma", "y", 1), ("alpha", "gamma", "y", 1),
                                    ("beta", "gamma", "tie", 2), ("beta", "gamma", "both_bad", 2)]:
        add_vote(study, x, y, outcome, instance=instance)
    return study


def import_judge(tmp_path, study, rows, name="judge-j"):
    path = tmp_path / "judge.csv"
    path.write_text(HEADER + "".join(f"{row}\n" for row in rows), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_votes", str(path), "--study", study.slug, "--judge", name, stdout=out, stderr=err)
    except SystemExit as exit_info:
        return exit_info.code, err.getvalue()
    return 0, out.getvalue()


# The judge saw x0 with beta first and chose it (the first), x1 with alpha first and chose it, x2 with gamma
# first and called a tie.
JUDGE_ROWS = ["x0,beta,alpha,0,0,a,ignored", "x1,alpha,gamma,0,0,a,ignored", "x2,gamma,beta,0,0,tie,ignored"]


def test_imported_verdicts_are_the_judges_votes_in_the_order_it_saw(tmp_path):
    study = study_with_humans()
    code, out = import_judge(tmp_path, study, JUDGE_ROWS)
    assert code == 0, out
    votes = {v.comparison.instance.external_id: v for v in
             Vote.objects.filter(study=study, source=Vote.Source.JUDGE).select_related(
                 "annotator", "assignment", "comparison__instance", "comparison__system_a")}
    assert set(votes) == {"x0", "x1", "x2"}
    assert {v.annotator.username for v in votes.values()} == {"judge~judge-j"}
    assert not votes["x0"].annotator.has_usable_password()
    # x0: canonical A is alpha (created first, lower id); the judge saw beta first and chose it.
    assert votes["x0"].comparison.system_a.name == "alpha"
    assert (votes["x0"].assignment.left_is_a, votes["x0"].choice, votes["x0"].winner) == (False, "left", "b")
    assert (votes["x1"].assignment.left_is_a, votes["x1"].choice, votes["x1"].winner) == (True, "left", "a")
    assert (votes["x2"].assignment.left_is_a, votes["x2"].choice, votes["x2"].winner) == (False, "tie", "tie")


def test_judge_votes_stay_out_of_the_human_leaderboards(tmp_path):
    study = study_with_humans()
    before = study_vote_table(study)
    assert import_judge(tmp_path, study, JUDGE_ROWS)[0] == 0
    assert study_vote_table(study).as_lists() == before.as_lists()
    assert counted_votes(study) == 7
    snapshots = rebuild_study_ratings(study, rounds=0)
    assert snapshots["bt"].votes_used == 7


def test_importing_the_same_verdicts_again_is_refused_and_changes_nothing(tmp_path):
    study = study_with_humans()
    assert import_judge(tmp_path, study, JUDGE_ROWS)[0] == 0
    count = Vote.objects.count()
    code, err = import_judge(tmp_path, study, JUDGE_ROWS)
    assert code == 1
    assert "judge.csv:2: annotator: judge 'judge-j' already has a stored vote on this comparison" in err
    assert Vote.objects.count() == count


def test_the_judge_table_measures_the_judge_against_the_human_majority(tmp_path):
    """Human labels: x0 a (alpha), x1 b (gamma), x2 tie. Judge: x0 b (beta), x1 a (alpha), x2 tie.
    Agreement 1/3. Position: the judge chose first, first, tie -> 2 of 2 decisive verdicts went first.
    Length bias (the longer output is alpha in x0 and x1; x2 beta "short" 5 vs gamma "shorter" 7 -> gamma):
    judge gives the longer 0 (x0), 1 (x1), 0.5 (x2) = 1.5 / 3; humans 1, 0, 0.5 = 1.5 / 3.
    Self-preference: the judge's model is alpha: x0 (alpha = a) and x1 (alpha = a): judge 0 + 1, humans 1 + 0."""
    study = study_with_humans()
    judge = get_or_create_judge("judge-j", model="alpha-chat")
    judge.system = study.systems.get(name="alpha")
    judge.save()
    assert import_judge(tmp_path, study, JUDGE_ROWS)[0] == 0
    [table] = study_judge_tables(study, rounds=200)
    assert table.name == "judge-j" and table.judge == judge and table.comparisons == 3
    report = table.report
    assert report.agreement.value == pytest.approx(1 / 3) and report.agreement.n == 3
    assert report.agreement.low <= report.agreement.value <= report.agreement.high
    assert report.position_bias.value == 1.0 and report.position_bias.n == 2
    assert report.position_consistency.n == 0  # one order each
    assert report.length_bias.judge.value == pytest.approx(0.5)
    assert report.length_bias.human.value == pytest.approx(0.5)
    assert report.self_preference is not None
    assert report.self_preference.judge.value == pytest.approx(0.5) and report.self_preference.judge.n == 2
    assert report.self_preference.human.value == pytest.approx(0.5)
    assert {row["system"] for row in table.board["ratings"]} == {"alpha", "beta", "gamma"}


def test_a_judge_is_one_account_across_studies_and_its_key_is_never_stored():
    first = get_or_create_judge("shared-judge", api_key_env="OPENAI_API_KEY")
    again = get_or_create_judge("shared-judge")
    assert first.pk == again.pk and Judge.objects.count() == 1
    assert first.api_key_env == "OPENAI_API_KEY"
    assert "api_key" not in {f.name for f in Judge._meta.get_fields()}
