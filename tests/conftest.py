"""Shared fixtures: real services (PostgreSQL, Redis, a Celery worker process), users and demo data.

Tests that need a real service (PostgreSQL, Redis, a Celery worker, chromium) ask for its fixture;
without the service they fail, saying what is missing: they are never skipped. `make test` points
DATABASE_URL / CELERY_BROKER_URL / REDIS_URL at the local PostgreSQL and Redis when they answer and
nothing else is set; `.ci/run` sets them itself.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def service_missing(what: str):
    pytest.fail(f"{what} is required by this test but is not available (README, 'Tests', says how to "
                "run PostgreSQL, Redis and chromium)")


@pytest.fixture(scope="session", autouse=True)
def eager_celery_for_the_session():
    """Module- and session-scoped fixtures run before the per-test ones below: make them eager too, with
    the leaderboard recompute inline (a timer thread would write into a later test's database)."""
    from evalsite.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    settings.RECOMPUTE_IN_THREAD_WHEN_EAGER = False


@pytest.fixture(autouse=True)
def eager_celery_by_default():
    """Tasks run in-process unless a test asks for the real worker (see `celery_worker`)."""
    from evalsite.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def recompute_inline(settings):
    """Eager tasks run where they are called, as tests expect (a thread could not see a test's transaction)."""
    settings.RECOMPUTE_IN_THREAD_WHEN_EAGER = False


@pytest.fixture(autouse=True)
def plain_static_and_fast_hashing(settings):
    """Templates use {% static %}; the manifest storage needs collectstatic, which tests do not run.
    A fast password hasher keeps user creation cheap."""
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def postgres(db):
    from django.db import connection

    if connection.vendor != "postgresql":
        service_missing("PostgreSQL (DATABASE_URL)")
    return connection


@pytest.fixture
def redis_url():
    url = settings.CELERY_BROKER_URL
    if not url or not url.startswith("redis"):
        service_missing("Redis (CELERY_BROKER_URL)")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        service_missing(f"Redis at {url} ({exc})")
    return url


def database_url_for_subprocess() -> str:
    """The URL of the database the tests are using right now (the test database)."""
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "postgresql":
        user = s.get("USER") or "postgres"
        password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
        return f"postgres://{user}{password}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"
    return f"sqlite:///{s['NAME']}"


def subprocess_env(**extra) -> dict:
    env = dict(os.environ)
    env.update({"DATABASE_URL": database_url_for_subprocess(), "PYTHONUNBUFFERED": "1",
                "SECRET_KEY": settings.SECRET_KEY, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


class WorkerProcess:
    """A real `celery worker` process consuming both queues, on the test database."""

    def __init__(self, broker_url: str, queues: str = "default,gpu", log_path: Path | None = None):
        self.broker_url, self.queues = broker_url, queues
        self.log_path = log_path or (ROOT / "test-artifacts" / f"worker-{uuid.uuid4().hex[:8]}.log")
        self.process: subprocess.Popen | None = None
        self.hostname = f"test-{uuid.uuid4().hex[:8]}@%h"
        self.env_extra: dict[str, str] = {}

    def start(self):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "evalsite", "worker", "-Q", self.queues, "--pool", "solo",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--hostname", self.hostname],
            cwd=ROOT, env=subprocess_env(CELERY_BROKER_URL=self.broker_url, **self.env_extra), stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.wait_until_ready()
        return self

    def wait_until_ready(self, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited early; log: {self.log_path.read_text()[-3000:]}")
            if b"ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"celery worker not ready after {timeout}s; log: {self.log_path.read_text()[-3000:]}")

    def kill(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "log", None):
            self.log.close()


@pytest.fixture
def celery_worker(transactional_db, redis_url):
    """Start a real worker against Redis and the test database; tasks are sent, not run eagerly."""
    from django.db import connection

    from evalsite.celery import app

    if connection.vendor != "postgresql":
        service_missing("PostgreSQL (DATABASE_URL), which a worker process can share")
    app.conf.task_always_eager = False
    import redis

    redis.Redis.from_url(redis_url).flushdb()  # no stale messages from an earlier run
    worker = WorkerProcess(redis_url).start()
    yield worker
    worker.stop()
    app.conf.task_always_eager = True


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright (never `playwright install`); one per test module."""
    if not os.path.exists(CHROMIUM):
        service_missing(f"chromium at {CHROMIUM} (apt-get install chromium; `make test` does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def annotator_client(client):
    """A signed-in annotator (not staff)."""
    from tests.factories import make_account

    client.force_login(make_account("plain-annotator"))
    return client


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("staff", password="staff-pass-123", is_staff=True,
                                                 is_superuser=True)


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def screenshots(tmp_path) -> Path:
    """Where browser tests save their screenshots: docs/screenshots/ under `make screenshots`
    (SCREENSHOTS_DIR set), otherwise a temporary folder, so that `make test` leaves the tree clean."""
    target = Path(os.environ["SCREENSHOTS_DIR"]) if os.environ.get("SCREENSHOTS_DIR") else tmp_path / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A random-weight causal LM folder built offline (bench/model_server.build_tiny_model)."""
    from bench.model_server import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-lm") / "tiny-lm")


@pytest.fixture(scope="session")
def model_server(tiny_model_dir):
    """`transformers serve` (a real OpenAI-compatible server) serving the tiny model, for the session."""
    from bench.model_server import ModelServer

    server = ModelServer(tiny_model_dir, log_path=ROOT / "test-artifacts" / "transformers-serve.log")
    server.log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        server.start()
    except RuntimeError as error:
        service_missing(f"`transformers serve` ({error})")
    yield server
    server.stop()
