"""Embedded mode (no broker): the debounced leaderboard recompute runs in a timer thread, not inside the
vote's request; with eager tasks it used to run four bootstrapped fits in every vote's request."""
import time

import pytest
from django.test import Client

from annotations.models import InviteLink
from ranking import services
from ranking.models import LeaderboardSnapshot
from tests.factories import make_study

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_vote_schedules_the_recompute_in_a_thread_once_per_window(settings, monkeypatch):
    settings.RECOMPUTE_IN_THREAD_WHEN_EAGER = True
    monkeypatch.setattr(services, "RECOMPUTE_DEBOUNCE_SECONDS", 0.5)
    study = make_study(slug="threaded", n_instances=4)
    invite = InviteLink.objects.create(max_uses=1)
    invite.studies.add(study)
    client = Client()
    client.post(f"/invite/{invite.token}/")
    for _ in range(2):
        page = client.get("/s/threaded/")
        client.post("/s/threaded/vote/", {"token": page.context["token"], "choice": "left"}, HTTP_HX_REQUEST="true")
    assert not LeaderboardSnapshot.objects.filter(study=study).exists()  # nothing computed in the requests
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not LeaderboardSnapshot.objects.filter(study=study, method="elo").exists():
        time.sleep(0.2)
    assert LeaderboardSnapshot.objects.get(study=study, method="elo").votes_used == 2  # one run, after both votes
