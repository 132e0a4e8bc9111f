"""The Celery application: two queues, `gpu` for separability and `default` for everything else.

With no CELERY_BROKER_URL the settings make every task run eagerly in-process (the embedded default).
"""
import os

from celery import Celery
from celery.signals import worker_init
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")

app = Celery("evalsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
if not app.conf.broker_url:
    # Embedded: tasks run eagerly and no broker is ever contacted; an in-memory transport keeps kombu from
    # warning "No hostname was supplied. Reverting to default 'localhost'" on every start.
    app.conf.broker_url = "memory://"
app.conf.task_queues = (Queue("default"), Queue("gpu"))
app.autodiscover_tasks()
app.conf.imports = ("evalsite.tasks",)


def lowered_niceness(current: int, wanted: int) -> int:
    """The niceness a starting worker moves to: `wanted`, but never below where it already is (a worker
    started under `nice -n 15` stays at 15; lowering niceness needs privileges) and at most 19."""
    return min(19, max(current, wanted))


@worker_init.connect
def lower_worker_priority(**_kwargs) -> None:
    """Background work yields the CPU to the web site (settings.WORKER_NICENESS); a prefork pool's
    children inherit the niceness of the process that forks them."""
    from django.conf import settings

    wanted = getattr(settings, "WORKER_NICENESS", 0)
    if wanted <= 0:
        return
    current = os.getpriority(os.PRIO_PROCESS, 0)
    target = lowered_niceness(current, wanted)
    if target != current:
        os.setpriority(os.PRIO_PROCESS, 0, target)
