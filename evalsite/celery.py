"""The Celery application: two queues, `gpu` for separability and `default` for everything else.

With no CELERY_BROKER_URL the settings make every task run eagerly in-process (the embedded default).
"""
import os

from celery import Celery
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
