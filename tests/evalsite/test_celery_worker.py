"""A real `celery worker` process, started against Redis, writes to PostgreSQL; the test reads it back."""
import os
import uuid

import pytest

from evalsite.celery import lowered_niceness
from evalsite.tasks import record_heartbeat
from lib.models import WorkerHeartbeat

pytestmark = pytest.mark.services


def test_worker_process_writes_row_through_redis_into_postgres(celery_worker):
    label = f"roundtrip-{uuid.uuid4().hex[:8]}"
    result = record_heartbeat.apply_async(args=[label])
    # disable_sync_subtasks: an earlier in-process eager task may leave Celery believing it runs inside one.
    row_id = result.get(timeout=60, disable_sync_subtasks=False)
    row = WorkerHeartbeat.objects.get(pk=row_id)
    assert row.label == label
    assert row.db_vendor == "postgresql"
    assert celery_worker.process.poll() is None, "the worker is a separate, still running process"


def test_celery_sends_each_task_to_its_queue_and_acknowledges_it_late():
    """What Celery's own router decides for the real tasks (not the settings read back): separability on the
    gpu queue, ratings on default; and a task is acknowledged only once it finished, so a killed worker's
    task is delivered again."""
    from celery import current_app

    from ranking.tasks import recompute_leaderboards
    from separability.tasks import compute_separability_chunk

    router = current_app.amqp.router
    assert router.route({}, compute_separability_chunk.name)["queue"].name == "gpu"
    assert router.route({}, recompute_leaderboards.name)["queue"].name == "default"
    assert compute_separability_chunk.acks_late and current_app.conf.task_reject_on_worker_lost


def test_worker_process_runs_at_the_configured_niceness_below_the_web_site(celery_worker, settings):
    """The worker lowers its own CPU priority when it starts (settings.WORKER_NICENESS, default 10), so its
    bootstrapped recomputes do not take the cores from annotators' requests (docs/benchmarks.md)."""
    assert settings.WORKER_NICENESS == 10
    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, celery_worker.process.pid) == min(19, max(own, 10))


def test_a_worker_started_nicer_than_configured_stays_there_and_niceness_is_capped_at_19():
    assert lowered_niceness(0, 10) == 10
    assert lowered_niceness(15, 10) == 15
    assert lowered_niceness(3, 40) == 19
    assert lowered_niceness(0, 0) == 0
