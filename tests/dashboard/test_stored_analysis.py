"""A large study's dashboard shows the analysis stored after each leaderboard recompute, not one
computed per page view (dashboard.analysis); a small study's is computed on every view."""
from __future__ import annotations

import pytest

from dashboard import analysis, queries
from dashboard.models import StudyAnalysis
from ranking.tasks import recompute_leaderboards
from tests.factories import make_account, make_voted_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(make_account("analysis-staff", staff=True))
    return client


def test_a_small_study_is_analysed_on_every_view_and_nothing_is_stored(staff_client):
    study = make_voted_study("small-analysis", n_instances=3, annotators=3)
    page = staff_client.get(f"/dashboard/studies/{study.slug}/")
    assert page.status_code == 200
    assert page.context["agreement"] == queries.study_agreement(study)
    assert not StudyAnalysis.objects.exists() and page.context["analysis"] is None


def test_a_large_study_shows_the_analysis_stored_by_the_recompute(staff_client, monkeypatch):
    monkeypatch.setattr(analysis, "INLINE_VOTES", 5)
    study = make_voted_study("large-analysis", n_instances=4, annotators=3)  # 21 votes > 5
    first = staff_client.get(f"/dashboard/studies/{study.slug}/")
    assert first.context["analysis_pending"] and "being\n  computed in the background" in first.content.decode()

    recompute_leaderboards(study.pk)  # what the debounced task runs; it sends leaderboards_recomputed
    stored = StudyAnalysis.objects.get(study=study)
    assert stored.votes == queries.study_progress(study)["votes"] == 21
    page = staff_client.get(f"/dashboard/studies/{study.slug}/")
    assert page.context["analysis"] == stored and not page.context["analysis_pending"]
    expected = queries.study_agreement(study)
    shown = page.context["agreement"]["krippendorff_alpha"]
    assert shown["value"] == pytest.approx(expected["krippendorff_alpha"]["value"])
    assert shown["items"] == expected["krippendorff_alpha"]["items"]
    assert [a["votes"] for a in page.context["annotators"]] == [7, 7, 7]
    assert 'id="analysis-note"' in page.content.decode()


def test_the_api_study_detail_gives_a_large_study_the_stored_agreement(staff_client, monkeypatch):
    monkeypatch.setattr(analysis, "INLINE_VOTES", 5)
    study = make_voted_study("api-analysis", n_instances=4, annotators=3)
    recompute_leaderboards(study.pk)
    stored = StudyAnalysis.objects.get(study=study)
    body = staff_client.get(f"/api/v1/studies/{study.slug}/").json()
    assert body["agreement"] == stored.payload["agreement"]


def test_an_adaptive_study_page_says_what_the_policy_is_doing(staff_client):
    from annotations.models import Study
    from ranking.priorities import adaptive_report
    from tests.factories import add_vote, make_rating_study

    study = make_rating_study(slug="adaptive-page", systems=("alpha", "beta", "gamma"), n_instances=4,
                              policy=Study.Policy.ADAPTIVE, votes_per_comparison=20)
    for n in range(12):  # alpha and beta split evenly; both beat gamma every time
        add_vote(study, "alpha", "beta", "x" if n % 2 else "y", instance=n % 4, apply=False)
        add_vote(study, "alpha", "gamma", "x", instance=n % 4, apply=False)
        add_vote(study, "beta", "gamma", "x", instance=n % 4, apply=False)
    page = staff_client.get(f"/dashboard/studies/{study.slug}/")
    html = page.content.decode()
    report = adaptive_report(study)
    assert page.context["adaptive"] == report and 'id="adaptive-h"' in html
    assert report["undecided_count"] >= 1 and "<td>alpha vs beta</td>" in html  # the even split is undecided
    assert f'id="adaptive-open">{report["open_comparisons"]}<' in html


def test_a_study_under_another_policy_has_no_adaptive_panel(staff_client):
    study = make_voted_study("not-adaptive", n_instances=3, annotators=2)
    page = staff_client.get(f"/dashboard/studies/{study.slug}/")
    assert page.context["adaptive"] is None and 'id="adaptive-h"' not in page.content.decode()


def test_the_planner_simulates_each_policy_from_the_studys_own_comparisons(staff_client):
    from dashboard import planner

    study = make_voted_study("planned", n_instances=4, annotators=3)
    page = staff_client.get(f"/dashboard/studies/{study.slug}/")
    assert f'hx-get="/dashboard/studies/{study.slug}/planner/"' in page.content.decode()
    fragment = staff_client.get(f"/dashboard/studies/{study.slug}/planner/")
    assert fragment.status_code == 200
    planned = fragment.context["plan"]
    assert set(planned["curves"]) == set(planner.POLICIES)
    assert planned["units"] == study.comparisons.filter(selected=True, is_gold=False).count()
    assert all(len(values) == len(planned["votes"]) for values in planned["curves"].values())
    assert all(-1.0 <= v <= 1.0 for values in planned["curves"].values() for v in values)
    assert planned["current"] == 21 and 'id="planner-table"' in fragment.content.decode()
    assert "prior" in planned["source"] or "Bradley-Terry" in planned["source"]


def test_the_planner_is_staff_only_and_says_when_there_is_nothing_to_plan(staff_client):
    from django.test import Client

    from tests.factories import make_study

    study = make_study("unopened-plan", n_instances=0, open_it=False)  # a draft over no outputs: no units
    assert Client().get(f"/dashboard/studies/{study.slug}/planner/").status_code in (302, 403)
    fragment = staff_client.get(f"/dashboard/studies/{study.slug}/planner/")
    assert fragment.status_code == 200 and 'id="planner-error"' in fragment.content.decode()
