"""Annotators stay blind: nothing an annotator can reach moves with their vote while they can still
vote in the study. The public reads releases only (at close, or in batches with a cadence and a
minimum size); an annotator never sees the board or the name of an open study they judge."""
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from annotations.models import InviteLink, Study
from annotations.selection import close_study
from ranking.models import LeaderboardRelease
from ranking.services import refresh_snapshots, release_leaderboard
from ranking.tasks import recompute_leaderboards
from tests.factories import make_study

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def invited_annotator(study):
    invite = InviteLink.objects.create(max_uses=5)
    invite.studies.add(study)
    client = Client()
    client.post(f"/invite/{invite.token}/")
    return client


def vote(client, slug, choice="left"):
    page = client.get(f"/s/{slug}/")
    response = client.post(f"/s/{slug}/vote/", {"token": page.context["token"], "choice": choice}, **HX)
    assert response.status_code in (200, 204) or response.has_header("HX-Redirect")
    return response


@pytest.fixture
def blind_study():
    study = make_study(slug="blind-board", n_instances=12, systems=("alpha-model", "beta-model"), quota=0,
                       leaderboard_public=True)
    Study.objects.filter(pk=study.pk).update(name="Alpha vs beta")
    study.refresh_from_db()
    return study


def test_the_public_json_is_byte_identical_before_and_after_a_vote(blind_study):
    """The black-box check: poll the public JSON around a vote (the recompute runs at once here)."""
    release_leaderboard(blind_study, "staff", refresh_snapshots(blind_study, rounds=10))
    public = Client()
    annotator = invited_annotator(blind_study)
    before = public.get("/leaderboard/blind-board.json")
    for _ in range(4):
        vote(annotator, "blind-board")
        recompute_leaderboards(blind_study.pk)
        after = public.get("/leaderboard/blind-board.json")
        assert after.status_code == before.status_code == 200
        assert after.content == before.content
    page_before = public.get("/leaderboard/blind-board/").content
    vote(annotator, "blind-board")
    recompute_leaderboards(blind_study.pk)
    assert public.get("/leaderboard/blind-board/").content.count(b"vote") == page_before.count(b"vote")


def test_by_default_nothing_is_public_until_the_study_closes(blind_study, django_capture_on_commit_callbacks):
    assert blind_study.leaderboard_release == Study.Release.ON_CLOSE
    annotator = invited_annotator(blind_study)
    vote(annotator, "blind-board")
    recompute_leaderboards(blind_study.pk)
    assert Client().get("/leaderboard/blind-board.json").status_code == 404
    assert "Alpha vs beta" not in Client().get("/leaderboard/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert close_study(blind_study)
    release = LeaderboardRelease.objects.get(study=blind_study)  # released by the close (eager task here)
    assert release.reason == "closed" and release.votes_counted == 1
    payload = Client().get("/leaderboard/blind-board.json").json()
    assert payload["reason"] == "closed" and payload["votes_counted"] == 1


def test_batches_wait_for_both_the_cadence_and_the_minimum_batch(blind_study):
    Study.objects.filter(pk=blind_study.pk).update(leaderboard_release=Study.Release.BATCHES, release_min_votes=3,
                                                   release_every_hours=1)
    annotator = invited_annotator(blind_study)
    for _ in range(2):
        vote(annotator, "blind-board")
    recompute_leaderboards(blind_study.pk)
    assert not LeaderboardRelease.objects.exists()  # 2 < 3 votes
    vote(annotator, "blind-board")
    assert recompute_leaderboards(blind_study.pk)["released"]
    first = LeaderboardRelease.objects.get()
    for _ in range(4):
        vote(annotator, "blind-board")
    recompute_leaderboards(blind_study.pk)
    assert LeaderboardRelease.objects.count() == 1  # enough votes, but within the hour
    LeaderboardRelease.objects.filter(pk=first.pk).update(released_at=timezone.now() - timedelta(hours=1, seconds=1))
    assert recompute_leaderboards(blind_study.pk)["released"]
    assert LeaderboardRelease.objects.order_by("-released_at").first().votes_counted == 7


def test_an_annotator_never_sees_the_board_or_the_name_of_an_open_study_they_judge(blind_study):
    release_leaderboard(blind_study, "staff", refresh_snapshots(blind_study, rounds=10))
    annotator = invited_annotator(blind_study)
    assert annotator.get("/leaderboard/blind-board/").status_code == 404
    assert annotator.get("/leaderboard/blind-board.json").status_code == 404
    for page in ("/", "/leaderboard/", "/s/blind-board/", "/s/blind-board/done/"):
        html = annotator.get(page, follow=True).content.decode()
        assert "Alpha vs beta" not in html and "/leaderboard/blind-board/" not in html, page
    assert "Alpha vs beta" in Client().get("/leaderboard/").content.decode()  # the public does see it
    close_study(blind_study)
    assert annotator.get("/leaderboard/blind-board/").status_code == 200  # once they can vote no more


def test_staff_see_the_live_standings_and_what_the_public_sees(blind_study, staff_client):
    html = staff_client.get("/leaderboard/blind-board/").content.decode()
    assert "Live standings, seen by staff only" in html and "results are released when the study closes" in html
    assert staff_client.post("/leaderboard/blind-board/release/").status_code == 302
    assert LeaderboardRelease.objects.get().reason == "staff"
    assert "The public sees the release of" in staff_client.get("/leaderboard/blind-board/").content.decode()


def test_a_release_is_refreshed_in_place_only_while_its_votes_are_unchanged(blind_study):
    """Separability arriving after the demo's release may update it (the same votes); a new vote may not."""
    from annotations.models import Comparison

    Study.objects.filter(pk=blind_study.pk).update(leaderboard_release=Study.Release.BATCHES, release_min_votes=100)
    annotator = invited_annotator(blind_study)
    for _ in range(3):
        vote(annotator, "blind-board")
    release_leaderboard(blind_study, "staff", refresh_snapshots(blind_study, rounds=10))
    before = Client().get("/leaderboard/blind-board.json").json()
    Comparison.objects.filter(study=blind_study).update(separability=0.9)  # separability arrived
    recompute_leaderboards(blind_study.pk)
    refreshed = Client().get("/leaderboard/blind-board.json").json()
    assert refreshed["votes_counted"] == before["votes_counted"] == 3
    assert refreshed["released_at"] == before["released_at"]
    assert refreshed["methods"]["weighted_elo"] != before["methods"]["weighted_elo"]
    vote(annotator, "blind-board")
    recompute_leaderboards(blind_study.pk)
    assert Client().get("/leaderboard/blind-board.json").json() == refreshed  # one vote more: frozen
