"""Infrastructure tasks that belong to no single app (used by the worker round-trip test and /healthz)."""
from celery import shared_task
from django.db import connection


@shared_task(name="evalsite.tasks.record_heartbeat", acks_late=True, reject_on_worker_lost=True)
def record_heartbeat(label: str) -> int:
    """Write one row proving a worker reached the database; returns its id."""
    from lib.models import WorkerHeartbeat

    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(label=label, defaults={"db_vendor": connection.vendor})
    return heartbeat.pk
