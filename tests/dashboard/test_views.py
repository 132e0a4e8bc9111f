"""Dashboard pages on a small hand-built study: the per-annotator figures, run progress and its polling,
starting a run, background exports and their failure, and bad parameters (404, never 500)."""
from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.models import Vote
from dashboard import exports, queries
from dashboard.models import ExportJob
from separability.models import SeparabilityRun
from tests.factories import make_voted_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    return make_voted_study("views")


def test_progress_counts_target_active_annotators_and_leases(study):
    progress = queries.study_progress(study)
    # 4 instances x 2 sample pairs = 8 comparisons x 3 annotators; the last comparison is only leased
    assert progress["target"] == 24 and progress["counted"] == progress["votes"] == 21
    assert progress["leases_out"] == 3 and progress["active_annotators"] == 3
    later = queries.study_progress(study, now=timezone.now() + timedelta(hours=2))
    assert later["active_annotators"] == 0 and later["leases_out"] == 0


def test_annotator_table_figures(study, staff_client):
    response = staff_client.get(f"/dashboard/studies/{study.slug}/")
    assert response.status_code == 200
    rows = {row["pseudonym"]: row for row in response.context["annotators"]}
    assert len(rows) == 3 and all(row["votes"] == 7 for row in rows.values())
    first = min(rows.values(), key=lambda r: r["median_seconds"])
    assert first["median_seconds"] == 5.0 and first["too_fast_share"] == pytest.approx(1 / 7)
    for row in rows.values():
        votes = Vote.objects.filter(annotator__annotator__pseudonym=row["pseudonym"])
        lefts = votes.filter(choice="left").count()
        assert row["left_share"] == pytest.approx(lefts / votes.filter(choice__in=("left", "right")).count())
    html = response.content.decode()
    assert "views-annotator" not in html  # usernames never shown
    assert response.context["consistency"]["note"] == "separability is undefined or not computed for these units"


def test_run_progress_polls_while_running_and_estimates_time_left(study, staff_client):
    run = SeparabilityRun.objects.create(dataset=study.dataset, metrics=["rouge1"], total=40, done=10,
                                         chunks_total=4, chunks_done=[0], status="running",
                                         started_at=timezone.now() - timedelta(seconds=30))
    progress = queries.run_progress(run)
    assert progress["seconds_left"] == pytest.approx(90, abs=2)
    html = staff_client.get(f"/dashboard/runs/{run.pk}/progress/").content.decode()
    assert 'hx-trigger="every 2s"' in html and "10 / 40 instances" in html and "about 1 min 3" in html
    SeparabilityRun.objects.filter(pk=run.pk).update(status="failed", errors=[{"chunk": 2, "error": "boom"}])
    html = staff_client.get(f"/dashboard/runs/{run.pk}/progress/").content.decode()
    assert "hx-trigger" not in html and "chunk 2: boom" in html
    assert staff_client.get("/dashboard/runs/999999/progress/").status_code == 404


def test_start_run_button(study, staff_client, monkeypatch):
    from dashboard import runs
    from separability import services

    calls = []

    def fake_compute(slug, metrics=None):
        calls.append(slug)
        return SeparabilityRun.objects.create(dataset=study.dataset, metrics=["rouge1"], total=4)

    monkeypatch.setattr(runs, "BACKGROUND_WHEN_EAGER", False)
    monkeypatch.setattr(services, "compute_dataset_separability", fake_compute)
    response = staff_client.post(f"/dashboard/datasets/{study.dataset.slug}/separability/run/", follow=True)
    assert calls == [study.dataset.slug]
    assert b"Separability run" in response.content and b"started" in response.content
    assert staff_client.get(f"/dashboard/datasets/{study.dataset.slug}/separability/run/").status_code == 405


@pytest.mark.django_db(transaction=True)
def test_embedded_run_computes_in_a_background_thread_while_the_request_returns():
    """Embedded (eager tasks), a real ROUGE-1 run is started from the page's code path: the call returns the
    run's record at once, and the run itself is computed, to the end, by another thread."""
    import threading

    from dashboard import runs
    from separability.models import Alignment

    study = make_voted_study("threaded")
    run = runs.start_separability_run(study.dataset, metrics=["rouge1"])
    assert run is not None and run.dataset_id == study.dataset_id
    workers = [t for t in threading.enumerate() if t.name == f"separability-{study.dataset.slug}"]
    for worker in workers:
        worker.join(timeout=120)  # its work ends with the leaderboards refreshed: wait for all of it
    run.refresh_from_db()
    assert workers or run.status == "done"  # computed by the thread (which may already have finished)
    assert run.status == "done", run.errors
    assert Alignment.objects.filter(instance__dataset=study.dataset, metric="rouge1").count() == 4


def test_background_export_failure_is_shown(study, staff_client, media_root, monkeypatch):
    monkeypatch.setattr(exports, "LARGE_EXPORT_VOTES", 5)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(exports, "iter_csv", broken)
    response = staff_client.post(f"/dashboard/studies/{study.slug}/export/csv/")
    job = ExportJob.objects.get()
    assert response["Location"] == f"/dashboard/exports/{job.pk}/"
    assert job.status == "failed" and "disk full" in job.error
    page = staff_client.get(f"/dashboard/exports/{job.pk}/").content.decode()
    assert "disk full" in page and "Download" not in page
    assert staff_client.get(f"/dashboard/exports/{job.pk}/download/").status_code == 404


def test_background_export_polls_until_done(study, staff_client, media_root):
    job = ExportJob.objects.create(study=study, format="jsonl", total=21)
    html = staff_client.get(f"/dashboard/exports/{job.pk}/progress/").content.decode()
    assert 'hx-trigger="every 2s"' in html and "0 / 21 records" in html
    from dashboard.tasks import run_export

    run_export.apply_async((job.pk,))
    html = staff_client.get(f"/dashboard/exports/{job.pk}/progress/").content.decode()
    assert "hx-trigger" not in html and "21 / 21 records" in html
    (media_root / ExportJob.objects.get(pk=job.pk).file).unlink()
    assert staff_client.get(f"/dashboard/exports/{job.pk}/download/").status_code == 404


@pytest.mark.parametrize("url", [
    "/dashboard/studies/nope/", "/dashboard/studies/views/export/xml/", "/dashboard/studies/nope/export/csv/",
    "/dashboard/datasets/nope/separability/", "/dashboard/datasets/views-data/separability/export/?metric=nope",
    "/dashboard/exports/12345/", "/dashboard/exports/12345/download/",
])
def test_bad_addresses_are_404(study, staff_client, url):
    assert staff_client.get(url).status_code == 404


def test_separability_page_without_results_offers_a_run(study, staff_client):
    html = staff_client.get(f"/dashboard/datasets/{study.dataset.slug}/separability/").content.decode()
    assert "has not been computed" in html and 'id="start-run"' in html


def test_a_study_without_votes_renders(staff_client):
    empty = make_voted_study("empty", annotators=0)
    response = staff_client.get(f"/dashboard/studies/{empty.slug}/")
    assert response.status_code == 200
    assert response.context["agreement"]["krippendorff_alpha"]["value"] is None
    assert response.context["progress"]["votes"] == 0 and response.context["progress"]["target"] == 8
    assert staff_client.get("/dashboard/").status_code == 200
    assert staff_client.get(f"/api/v1/studies/{empty.slug}/").json()["agreement"]["fleiss_kappa"]["items"] == 0
