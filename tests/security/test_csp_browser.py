"""Every kind of page works under the site's Content-Security-Policy, in a real browser.

Debian's chromium (Playwright) visits, as the user each page is for: the home and sign-in pages
(anonymous), an annotator page with an item, one vote through htmx and the done page (an invited
annotator), and, signed in as staff, the dashboard and a study's dashboard (charts), a leaderboard with
charts, a dataset's separability page, the staff study pages, the admin index, a list, a change form and
the import page, and the Swagger UI page. A listener installed before any
page script records `securitypolicyviolation` events; console messages and page errors are recorded
too. The test asserts the policy header is there and that nothing was recorded: an inline script, an
event handler attribute, an injected <style> or an eval anywhere would show up here.
"""
from __future__ import annotations

import os

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from annotations.models import InviteLink
from tests.factories import make_study as make_queue_study
from tests.factories import make_voted_study

# Playwright's sync API runs an event loop in this thread; Django would refuse ORM calls next to it.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " +
                              e.sourceFile + ":" + e.lineNumber + " " + (e.sample || ""));
});
"""
# Conditions are functions, not expressions: Playwright evaluates an expression string with eval, which the
# policy refuses (as it should).
DASHBOARD_CHARTS_DRAWN = ("() => [...document.querySelectorAll('canvas[data-chart]')].length > 0 && "
                          "[...document.querySelectorAll('canvas[data-chart]')].every(c => c.dataset.drawn)")
LEADERBOARD_CHARTS_DRAWN = "() => window.Chart && ['bt-chart', 'elo-chart'].every(id => Chart.getChart(id))"


class Recorder:
    """One browser context: what it logged, per visited address."""

    def __init__(self, browser, base_url):
        self.base = base_url
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.add_init_script(RECORD_VIOLATIONS)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc} ({self.page.url})"))
        self.policies: dict[str, str | None] = {}
        self.page.on("response", self._remember_policy)

    def _console(self, message):
        # The site has no favicon: the browser's own request for /favicon.ico is a 404 that no page asked for.
        if message.location.get("url", "").endswith("/favicon.ico"):
            return
        self.problems.append(f"console {message.type}: {message.text} at {message.location} ({self.page.url})")

    def _remember_policy(self, response):
        if response.request.resource_type == "document":
            self.policies[response.url] = response.headers.get("content-security-policy")

    def visit(self, path: str, ready: str | None = None):
        """Open `path`; wait for the `ready` JS condition; collect its violations."""
        self.page.goto(self.base + path)
        self.settle(ready)

    def settle(self, ready: str | None = None):
        """Wait for the page (and `ready`), then collect its violations; a page that never gets ready is a
        problem reported with the rest, so a blocked script shows as its violation, not as a timeout."""
        self.page.wait_for_load_state("load")
        if ready:
            try:
                self.page.wait_for_function(ready)
            except PlaywrightTimeout:
                self.problems.append(f"never ready on {self.page.url}: {ready}")
        violations = self.page.evaluate("window.__cspViolations.splice(0)")
        self.problems.extend(f"CSP violation on {self.page.url}: {v}" for v in violations)

    def close(self):
        self.context.close()


@pytest.fixture
def recorder(browser, live_server):
    recorders = []

    def make():
        recorders.append(Recorder(browser, live_server.url))
        return recorders[-1]
    yield make
    for r in recorders:
        r.close()


def sign_in_as_staff(visitor):
    get_user_model().objects.create_user("csp-staff", password="csp-pass-123", is_staff=True, is_superuser=True)
    visitor.visit("/accounts/login/")
    visitor.page.fill("#id_username", "csp-staff")
    visitor.page.fill("#id_password", "csp-pass-123")
    visitor.page.get_by_role("button", name="Sign in").click()
    visitor.page.wait_for_url(f"{visitor.base}/dashboard/")
    visitor.settle()


def test_no_page_breaks_the_content_security_policy(recorder, live_server):
    from ranking.services import rebuild_study_ratings

    voted = make_voted_study(slug="csp-voted", n_instances=4, annotators=3)
    rebuild_study_ratings(voted, rounds=20)
    judged = make_queue_study(slug="csp-judge", n_instances=2, quota=2, rationale="optional")
    invite = InviteLink.objects.create(max_uses=2)
    invite.studies.add(judged)

    anonymous = recorder()
    anonymous.visit("/")
    anonymous.visit("/accounts/login/")

    annotator = recorder()
    annotator.visit(f"/invite/{invite.token}/")
    annotator.page.get_by_role("button", name="Start").click()
    annotator.page.wait_for_url(f"{live_server.url}/invite/{invite.token}/")  # now with the task list
    annotator.settle()
    annotator.page.get_by_role("link", name="Task 1").click()
    annotator.page.wait_for_url(f"{live_server.url}/s/{judged.slug}/")
    annotator.settle("() => document.querySelector('.answer-form button') !== null")
    annotator.page.locator(".answer-form button[value=left]").click()  # swapped in by htmx
    annotator.page.wait_for_function("() => document.querySelector('#progress-label').textContent.includes('1 of 2')")
    annotator.settle()
    annotator.page.locator(".answer-form button[value=right]").click()
    annotator.page.wait_for_url(f"{live_server.url}/s/{judged.slug}/done/")
    annotator.settle()

    staff = recorder()
    sign_in_as_staff(staff)
    staff.visit(f"/dashboard/studies/{voted.slug}/", ready=DASHBOARD_CHARTS_DRAWN)
    staff.visit(f"/leaderboard/{voted.slug}/", ready=LEADERBOARD_CHARTS_DRAWN)
    staff.visit(f"/dashboard/datasets/{voted.dataset.slug}/separability/")
    staff.visit("/studies/")
    staff.visit(f"/studies/{voted.slug}/")
    staff.visit(f"/studies/{voted.slug}/edit/")
    staff.visit("/admin/")
    staff.visit("/admin/annotations/vote/?winner__exact=a")
    staff.visit(f"/admin/annotations/study/{voted.pk}/change/")
    staff.visit("/admin/annotations/import/")
    staff.visit("/api/docs/", ready="() => document.querySelectorAll('#swagger-ui .opblock').length > 5")

    visited = {**anonymous.policies, **annotator.policies, **staff.policies}
    assert len(visited) >= 10, sorted(visited)
    missing = [url for url, policy in visited.items() if not policy or "script-src 'self'" not in policy]
    assert not missing, f"pages without the policy: {missing}"
    problems = anonymous.problems + annotator.problems + staff.problems
    assert not problems, "\n".join(problems)
