"""Generation runs survive what happens to real deployments: the model server dying mid-run and coming
back, and the worker dying mid-chunk (its chunk is delivered again). Real PostgreSQL, Redis, a Celery worker
process and `transformers serve`; the run must complete with every sample exactly once."""
from __future__ import annotations

import time

import pytest
from django.db import connection

from annotations.models import Generation, System
from bench.model_server import ModelServer, free_port
from generation import services
from generation.models import GenerationRun, SampleProvenance
from tests.factories import make_endpoint, make_prompt_dataset

pytestmark = [pytest.mark.services, pytest.mark.reliability, pytest.mark.django_db(transaction=True)]


def wait_for_run(run_id: int, timeout: float, until=lambda run: run.is_finished) -> GenerationRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = GenerationRun.objects.get(pk=run_id)
        if until(run):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} not there after {timeout}s: {GenerationRun.objects.get(pk=run_id).__dict__}")


def assert_every_sample_once(dataset, systems, k):
    rows = list(Generation.objects.filter(instance__dataset=dataset)
                .values_list("instance__external_id", "system__name", "sample_index"))
    expected = [(i.external_id, s, n) for i in dataset.instances.all() for s in systems for n in range(k)]
    assert sorted(rows) == sorted(expected)
    assert SampleProvenance.objects.filter(generation__instance__dataset=dataset).count() == len(expected)


def test_the_server_killed_mid_run_and_restarted_the_run_resumes_with_no_duplicates(
        transactional_db, redis_url, tiny_model_dir, settings, tmp_path):
    from evalsite.celery import app
    from tests.conftest import WorkerProcess, service_missing

    if connection.vendor != "postgresql":
        service_missing("PostgreSQL (DATABASE_URL)")
    import redis

    settings.GENERATION_CHUNK_INSTANCES = 2
    app.conf.task_always_eager = False
    redis.Redis.from_url(redis_url).flushdb()
    worker = WorkerProcess(redis_url)
    worker.env_extra = {"GENERATION_RETRY_SECONDS": "3,3,5,10,20"}  # the production steps, shortened
    worker.start()
    port = free_port()
    server = ModelServer(tiny_model_dir, port=port, log_path=tmp_path / "serve.log").start()
    try:
        dataset = make_prompt_dataset(n_instances=4)
        make_endpoint("flaky", server.base_url, tiny_model_dir, max_concurrency=1, max_retries=1)
        run = services.generate(dataset, [System.objects.get(name="flaky")],
                                services.RunSettings(k=5, max_tokens=24, chain_separability=False))
        wait_for_run(run.pk, 120, lambda r: r.done >= 3)
        server.kill()
        killed = GenerationRun.objects.get(pk=run.pk)
        assert killed.done < killed.total, "the server was killed before the run finished"
        time.sleep(1)
        server = ModelServer(tiny_model_dir, port=port, log_path=tmp_path / "serve-again.log").start()
        run = wait_for_run(run.pk, 240)
    finally:
        server.stop()
        worker.stop()
        app.conf.task_always_eager = True
    assert run.status == GenerationRun.Status.DONE, list(run.failures.values("kind", "message"))
    assert run.done == run.total == 20 and run.failed == 0
    assert_every_sample_once(dataset, ["flaky"], 5)


def test_a_worker_killed_mid_chunk_has_its_chunk_redelivered_and_nothing_is_doubled(
        transactional_db, redis_url, model_server, settings):
    from evalsite.celery import app
    from tests.conftest import WorkerProcess, service_missing

    if connection.vendor != "postgresql":
        service_missing("PostgreSQL (DATABASE_URL)")
    import redis

    settings.GENERATION_CHUNK_INSTANCES = 3
    app.conf.task_always_eager = False
    redis.Redis.from_url(redis_url).flushdb()
    # A short visibility timeout (worker side) so the killed worker's unacknowledged chunk comes back quickly;
    # it also redelivers chunks that run longer than 5 s while they still run: both deliveries then race.
    worker = WorkerProcess(redis_url)
    worker.env_extra = {"CELERY_VISIBILITY_TIMEOUT": "5"}
    worker.start()
    try:
        dataset = make_prompt_dataset(n_instances=6)
        make_endpoint("steady", model_server.base_url, model_server.model_dir, max_concurrency=2)
        run = services.generate(dataset, [System.objects.get(name="steady")],
                                services.RunSettings(k=4, max_tokens=32, chain_separability=False))
        wait_for_run(run.pk, 120, lambda r: r.done >= 2)
        worker.kill()
        assert GenerationRun.objects.get(pk=run.pk).done < 24, "the worker was killed before the run finished"
        time.sleep(6)
        worker = WorkerProcess(redis_url)
        worker.env_extra = {"CELERY_VISIBILITY_TIMEOUT": "5"}
        worker.start()
        run = wait_for_run(run.pk, 240)
    finally:
        worker.stop()
        app.conf.task_always_eager = True
    assert run.status == GenerationRun.Status.DONE, list(run.failures.values("kind", "message"))
    assert run.done == run.total == 24
    assert_every_sample_once(dataset, ["steady"], 4)
