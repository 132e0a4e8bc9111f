"""Separability runs over stored datasets: rows, normalisation, idempotence, the real worker and a
worker killed mid-run (the real MiniLM model throughout)."""
import io
import json
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from annotations.models import Comparison, Dataset, Study
from separability.models import Alignment, SeparabilityRun
from separability.services import compute_dataset_separability

ROOT = Path(__file__).resolve().parents[2]
CNN = ROOT / "demo/data/separability-paper/flan-t5-xxl_gpt-3.5_turbo_instruct_cnn_dm_pref_data.csv"


def import_first_instances(tmp_path, instances: int, dataset="cnn-small", study="cnn-small-study"):
    """The first `instances` instances (3 worker rows each) of the real CNN/DM crowd batch."""
    lines = CNN.read_text(encoding="utf-8").splitlines(keepends=True)
    import csv

    rows = list(csv.reader(io.StringIO("".join(lines))))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(rows[0])
    seen = []
    for row in rows[1:]:
        key = tuple(row[1:11])
        if key not in seen:
            if len(seen) == instances:
                continue
            seen.append(key)
        writer.writerow(row)
    path = tmp_path / "cnn-small.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    call_command("import_pairwise_csv", str(path), "--dataset", dataset, "--study", study,
                 "--systems", "flan-t5-xxl,gpt-3.5-turbo-instruct", stdout=io.StringIO(), stderr=io.StringIO())
    return Dataset.objects.get(slug=dataset)


def alignment_values():
    return {
        (a.instance_id, a.system_a_id, a.system_b_id, a.metric): (a.self_a, a.self_b, a.cross, a.separability,
                                                                   a.normalised)
        for a in Alignment.objects.all()
    }


@pytest.mark.django_db
def test_run_stores_one_row_per_instance_pair_metric_and_normalises(tmp_path):
    dataset = import_first_instances(tmp_path, 4)
    run = compute_dataset_separability(dataset.slug)
    assert run.status == SeparabilityRun.Status.DONE and run.done == run.total == 4
    assert Alignment.objects.count() == 4 * 1 * 3
    for metric in ("bertscore", "bertscore_length", "rouge1"):
        rows = list(Alignment.objects.filter(metric=metric))
        values = [v for a in rows for v in (a.self_a, a.self_b, a.cross)]
        spread = max(values) - min(values)
        for a in rows:
            assert a.k_a == a.k_b == 5
            assert a.separability == pytest.approx(max(a.self_a, a.self_b) - a.cross)
            assert a.normalised == pytest.approx(a.separability / spread)


@pytest.mark.django_db
def test_running_twice_gives_the_same_rows_not_twice_as_many(tmp_path):
    dataset = import_first_instances(tmp_path, 3)
    compute_dataset_separability(dataset.slug)
    first = alignment_values()
    compute_dataset_separability(dataset.slug)
    second = alignment_values()
    assert len(second) == len(first) == 9
    for key, values in first.items():
        assert second[key] == pytest.approx(values, abs=1e-9)


@pytest.mark.django_db
def test_study_comparisons_get_their_units_separability(tmp_path):
    dataset = import_first_instances(tmp_path, 2)
    compute_dataset_separability(dataset.slug)
    study = Study.objects.get(slug="cnn-small-study")
    comparisons = list(Comparison.objects.filter(study=study))
    assert len(comparisons) == 2 * study.sample_pairs_per_unit  # every sample pair of both instances
    for comparison in comparisons:
        alignment = Alignment.objects.get(instance=comparison.instance, metric=study.policy_metric)
        assert comparison.separability == pytest.approx(alignment.normalised)


@pytest.mark.django_db
def test_single_sample_systems_are_undefined_with_a_reason(tmp_path):
    path = tmp_path / "k1.jsonl"
    path.write_text("\n".join(json.dumps(o) for o in [
        {"instance_id": "q1", "input": "Say hi.", "system": "one", "generations": ["Hello there."]},
        {"instance_id": "q1", "system": "two", "generations": ["Hi!", "Hey."]},
    ]) + "\n", encoding="utf-8")
    call_command("import_generations", str(path), "--dataset", "k1", stdout=io.StringIO())
    run = compute_dataset_separability("k1")
    assert run.status == SeparabilityRun.Status.DONE
    alignments = list(Alignment.objects.all())
    assert len(alignments) == 3  # one pair, three metrics
    for alignment in alignments:
        assert alignment.separability is None and alignment.normalised is None
        assert "sample" in alignment.undefined_reason


@pytest.mark.django_db
def test_export_separability_writes_one_json_line_per_row(tmp_path):
    dataset = import_first_instances(tmp_path, 2)
    compute_dataset_separability(dataset.slug)
    out = io.StringIO()
    call_command("export_separability", "--dataset", dataset.slug, stdout=out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(records) == 2 * 3
    assert {"instance_id", "system_a", "system_b", "metric", "self_a", "self_b", "cross", "separability",
            "normalised", "k_a", "k_b"} <= set(records[0])


def wait_for_run(run_id, timeout, condition=lambda run: run.status in ("done", "failed")):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = SeparabilityRun.objects.get(pk=run_id)
        if condition(run):
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} did not reach the condition in {timeout}s: "
                         f"{SeparabilityRun.objects.get(pk=run_id).__dict__}")


@pytest.mark.services
def test_real_worker_computes_a_dataset_through_redis_into_postgres(tmp_path, celery_worker, settings):
    settings.SEPARABILITY_CHUNK_INSTANCES = 2
    dataset = import_first_instances(tmp_path, 4)
    run = compute_dataset_separability(dataset.slug)
    assert run.status == SeparabilityRun.Status.QUEUED  # sent to the gpu queue, not run here
    run = wait_for_run(run.pk, 240)
    assert run.status == "done", run.errors
    assert run.chunks_done == [0, 1]
    assert Alignment.objects.filter(instance__dataset=dataset).count() == 12
    assert not Alignment.objects.filter(instance__dataset=dataset, metric="bertscore", normalised__isnull=True).exists()


@pytest.mark.services
@pytest.mark.reliability
def test_worker_killed_mid_run_is_redelivered_and_results_equal_an_uninterrupted_run(tmp_path, transactional_db,
                                                                                    redis_url, settings):
    from django.db import connection

    from evalsite.celery import app
    from tests.conftest import WorkerProcess, service_missing

    if connection.vendor != "postgresql":
        service_missing("PostgreSQL (DATABASE_URL)")
    dataset = import_first_instances(tmp_path, 6)
    reference_run = compute_dataset_separability(dataset.slug)  # eager, uninterrupted, in this process
    assert reference_run.status == "done"
    reference = alignment_values()
    Alignment.objects.all().delete()

    settings.SEPARABILITY_CHUNK_INSTANCES = 1
    app.conf.task_always_eager = False
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    # A short visibility timeout (worker side) so the killed worker's unacknowledged chunk comes back quickly.
    worker = WorkerProcess(redis_url)
    worker.env_extra = {"CELERY_VISIBILITY_TIMEOUT": "5"}
    worker.start()
    try:
        run = compute_dataset_separability(dataset.slug)
        wait_for_run(run.pk, 240, lambda r: r.done >= 1)
        worker.kill()
        killed_at = SeparabilityRun.objects.get(pk=run.pk)
        assert killed_at.done < killed_at.total, "the worker was killed before the run finished"
        time.sleep(6)
        worker = WorkerProcess(redis_url)
        worker.env_extra = {"CELERY_VISIBILITY_TIMEOUT": "5"}
        worker.start()
        run = wait_for_run(run.pk, 300)
    finally:
        worker.stop()
        app.conf.task_always_eager = True
    assert run.status == "done", run.errors
    assert sorted(run.chunks_done) == list(range(6))
    result = alignment_values()
    assert set(result) == set(reference), "every result present exactly once"
    for key, values in reference.items():
        assert result[key] == pytest.approx(values, abs=1e-6)
