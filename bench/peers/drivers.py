"""One client of each system for the peers benchmark's load generator (bench/peers/loop.py): the
HTTP requests a person's browser makes per judgement on that system, and nothing more.

- This site: the vote POST as htmx sends it; its answer is the next item (bench/web_load.py's cycle,
  sign-in through a multi-use invite link).
- Label Studio: `POST /api/tasks/<id>/annotations/?project=<id>` (a Choices result, lead_time,
  project), then `GET /api/projects/<id>/next/`, as its labeling stream does, with a legacy token.
- Potato: `POST /updateinstance` (the answer), `POST /annotate` {"action": "next_instance"} with
  `X-Potato-Navigation: 1`, then `GET /annotate` (the page), as its annotation.js does on "Next".

A failed cycle (a non-2xx answer) is recorded as failed and the client recovers by reloading its
current item at the start of the next cycle; the key of every judgement the system acknowledged goes
to the audit.
"""
from __future__ import annotations

import random
import re

from bench.peers.loop import Cycle
from bench.web_load import CHOICES, TOKEN, _sign_in

TIMEOUT = 120
LS_CHOICES = ("A", "B", "Tie")
POTATO_CHOICES = ("A", "B", "tie")
POTATO_ITEM = re.compile(r'id="instance_id" name="instance_id" type="hidden" value="([^"]*)"')


def _session():
    import requests

    return requests.Session()


class SiteClient:
    """An annotator of this site (target: base, slug, invite_url)."""

    def __init__(self, target: dict, index: int, seed: int):
        self.rng = random.Random(seed)
        self.session = _session()
        self.page_url = f"{target['base']}/s/{target['slug']}/"
        self.vote_url = f"{self.page_url}vote/"
        self.invite_url = target["invite_url"]
        self.token: str | None = None

    def sign_in(self) -> None:
        self.token = _sign_in(self.session, self.invite_url, self.page_url)

    def cycle(self) -> Cycle:
        if self.token is None:  # after a failed cycle: reload the page for the current item
            page = self.session.get(self.page_url, timeout=TIMEOUT)
            match = TOKEN.search(page.text) if page.status_code == 200 else None
            if match is None:
                return Cycle(ok=False, done=page.status_code == 200, error=f"page {page.status_code} {page.url}")
            self.token = match.group(1)
        token = self.token
        response = self.session.post(
            self.vote_url, timeout=TIMEOUT, data={"token": token, "choice": self.rng.choice(CHOICES)},
            headers={"HX-Request": "true", "HX-Current-URL": self.page_url, "HX-Target": "item",
                     "X-CSRFToken": self.session.cookies["csrftoken"]})
        if not 200 <= response.status_code < 300:
            self.token = None
            return Cycle(ok=False, error=f"vote {response.status_code}: {response.text[:160]!r}")
        if response.headers.get("HX-Redirect"):
            return Cycle(ok=True, acknowledged=token, done=True)
        match = TOKEN.search(response.text)
        self.token = match.group(1) if match else None
        if match is None:
            return Cycle(ok=False, acknowledged=token, error="no next item in a 2xx answer")
        return Cycle(ok=True, acknowledged=token)

    def close(self) -> None:
        self.session.close()


class LabelStudioClient:
    """An annotator of a Label Studio project through its API (target: base, project, tokens)."""

    def __init__(self, target: dict, index: int, seed: int):
        self.rng = random.Random(seed)
        self.session = _session()
        self.session.headers["Authorization"] = f"Token {target['tokens'][index]}"
        self.project = target["project"]
        self.next_url = f"{target['base']}/api/projects/{self.project}/next/"
        self.annotate_url = target["base"] + "/api/tasks/{task}/annotations/?project=" + str(self.project)
        self.task: int | None = None

    def _next(self) -> tuple[int | None, str]:
        response = self.session.get(self.next_url, timeout=TIMEOUT)
        if response.status_code == 200:
            return response.json()["id"], ""
        if response.status_code == 404:
            return None, ""
        return None, f"next {response.status_code}: {response.text[:160]!r}"

    def sign_in(self) -> None:
        self.task, error = self._next()
        if self.task is None:
            raise RuntimeError(error or "no task for this annotator")

    def cycle(self) -> Cycle:
        if self.task is None:
            self.task, error = self._next()
            if self.task is None:
                return Cycle(ok=False, done=not error, error=error)
        body = {"result": [{"from_name": "choice", "to_name": "a", "type": "choices",
                            "value": {"choices": [self.rng.choice(LS_CHOICES)]}}],
                "lead_time": 1.0, "project": self.project}
        response = self.session.post(self.annotate_url.format(task=self.task), json=body, timeout=TIMEOUT)
        if response.status_code != 201:
            self.task = None
            return Cycle(ok=False, error=f"annotation {response.status_code}: {response.text[:160]!r}")
        key = str(response.json()["id"])
        self.task, error = self._next()
        if error:
            return Cycle(ok=False, acknowledged=key, error=error)
        return Cycle(ok=True, acknowledged=key, done=self.task is None)

    def close(self) -> None:
        self.session.close()


class PotatoClient:
    """A passwordless annotator of a Potato task (target: base)."""

    def __init__(self, target: dict, index: int, seed: int):
        self.rng = random.Random(seed)
        self.session = _session()
        self.base = target["base"]
        self.user = f"peer-{index}"
        self.item: str | None = None
        self.answered: set[str] = set()

    def _page_item(self) -> tuple[str | None, str]:
        page = self.session.get(f"{self.base}/annotate", timeout=TIMEOUT)
        if page.status_code != 200:
            return None, f"page {page.status_code}: {page.text[:160]!r}"
        match = POTATO_ITEM.search(page.text)
        return (match.group(1) if match and match.group(1) else None), ""

    def _advance(self, item: str) -> tuple[str | None, str]:
        response = self.session.post(f"{self.base}/annotate", json={"action": "next_instance", "instance_id": item},
                                     headers={"X-Potato-Navigation": "1"}, timeout=TIMEOUT)
        if response.status_code != 200:
            return None, f"next_instance {response.status_code}: {response.text[:160]!r}"
        return self._page_item()

    def sign_in(self) -> None:
        response = self.session.post(f"{self.base}/auth", data={"email": self.user}, timeout=TIMEOUT)
        response.raise_for_status()
        match = POTATO_ITEM.search(response.text)
        self.item = match.group(1) if match else None
        if not self.item:
            raise RuntimeError(f"no item after signing in ({response.status_code} {response.url})")

    def cycle(self) -> Cycle:
        if self.item is None:  # after a failed cycle: reload the page for the current item
            self.item, error = self._page_item()
            if self.item is None:
                return Cycle(ok=False, done=not error, error=error or "no item on the page")
        if self.item in self.answered:  # the failed cycle had stored the answer: move on first
            moved, error = self._advance(self.item)
            if moved is None or moved == self.item:
                self.item = None
                return Cycle(ok=False, done=not error, error=error)
            self.item = moved
        item = self.item
        response = self.session.post(f"{self.base}/updateinstance", timeout=TIMEOUT, json={
            "instance_id": item, "annotations": {"preference:selection": self.rng.choice(POTATO_CHOICES)},
            "span_annotations": [], "client_timestamp": "2026-01-01T00:00:00Z", "response_time_seconds": 1.0})
        if response.status_code != 200 or response.json().get("status") != "success":
            self.item = None
            return Cycle(ok=False, error=f"updateinstance {response.status_code}: {response.text[:160]!r}")
        self.answered.add(item)
        key = f"{self.user}/{item}"
        moved, error = self._advance(item)
        if error:
            self.item = None
            return Cycle(ok=False, acknowledged=key, error=error)
        self.item = moved
        return Cycle(ok=True, acknowledged=key, done=moved is None or moved == item)

    def close(self) -> None:
        self.session.close()
