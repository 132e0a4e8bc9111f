"""Every page runs a number of SQL statements that does not grow with the number of studies or votes.

A page whose statement count grows with its data (a query per study in a list, per vote in a loop) is
the kind of cost that only shows at a real study's size (bench/scale.py measures pages at 1,000,000
votes). Here each page is opened on a small site, then again after more studies and more votes were
added, and both counts must be the same.
"""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotations.models import InviteLink
from tests.factories import answer, make_account, make_annotator, make_study, make_voted_study

pytestmark = pytest.mark.django_db

STAFF_PAGES = (
    "/studies/",
    "/studies/{s}/",
    "/studies/{s}/edit/",
    "/dashboard/",
    "/dashboard/studies/{s}/",
    "/dashboard/datasets/{s}-data/separability/",
    "/dashboard/studies/{s}/export/csv/",
    "/leaderboard/",
    "/leaderboard/{s}/",
    "/leaderboard/{s}.json",
    "/api/v1/studies/",
    "/api/v1/studies/{s}/",
    "/api/v1/studies/{s}/comparisons/",
    "/api/v1/studies/{s}/votes/",
    "/api/v1/studies/{s}/leaderboards/",
    "/api/v1/datasets/",
    "/api/v1/datasets/{s}-data/separability/",
)


def _statements(client, path: str) -> int:
    client.get(path)  # once first: sessions, caches and lazily built state settle
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, f"{path}: {response.status_code}"
    return len(captured.captured_queries)


def _counts(client, slug: str) -> dict[str, int]:
    return {path.format(s=slug): _statements(client, path.format(s=slug)) for path in STAFF_PAGES}


def test_staff_and_public_pages_run_as_many_statements_for_a_large_site_as_for_a_small_one(client):
    make_voted_study("first", n_instances=2, annotators=2)
    staff = make_account("statement-staff", staff=True)
    client.force_login(staff)
    small = _counts(client, "first")

    for slug in ("second", "third", "fourth"):
        make_voted_study(slug, n_instances=3, annotators=3)
    make_voted_study("first-more", n_instances=8, annotators=5)  # many more votes, by more annotators
    large = _counts(client, "first-more")

    grown = {path: (small[path.replace("first-more", "first")], n) for path, n in large.items()
             if n != small[path.replace("first-more", "first")]}
    assert not grown, f"statement counts grew with the data (small site -> large site): {grown}"


def test_the_annotator_page_runs_as_many_statements_after_many_votes_as_on_the_first_item(client):
    study = make_study("annotate", n_instances=30, overlap=3)
    invite = InviteLink.objects.create(max_uses=10)
    invite.studies.add(study)
    client.post(f"/invite/{invite.token}/")
    first = _statements(client, f"/s/{study.slug}/")

    for n in range(2):  # others vote on most of the study meanwhile
        other = make_annotator(f"other-{n}")
        for _ in range(25):
            answer(study, other, choice="left")
    later = _statements(client, f"/s/{study.slug}/")
    assert first == later, f"annotator page: {first} statements at the start, {later} after 50 more votes"
