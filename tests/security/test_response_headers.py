"""The headers lib.middleware.ResponseHardeningMiddleware adds: the Content-Security-Policy on HTML pages,
and `Cache-Control: no-store, private` on whatever is answered to a signed-in user (session or API token)
and on every file download, so no browser or shared cache keeps votes, rationales or staff numbers.
"""
from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from dashboard.models import ExportJob
from tests.factories import make_voted_study

pytestmark = pytest.mark.django_db

PRIVATE = "no-store, private"
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
          "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
          "frame-ancestors 'none'; form-action 'self'")


@pytest.fixture
def study(db):
    return make_voted_study(slug="headers", n_instances=2, annotators=2)


def test_every_html_page_carries_the_policy_and_anonymous_pages_stay_cacheable(client, study):
    for url in ("/", "/accounts/login/", "/leaderboard/", "/api/docs/", "/no-such-page/"):
        response = client.get(url)
        assert response["Content-Type"].startswith("text/html"), url
        assert response["Content-Security-Policy"] == POLICY, url
    for url in ("/", "/leaderboard/"):  # (the sign-in page is never_cache itself)
        assert "no-store" not in client.get(url).get("Cache-Control", ""), url
    for url in ("/healthz", "/api/schema/"):
        response = client.get(url)
        assert response.status_code == 200 and not response["Content-Type"].startswith("text/html"), url
        assert "Content-Security-Policy" not in response, url


def test_everything_answered_to_a_signed_in_user_is_not_stored(annotator_client, study):
    for url in ("/", f"/leaderboard/{study.slug}/", "/accounts/login/", "/dashboard/", "/no-such-page/"):
        assert annotator_client.get(url)["Cache-Control"] == PRIVATE, url


def test_staff_pages_and_dashboard_downloads_are_not_stored(staff_client, study, media_root):
    assert staff_client.get(f"/dashboard/studies/{study.slug}/")["Cache-Control"] == PRIVATE
    for fmt in ("csv", "jsonl", "dpo"):
        download = staff_client.get(f"/dashboard/studies/{study.slug}/export/{fmt}/")
        assert download["Content-Disposition"].startswith("attachment"), fmt
        assert download["Cache-Control"] == PRIVATE, fmt
    separability = staff_client.get(f"/dashboard/datasets/{study.dataset.slug}/separability/export/")
    assert separability["Cache-Control"] == PRIVATE


def test_a_background_export_file_is_not_stored(staff_client, study, media_root):
    from dashboard.tasks import run_export

    job = ExportJob.objects.create(study=study, format="csv", total=study.votes.count())
    run_export.apply_async((job.pk,))
    download = staff_client.get(f"/dashboard/exports/{job.pk}/download/")
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment")
    assert download["Cache-Control"] == PRIVATE


def test_api_answers_to_a_token_are_not_stored_csv_included(staff_user, study):
    token = Token.objects.create(user=staff_user)
    api = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    csv = api.get(f"/api/v1/studies/{study.slug}/votes/?format=csv")
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    assert csv["Cache-Control"] == PRIVATE
    for url in (f"/api/v1/studies/{study.slug}/votes/", f"/api/v1/datasets/{study.dataset.slug}/separability/",
                "/api/v1/studies/"):
        response = api.get(url)
        assert response.status_code == 200 and response["Cache-Control"] == PRIVATE, url
    # a wrong token is answered for one client too
    assert Client(HTTP_AUTHORIZATION="Token wrong").get("/api/v1/studies/")["Cache-Control"] == PRIVATE


def test_with_debug_on_djangos_own_not_found_page_goes_without_the_policy(client, settings, study):
    settings.DEBUG = True  # its technical 404 page styles itself inline
    assert "Content-Security-Policy" not in client.get("/no-such-page/")
    assert client.get("/")["Content-Security-Policy"] == POLICY


def test_the_self_contained_server_error_page_goes_without_the_policy(db, monkeypatch):
    def broken(user):
        raise RuntimeError("a view that fails")

    monkeypatch.setattr("evalsite.views.public_studies", broken)
    response = Client(raise_request_exception=False).get("/")
    assert response.status_code == 500 and b"Something went wrong" in response.content
    assert "Content-Security-Policy" not in response  # templates/500.html styles itself inline, on purpose
