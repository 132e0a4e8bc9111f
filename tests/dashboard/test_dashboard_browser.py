"""The dashboard in a real browser (Debian's chromium through Playwright): a researcher signs in, opens a
demo study's dashboard where every plot actually draws, downloads an export that parses, and watches a
separability run's progress update live (htmx polling) on the dataset's separability page.

Separability here is the cheap ROUGE-1 metric computed by the engine directly, so this test needs no
model; tests/dashboard/test_paper_consistency.py covers the BERTScore path.
Its screenshots become docs/screenshots/dashboard.png and separability.png under `make screenshots`.
"""
import csv
import io
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from annotations.imports.parse import parse_pairwise_csv
from annotations.imports.write import write_pairwise
from annotations.models import Study
from demo import sources as demo

# Playwright's sync API runs an event loop in this thread; Django would refuse ORM calls next to it.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAPER = demo.PAPER_DEMOS[1]

# True when the canvas has a size and differs from a blank canvas of the same size.
CANVAS_DRAWN = """(canvas) => {
  if (!canvas.width || !canvas.height) return false;
  const blank = document.createElement('canvas');
  blank.width = canvas.width; blank.height = canvas.height;
  return canvas.toDataURL() !== blank.toDataURL();
}"""


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, errors


@pytest.fixture
def study_with_separability():
    """The SAMSum crowd batch with its historical votes, ROUGE-1 separability and leaderboards."""
    from ranking.services import rebuild_study_ratings
    from separability.engine import compute_separability
    from separability.models import Alignment, SeparabilityRun
    from separability.services import copy_separability_to_comparisons, instance_samples, normalise_dataset

    with transaction.atomic():
        parsed = parse_pairwise_csv(demo.DEMO_DIR / PAPER.file, settings.IMPORT_MAX_TEXT_BYTES)
        study, _ = write_pairwise(parsed, PAPER.dataset, PAPER.study, PAPER.systems)
    Study.objects.filter(pk=study.pk).update(policy_metric="rouge1", policy="threshold", threshold=0.3)
    study.refresh_from_db()
    ids = list(study.dataset.instances.values_list("id", flat=True))
    run = SeparabilityRun.objects.create(dataset=study.dataset, metrics=["rouge1"], total=len(ids), done=len(ids),
                                         chunks_total=1, chunks_done=[0], status="done")
    rows = [Alignment(instance_id=r.key, system_a_id=r.system_a, system_b_id=r.system_b, metric=r.metric,
                      self_a=r.self_a, self_b=r.self_b, cross=r.cross, separability=r.separability, k_a=r.k_a,
                      k_b=r.k_b, undefined_reason=r.undefined_reason, run=run)
            for chunk in compute_separability(instance_samples(ids), None, metrics=("rouge1",)) for r in chunk]
    Alignment.objects.bulk_create(rows)
    normalise_dataset(study.dataset)
    copy_separability_to_comparisons(study.dataset)
    rebuild_study_ratings(study, rounds=20)
    return study


def sign_in(page, base_url):
    get_user_model().objects.create_user("researcher-b", password="browser-pass-123", is_staff=True)
    page.goto(f"{base_url}/dashboard/")
    page.wait_for_url(f"{base_url}/accounts/login/?next=/dashboard/")
    page.fill("#id_username", "researcher-b")
    page.fill("#id_password", "browser-pass-123")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/dashboard/")


def assert_every_canvas_drawn(page, at_least):
    # A function, not an expression: Playwright evals an expression string, which the site's CSP refuses.
    page.wait_for_function("() => document.querySelectorAll('canvas[data-chart]').length > 0 && "
                           "[...document.querySelectorAll('canvas[data-chart]')].every(c => c.dataset.drawn)")
    canvases = page.locator("canvas[data-chart]")
    assert canvases.count() >= at_least
    for i in range(canvases.count()):
        canvas = canvases.nth(i)
        box = canvas.bounding_box()
        assert box and box["width"] > 50 and box["height"] > 50, canvas.get_attribute("data-chart")
        assert canvas.evaluate(CANVAS_DRAWN), f"{canvas.get_attribute('data-chart')} is blank"


def test_dashboard_plots_export_and_live_run_progress(page, live_server, study_with_separability, screenshots):
    from separability.models import SeparabilityRun

    study = study_with_separability
    sign_in(page, live_server.url)
    assert page.locator("progress").count() >= 1
    page.get_by_role("link", name=study.slug).click()
    page.wait_for_url(f"{live_server.url}/dashboard/studies/{study.slug}/")
    # timeline, agreement per annotator, one consistency scatter, two leaderboard charts
    assert_every_canvas_drawn(page, at_least=5)
    assert page.locator("#krippendorff-alpha").inner_text() not in ("", "—")
    assert page.locator("#annotator-table tbody tr").count() > 3
    page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)

    with page.expect_download() as download_info:
        page.locator("#export-csv").click()
    download = download_info.value
    assert download.suggested_filename == f"{study.slug}-votes.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert len(rows) == study.votes.count() == 750
    assert all(r["annotator"].startswith("ann-") for r in rows)

    running = SeparabilityRun.objects.create(dataset=study.dataset, metrics=["rouge1"], total=50, done=10,
                                             chunks_total=5, chunks_done=[0], status="running")
    page.goto(f"{live_server.url}/dashboard/datasets/{study.dataset.slug}/separability/")
    assert_every_canvas_drawn(page, at_least=1)
    run_box = page.locator(f"#run-{running.pk}")
    assert "10 / 50 instances" in run_box.inner_text()
    assert page.locator("#start-run").is_disabled()
    assert page.locator(".unit").first.locator("tbody tr").count() == 5  # all k samples, side by side
    page.screenshot(path=str(screenshots / "separability.png"), full_page=True)
    SeparabilityRun.objects.filter(pk=running.pk).update(done=50, chunks_done=[0, 1, 2, 3, 4], status="done")
    page.wait_for_function(f"() => document.querySelector('#run-{running.pk} .run-counts')"
                           ".textContent.includes('50 / 50')",
                           timeout=8_000)
    assert page.locator(f"#run-{running.pk} .run-status").inner_text() == "Done"
    assert page.locator(f"#run-{running.pk}").get_attribute("hx-trigger") is None  # polling stopped
