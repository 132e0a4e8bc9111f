"""Running queued work the same way with a broker and without one (the embedded mode, docs/design.md §1.4).

With a broker, sending tasks returns at once. Embedded, Celery runs them eagerly where they are sent, which
inside a request would hold it for the whole run; so there the sending happens in a background thread of
the process, and pages follow the run's record as they would a queued one."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import connections

log = logging.getLogger(__name__)


def tasks_run_eagerly() -> bool:
    from celery import current_app  # the project's app (evalsite.celery), without importing the project

    return bool(current_app.conf.task_always_eager)


def send_tasks(send: Callable[[], None], name: str, background_when_eager: bool = True) -> None:
    """Call `send` (which queues a run's tasks): here with a broker, or when `background_when_eager` is off
    (tests: a thread cannot see a test's open transaction); embedded, in a daemon thread named `name`."""
    if not (tasks_run_eagerly() and background_when_eager):
        send()
        return

    def work():
        try:
            send()
        except Exception:  # noqa: BLE001 - the tasks record their failure on the run
            log.exception("%s failed", name)
        finally:
            connections.close_all()  # this thread's own connections

    threading.Thread(target=work, name=name, daemon=True).start()
