"""Judge runs end to end: a judge asked about every comparison of a study in both orders through a real
OpenAI-compatible server, each answer stored once per (judge, comparison, order), parsed or counted
unparseable, and the pair made into the judge's vote.

Against `transformers serve` with a random tiny model (nonsense answers: all unparseable, no vote
invented), and against `ScriptedServer`, whose answers the test writes, so the position-consistency,
position-bias, length-bias and self-preference figures are checked against hand counts."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from annotations.models import Assignment, Comparison, Generation, Vote
from judges import runs
from judges.models import Judge, JudgePrompt, JudgeRun, JudgeVerdict
from judges.prompts import DEFAULT_TEMPLATE
from judges.services import study_judge_tables
from judges.verdicts import parse_verdict
from tests.factories import add_vote, make_endpoint, make_rating_study, make_study
from tests.judges.scripted_server import ScriptedServer, shown_answers

pytestmark = pytest.mark.django_db(transaction=True)

TEXTS = {"alpha": "a much longer answer than the others", "beta": "short", "gamma": "shorter"}


@pytest.fixture(autouse=True)
def inline(monkeypatch):
    monkeypatch.setattr(runs, "BACKGROUND_WHEN_EAGER", False)


def study_with_humans():
    """alpha, beta, gamma (ids in that order, so alpha is always side A of its comparisons); alpha writes the
    longest outputs and gamma's are longer than beta's. One comparison per instance; human majorities:
    x0 alpha-beta: a (2 of 3); x1 alpha-gamma: b (2 of 2); x2 beta-gamma: tie (tie + both bad);
    x3 alpha-beta: a (1 of 1)."""
    study = make_rating_study("judged", systems=("alpha", "beta", "gamma"), n_instances=4)
    for generation in Generation.objects.filter(instance__dataset=study.dataset).select_related("system"):
        generation.text = TEXTS[generation.system.name]
        generation.save(update_fields=["text"])
    for x, y, outcome, instance in [("alpha", "beta", "x", 0), ("alpha", "beta", "x", 0), ("alpha", "beta", "y", 0),
                                    ("alpha", "gamma", "y", 1), ("alpha", "gamma", "y", 1),
                                    ("beta", "gamma", "tie", 2), ("beta", "gamma", "both_bad", 2),
                                    ("alpha", "beta", "x", 3)]:
        add_vote(study, x, y, outcome, instance=instance, apply=False)  # ratings: not needed here
    return study


@pytest.fixture
def scripted():
    servers = []

    def start(answer):
        server = ScriptedServer(answer).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def judge_with(server, study, name="scripted-judge", **fields):
    """Run judge `name` (created on an endpoint of the scripted server, whose system is alpha) inline."""
    if not Judge.objects.filter(name=name).exists():
        make_endpoint(f"{name}-endpoint", server.base_url, "scripted-model", system_name="alpha", **fields)
    run, chunks = runs.start_run(study, name, f"{name}-endpoint")
    runs.launch(run, chunks)
    run.refresh_from_db()
    return run


def figures(study):
    (table,) = study_judge_tables(study, rounds=0)
    return table.report


def judge_votes(study):
    return {v.comparison.instance.external_id: (v.winner, v.assignment.left_is_a) for v in
            Vote.objects.filter(study=study, source=Vote.Source.JUDGE).select_related("comparison__instance",
                                                                                      "assignment")}


def always_first(body):
    return "Both are fine, but the first is more complete. [[A]]"


def longer_wins(body):
    first, second = shown_answers(body)
    return "[[A]]" if len(first) > len(second) else "[[B]]" if len(second) > len(first) else "[[C]]"


# ---------------------------------------------------------------------------------------------- the real server

def test_a_random_model_answers_nonsense_every_answer_is_unparseable_and_no_vote_is_invented(model_server, capsys):
    study = make_study("tiny-judged", n_instances=3)  # opened: 3 comparisons of alpha-model vs beta-model
    make_endpoint("tiny-judge", model_server.base_url, model_server.model_dir)
    call_command("judge_study", "--study", study.slug, "--judge", "tiny", "--endpoint", "tiny-judge",
                 "--max-tokens", "12", "--wait")
    run = JudgeRun.objects.get()
    assert run.status == JudgeRun.Status.DONE, (run.error, list(run.failures.values("kind", "message")))
    comparisons = set(Comparison.objects.filter(study=study).values_list("id", flat=True))
    keys = set(JudgeVerdict.objects.filter(judge=run.judge).values_list("comparison_id", "first_is_a"))
    assert keys == {(c, order) for c in comparisons for order in (True, False)}
    assert run.total == run.done == 6 and run.failed == 0 and run.existing == 0
    verdicts = list(JudgeVerdict.objects.filter(judge=run.judge))
    # The answers are what the parser makes of them, and none of the random model's names a side.
    assert all(v.verdict == (parse_verdict(v.answer).verdict or "") for v in verdicts)
    assert all(v.verdict == "" for v in verdicts), [(v.answer, v.verdict) for v in verdicts]
    assert run.unparseable == 6
    assert not Vote.objects.filter(source=Vote.Source.JUDGE).exists()
    first = verdicts[0]
    assert first.request["temperature"] == 0 and first.request["model"] == str(model_server.model_dir)
    assert first.request["messages"][0]["role"] == "system" and "[[A]]" in first.request["messages"][0]["content"]
    report = figures(study)
    assert (report.answers, report.unparseable) == (6, 6)
    assert report.position_bias.n == 0 and report.position_consistency.n == 0
    assert "6/6 answers stored (6 unparseable)" in capsys.readouterr().out

    # A second run finds every (comparison, order) answered: it asks for nothing and stores nothing.
    call_command("judge_study", "--study", study.slug, "--judge", "tiny", "--wait")
    again = JudgeRun.objects.order_by("-id").first()
    assert again.pk != run.pk and again.status == JudgeRun.Status.DONE
    assert (again.existing, again.done, again.chunks_total, again.unparseable) == (6, 6, 0, 6)
    assert JudgeVerdict.objects.count() == 6


# ---------------------------------------------------------------------------------------------- scripted answers

def test_a_judge_that_always_picks_the_first_has_full_position_bias_and_no_consistency(scripted):
    study = study_with_humans()
    server = scripted(always_first)
    run = judge_with(server, study)
    assert run.status == JudgeRun.Status.DONE and (run.done, run.total, run.unparseable) == (8, 8, 0)
    assert len(server.requests) == 8
    assert all(r["temperature"] == 0 for r in server.requests)
    # Each comparison was shown both ways: A's text first, then B's.
    shown = sorted(shown_answers(r) for r in server.requests)
    assert shown.count((TEXTS["alpha"], TEXTS["beta"])) == 2 and shown.count((TEXTS["beta"], TEXTS["alpha"])) == 2
    # "A" in both orders names both outputs: the pair is inconsistent, so the judge's vote is a tie.
    assert judge_votes(study) == {x: ("tie", True) for x in ("x0", "x1", "x2", "x3")}
    report = figures(study)
    assert (report.position_bias.value, report.position_bias.n) == (1.0, 8)  # every decisive verdict: first
    assert (report.position_consistency.value, report.position_consistency.n) == (0.0, 4)
    assert (report.agreement.value, report.agreement.n) == (0.25, 4)  # only x2's humans said tie
    assert report.cohen_kappa.value == pytest.approx(0.0)  # p_o = p_e = 1/4
    # Longer output (alpha, alpha, gamma, alpha): the judge's ties score 0.5 each; the humans 1, 0, 0.5, 1.
    assert (report.length_bias.judge.value, report.length_bias.human.value) == (0.5, 0.625)
    assert report.length_bias.difference.value == pytest.approx(-0.125)
    # The judge's own model is alpha (its endpoint's system): x0, x1, x3; humans gave it 1, 0, 1.
    assert report.self_preference is not None and report.self_preference.judge.n == 3
    assert report.self_preference.human.value == pytest.approx(2 / 3)
    assert report.self_preference.difference.value == pytest.approx(0.5 - 2 / 3)


def test_a_judge_that_prefers_the_longer_output_is_consistent_and_length_biased(scripted):
    study = study_with_humans()
    run = judge_with(scripted(longer_wins), study)
    assert run.status == JudgeRun.Status.DONE
    assert judge_votes(study) == {"x0": ("a", True), "x1": ("a", True), "x2": ("b", True), "x3": ("a", True)}
    report = figures(study)
    assert (report.position_bias.value, report.position_bias.n) == (0.5, 8)
    assert (report.position_consistency.value, report.position_consistency.n) == (1.0, 4)
    # judge a, a, b, a against humans a, b, tie, a
    assert (report.agreement.value, report.agreement.n) == (0.5, 4)
    # p_o = 1/2; p_e = 1/2 * 3/4 (a) + 1/4 * 1/4 (b) + 1/4 * 0 (tie) = 7/16; kappa = (1/16) / (9/16)
    assert report.cohen_kappa.value == pytest.approx(1 / 9)
    assert report.confusion["a"]["a"] == 2 and report.confusion["b"]["a"] == 1 and report.confusion["tie"]["b"] == 1
    assert (report.length_bias.judge.value, report.length_bias.human.value) == (1.0, 0.625)
    assert report.length_bias.difference.value == pytest.approx(0.375)
    assert report.self_preference.judge.value == 1.0
    assert report.self_preference.difference.value == pytest.approx(1 - 2 / 3)
    # The judge's votes stay out of the human leaderboards but make its own board.
    (table,) = study_judge_tables(study, rounds=0)
    assert [row["system"] for row in table.board["ratings"]][0] == "alpha"


def test_an_unparseable_answer_is_kept_counted_and_the_vote_comes_from_the_other_order(scripted):
    study = study_with_humans()
    x3 = Comparison.objects.get(study=study, instance__external_id="x3")

    def answer(body):  # x3 ("Input 3") shown B first gets an answer without a verdict
        if "Input 3" in body["messages"][-1]["content"] and shown_answers(body)[0] == TEXTS["beta"]:
            return "I would rather not say."
        return longer_wins(body)

    run = judge_with(scripted(answer), study)
    assert (run.status, run.done, run.unparseable) == (JudgeRun.Status.DONE, 8, 1)
    bad = JudgeVerdict.objects.get(verdict="")
    assert (bad.comparison_id, bad.first_is_a, bad.answer, bad.shape) == (x3.pk, False, "I would rather not say.",
                                                                          "no verdict found")
    assert judge_votes(study)["x3"] == ("a", True)  # from the one parsed order, A shown first
    report = figures(study)
    assert (report.answers, report.unparseable) == (8, 1)
    assert report.position_consistency.n == 3 and report.position_bias.n == 7


def test_a_study_prompt_is_the_one_asked_and_a_bad_template_is_refused(scripted):
    study = study_with_humans()
    server = scripted(longer_wins)
    judge_with(server, study, name="prompted")  # creates the judge and its endpoint
    judge = Judge.objects.get(name="prompted")
    with pytest.raises(runs.JudgeRunError, match="unknown placeholder"):
        runs.save_prompt(study, judge, "", DEFAULT_TEMPLATE + " $answer_c")
    assert not JudgePrompt.objects.exists()
    runs.save_prompt(study, judge, "Be terse.", "Q: $question\n" + DEFAULT_TEMPLATE)
    JudgeVerdict.objects.filter(judge=judge, comparison__instance__external_id="x0").delete()
    server.requests.clear()
    run = judge_with(server, study, name="prompted")
    assert run.system_prompt == "Be terse." and len(server.requests) == 2  # only x0's two orders were missing
    assert all(r["messages"][0]["content"] == "Be terse." and r["messages"][1]["content"].startswith("Q: Input 0")
               for r in server.requests)


def test_cancelling_stops_the_remaining_chunks_and_a_new_run_asks_only_for_the_rest(scripted, settings):
    settings.JUDGE_CHUNK_COMPARISONS = 1
    study = study_with_humans()
    server = scripted(longer_wins)
    make_endpoint("cancel-endpoint", server.base_url, "scripted-model")
    run, chunks = runs.start_run(study, "cancel", "cancel-endpoint")
    assert len(chunks) == 4 and run.total == 8
    runs.run_chunk(run.pk, chunks[0].index, chunks[0].comparison_ids)  # the first chunk's task ran
    assert runs.cancel_run(run) and run.status == JudgeRun.Status.CANCELLED
    runs.launch(run, chunks[1:])  # the others are delivered after the cancel
    run.refresh_from_db()
    assert len(server.requests) == 2 and run.done == 2 and run.status == JudgeRun.Status.CANCELLED
    assert runs.progress(run) == {"status": "cancelled", "done": 2, "total": 8, "unparseable": 0, "failed": 0,
                                  "chunks_done": 4, "chunks_total": 4, "percent": 25}
    assert not runs.cancel_run(run)  # already finished
    again = judge_with(server, study, name="cancel")
    assert again.existing == 2 and again.status == JudgeRun.Status.DONE and len(server.requests) == 8
    assert JudgeVerdict.objects.count() == 8 and len(judge_votes(study)) == 4


def test_a_redelivered_chunk_asks_nothing_again_and_votes_once(scripted):
    study = study_with_humans()
    server = scripted(longer_wins)
    run = judge_with(server, study)
    chunk = runs.Chunk(0, list(Comparison.objects.filter(study=study).values_list("id", flat=True)))
    JudgeRun.objects.filter(pk=run.pk).update(chunks_done=[])
    runs.run_chunk(run.pk, chunk.index, chunk.comparison_ids)
    assert len(server.requests) == 8 and JudgeVerdict.objects.count() == 8
    assert Vote.objects.filter(source=Vote.Source.JUDGE).count() == 4
    # A worker that died between the second answer and the vote: the redelivery makes the vote.
    Assignment.objects.filter(vote__source=Vote.Source.JUDGE, comparison__instance__external_id="x0").delete()
    runs.run_chunk(run.pk, chunk.index, chunk.comparison_ids)
    assert len(server.requests) == 8 and judge_votes(study)["x0"] == ("a", True)


def test_an_unset_key_variable_is_refused_by_name_and_nothing_is_written(scripted, monkeypatch):
    monkeypatch.delenv("SEPEVAL_TEST_NO_JUDGE_KEY", raising=False)
    study = study_with_humans()
    server = scripted(always_first)
    make_endpoint("keyed-judge", server.base_url, "scripted-model", api_key_env="SEPEVAL_TEST_NO_JUDGE_KEY")
    users = get_user_model().objects.count()
    with pytest.raises(CommandError, match="SEPEVAL_TEST_NO_JUDGE_KEY that should hold its API key is not set"):
        call_command("judge_study", "--study", study.slug, "--judge", "keyed", "--endpoint", "keyed-judge", "--wait")
    assert not JudgeRun.objects.exists() and not Judge.objects.exists() and not JudgeVerdict.objects.exists()
    assert get_user_model().objects.count() == users and server.requests == []


@pytest.mark.parametrize("args,message", [
    (("--judge", "nobody"), "no judge 'nobody': give an endpoint to create it"),
    (("--judge", "j", "--endpoint", "missing"), "no endpoint 'missing'"),
    (("--judge", "j", "--endpoint", "bad-temperature-endpoint", "--temperature", "3"), "temperature must be in"),
])
def test_bad_arguments_get_a_clear_message_and_write_nothing(scripted, args, message):
    study = study_with_humans()
    make_endpoint("bad-temperature-endpoint", scripted(always_first).base_url, "scripted-model")
    with pytest.raises(CommandError, match=message):
        call_command("judge_study", "--study", study.slug, *args)
    assert not JudgeRun.objects.exists() and not Judge.objects.exists()


def test_a_judge_keeps_its_endpoint(scripted):
    study = study_with_humans()
    server = scripted(always_first)
    judge_with(server, study, name="first")
    make_endpoint("other-endpoint", server.base_url, "another-model", system_name="beta")
    with pytest.raises(runs.JudgeRunError, match="judge 'first' is asked through endpoint 'first-endpoint'"):
        runs.start_run(study, "first", "other-endpoint")
    assert JudgeRun.objects.count() == 1


# ---------------------------------------------------------------------------------------------- the staff page

def test_staff_start_follow_and_cancel_a_run_on_the_judges_page(scripted, staff_client):
    study = study_with_humans()
    server = scripted(longer_wins)
    make_endpoint("page-endpoint", server.base_url, "scripted-model", system_name="alpha")
    page = staff_client.get(f"/judges/{study.slug}/")
    assert page.status_code == 200 and b"Start a judge run" in page.content and b"page-endpoint" in page.content
    response = staff_client.post(f"/judges/{study.slug}/runs/", {"judge": "page", "endpoint": "page-endpoint",
                                                                 "temperature": "0", "max_tokens": "64"},
                                 follow=True)
    run = JudgeRun.objects.get()
    assert b"Judge run %d started: 8 answers" % run.pk in response.content
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.DONE and run.max_tokens == 64 and len(server.requests) == 8
    assert b"Position consistency" in response.content and b"page</h2>" in response.content
    fragment = staff_client.get(f"/judges/{study.slug}/runs/{run.pk}/progress/")
    assert b"8 / 8 answers" in fragment.content and b"hx-get" not in fragment.content  # finished: no polling
    # A run still going polls its fragment and can be cancelled.
    going = JudgeRun.objects.create(study=study, judge=run.judge, prompt_template=run.prompt_template, total=8,
                                    status=JudgeRun.Status.RUNNING)
    fragment = staff_client.get(f"/judges/{study.slug}/runs/{going.pk}/progress/")
    assert b'hx-trigger="every 2s"' in fragment.content and b"Cancel" in fragment.content
    response = staff_client.post(f"/judges/{study.slug}/runs/{going.pk}/cancel/", follow=True)
    assert b"cancelled" in response.content
    going.refresh_from_db()
    assert going.status == JudgeRun.Status.CANCELLED


def test_the_page_refuses_a_bad_run_or_prompt_with_a_message_and_writes_nothing(scripted, staff_client, monkeypatch):
    monkeypatch.delenv("SEPEVAL_TEST_NO_JUDGE_KEY", raising=False)
    study = study_with_humans()
    make_endpoint("keyed-page", scripted(always_first).base_url, "m", api_key_env="SEPEVAL_TEST_NO_JUDGE_KEY")
    response = staff_client.post(f"/judges/{study.slug}/runs/", {"judge": "keyed", "endpoint": "keyed-page",
                                                                 "temperature": "0", "max_tokens": "64"},
                                 follow=True)
    assert b"SEPEVAL_TEST_NO_JUDGE_KEY that should hold its API key is not set" in response.content
    assert not JudgeRun.objects.exists() and not Judge.objects.exists()
    judge = Judge.objects.create(name="j", account=get_user_model().objects.create(username="judge~j"))
    response = staff_client.post(f"/judges/{study.slug}/prompt/", {"judge": judge.name, "system_prompt": "",
                                                                   "prompt_template": "only $answer_a"}, follow=True)
    assert b"The prompt was not saved" in response.content and b"$answer_b is missing" in response.content
    assert not JudgePrompt.objects.exists()
    response = staff_client.post(f"/judges/{study.slug}/prompt/", {"judge": judge.name, "system_prompt": "Terse.",
                                                                   "prompt_template": "$answer_a / $answer_b"},
                                 follow=True)
    assert JudgePrompt.objects.get().prompt_template == "$answer_a / $answer_b"
    assert b"$answer_a / $answer_b</textarea>" in response.content


@pytest.mark.services
def test_a_run_goes_through_a_real_worker_on_the_default_queue(celery_worker, scripted):
    from generation.services import wait_for

    study = study_with_humans()
    server = scripted(longer_wins)
    make_endpoint("worker-endpoint", server.base_url, "scripted-model", system_name="alpha")
    run, chunks = runs.start_run(study, "worker", "worker-endpoint")
    runs.launch(run, chunks)  # sent to the broker: the worker process asks the server
    run = wait_for(run, timeout=120)
    assert run.status == JudgeRun.Status.DONE, (run.error, list(run.failures.values("kind", "message")))
    assert len(server.requests) == 8 and run.done == 8
    assert judge_votes(study) == {"x0": ("a", True), "x1": ("a", True), "x2": ("b", True), "x3": ("a", True)}
    assert b"judges.tasks.judge_chunk" in celery_worker.log_path.read_bytes()


def test_a_local_model_judge_runs_on_the_gpu_queue_and_its_nonsense_is_unparseable(tiny_model_dir, monkeypatch):
    from generation.models import ModelEndpoint
    from judges import tasks

    queues = []
    send = tasks.judge_chunk.apply_async

    def recording(args, **options):
        queues.append(options.get("queue"))
        return send(args, **options)

    monkeypatch.setattr(tasks.judge_chunk, "apply_async", recording)
    study = make_study("local-judged", n_instances=2)
    make_endpoint("local-judge", model=tiny_model_dir, kind=ModelEndpoint.Kind.LOCAL)
    run, chunks = runs.start_run(study, "local", "local-judge", runs.JudgeRunSettings(max_tokens=8))
    runs.launch(run, chunks)
    run.refresh_from_db()
    assert queues == ["gpu"] and run.status == JudgeRun.Status.DONE
    assert (run.done, run.total, run.unparseable) == (4, 4, 4)
    verdict = JudgeVerdict.objects.filter(judge=run.judge).first()
    assert verdict.request["temperature"] == 0 and verdict.request["max_new_tokens"] == 8
    assert not Vote.objects.filter(source=Vote.Source.JUDGE).exists()
