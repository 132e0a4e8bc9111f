"""Real processes for the fault tests: a private `redis-server` that can be killed and restarted, the
site under gunicorn (the deployed configuration) on the test database, and annotators that use it
over HTTP the way a browser with htmx does.

Nothing here touches the shared Redis or PostgreSQL configuration: each test starts its own
redis-server on a free port, its own gunicorn, and stops them (its own process groups only).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, service_missing, subprocess_env

TOKEN = re.compile(r'name="token" value="([^"]+)"')
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GaveUp(Exception):
    """Raised by a `wait_until` predicate when waiting longer cannot help (a process died)."""


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll until `predicate()` is truthy (exceptions but GaveUp count as not yet); fail at the deadline."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except GaveUp:
            raise
        except Exception as exc:  # noqa: BLE001 - not ready yet
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s (last error: {last_error!r})")


def stop_group(process: subprocess.Popen | None, sig=signal.SIGTERM, timeout: float = 20) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


class RedisServer:
    """A private redis-server without persistence: killing it loses everything it held."""

    def __init__(self, folder: Path):
        self.folder, self.port = folder, free_port()
        self.process: subprocess.Popen | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            service_missing("the redis-server program")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)],
            stdout=(self.folder / "redis.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        import redis

        wait_until(lambda: redis.Redis(port=self.port, socket_connect_timeout=1).ping(), 30, "redis-server start")
        return self

    def kill(self) -> None:
        """A crash: SIGKILL, nothing flushed (there is nothing to flush: no persistence)."""
        stop_group(self.process, signal.SIGKILL)

    def stop(self) -> None:
        stop_group(self.process)


class SiteServer:
    """The site under `gunicorn -c gunicorn.conf.py` (2 gthread workers) on the test database."""

    def __init__(self, **env):
        self.env = {"STATIC_MANIFEST": "0", "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "4", "LOG_LEVEL": "INFO",
                    **{k: str(v) for k, v in env.items()}}
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"gunicorn-{uuid.uuid4().hex[:8]}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> SiteServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}",
             "evalsite.wsgi"],
            cwd=ROOT, env=subprocess_env(**self.env), stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True)

        def up():
            if self.process.poll() is not None:
                raise GaveUp(f"gunicorn exited: {self.log()[-3000:]}")
            return requests.get(f"{self.base}/healthz", timeout=5).status_code == 200

        wait_until(up, 90, "gunicorn start")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_group(self.process)


class Annotator:
    """One browser: its own cookies and CSRF token; votes as htmx posts them (the answer is the next item)."""

    def __init__(self, base: str, slug: str):
        self.base, self.slug = base, slug
        self.session = requests.Session()
        self.token: str | None = None

    def join(self, invite_url: str) -> Annotator:
        self.session.get(invite_url, timeout=60).raise_for_status()
        self.session.post(invite_url, data={"csrfmiddlewaretoken": self.session.cookies["csrftoken"]},
                          timeout=60).raise_for_status()  # lands on the tasks page (with the personal link)
        page = self.session.get(f"{self.base}/s/{self.slug}/", timeout=60)
        page.raise_for_status()
        self.token = self._token_in(page)
        return self

    @staticmethod
    def _token_in(response) -> str | None:
        match = TOKEN.search(response.text)
        return match.group(1) if match else None

    def reload(self) -> requests.Response:
        page = self.session.get(f"{self.base}/s/{self.slug}/", timeout=60)
        self.token = self._token_in(page) if page.status_code == 200 else None
        return page

    def vote(self, choice: str = "left", token: str | None = None) -> requests.Response:
        """POST an answer for `token` (default: the item on screen); the next item becomes the one on screen."""
        response = self.session.post(
            f"{self.base}/s/{self.slug}/vote/", timeout=60,
            headers={"HX-Request": "true", "X-CSRFToken": self.session.cookies["csrftoken"]},
            data={"token": token or self.token, "choice": choice})
        if response.headers.get("HX-Redirect"):
            self.token = None
        else:
            self.token = self._token_in(response)
        return response

    def close(self) -> None:
        self.session.close()


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()
