"""Starting a separability run from the dashboard without holding the request open.

With a broker, `compute_dataset_separability` only queues chunk tasks on the `gpu` queue and returns
at once. Embedded (no broker, tasks eager) it would compute the whole dataset inside the request,
minutes on a CPU, longer than a gunicorn timeout; so there it runs in a background thread of the web
process and the page follows it through the progress fragment like any queued run.
"""
from __future__ import annotations

import logging
import threading
import time

from django.db import connections

from lib.tasks import tasks_run_eagerly

log = logging.getLogger(__name__)

# Tests switch this off to run embedded work inline (a thread cannot see a test's open transaction).
BACKGROUND_WHEN_EAGER = True




def start_separability_run(dataset, metrics: list[str] | None = None, wait_for_record: float = 5.0):
    """Start a run; returns its SeparabilityRun (or None if the background thread had not created it
    within `wait_for_record` seconds)."""
    from separability.models import SeparabilityRun
    from separability.services import compute_dataset_separability

    if not (tasks_run_eagerly() and BACKGROUND_WHEN_EAGER):
        return compute_dataset_separability(dataset.slug, metrics)
    before = SeparabilityRun.objects.filter(dataset=dataset).order_by("-id").values_list("id", flat=True).first() or 0

    def work():
        try:
            compute_dataset_separability(dataset.slug, metrics)
        except Exception:  # noqa: BLE001 - the failure is recorded on the run by the task
            log.exception("separability run of %s failed", dataset.slug)
        finally:
            connections.close_all()  # this thread's own connections

    threading.Thread(target=work, name=f"separability-{dataset.slug}", daemon=True).start()
    deadline = time.monotonic() + wait_for_record
    while time.monotonic() < deadline:
        run = SeparabilityRun.objects.filter(dataset=dataset, id__gt=before).order_by("id").first()
        if run is not None:
            return run
        time.sleep(0.1)
    return None
