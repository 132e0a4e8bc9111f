"""A real `celery worker` process, started against Redis, writes to PostgreSQL; the test reads it back."""
import uuid

import pytest

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


def test_tasks_are_routed_to_their_queues():
    from django.conf import settings

    routes = settings.CELERY_TASK_ROUTES
    assert routes["separability.tasks.*"]["queue"] == "gpu"
    assert routes["ranking.tasks.*"]["queue"] == "default"
    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST
