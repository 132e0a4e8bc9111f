"""Invite links /invite/<token>/: one account per use, a cap that holds under concurrency, no reuse."""
import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone

from annotations.auth import claim_invite_use
from annotations.models import AnnotatorProfile, InviteLink
from tests.factories import make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    return make_study(slug="inv", n_instances=2)


def make_invite(*studies, **fields):
    invite = InviteLink.objects.create(**fields)
    invite.studies.add(*studies)
    return invite


def start(client, invite):
    return client.post(f"/invite/{invite.token}/")


def test_invite_creates_an_annotator_account_and_signs_it_in(study):
    invite = make_invite(study)
    client = Client()
    landing = client.get(f"/invite/{invite.token}/")
    assert landing.status_code == 200 and "Start" in landing.content.decode()
    response = start(client, invite)
    assert response.status_code == 302 and response["Location"] == f"/invite/{invite.token}/"
    tasks = client.get(response["Location"]).content.decode()
    assert 'href="/s/inv/"' in tasks and "/r/" in tasks  # the task, and the personal link shown once
    profile = AnnotatorProfile.objects.get(invite=invite)
    assert not profile.user.has_usable_password()
    assert profile.pseudonym.startswith("ann-") and profile.prolific_pid is None
    assert client.get("/s/inv/").status_code == 200
    invite.refresh_from_db()
    assert invite.uses == 1


def test_looking_at_the_invite_page_does_not_use_it(study):
    invite = make_invite(study)
    for _ in range(3):
        Client().get(f"/invite/{invite.token}/")  # link previews, curious clicks
    invite.refresh_from_db()
    assert invite.uses == 0 and not AnnotatorProfile.objects.exists()


def test_single_use_invite_refuses_a_second_person(study):
    invite = make_invite(study, max_uses=1)
    assert start(Client(), invite).status_code == 302
    second = Client()
    assert second.get(f"/invite/{invite.token}/").status_code == 410
    assert start(second, invite).status_code == 410
    assert AnnotatorProfile.objects.count() == 1


def test_returning_annotator_is_not_charged_another_use(study):
    invite = make_invite(study, max_uses=1)
    client = Client()
    start(client, invite)
    assert client.get(f"/invite/{invite.token}/").status_code == 200
    assert start(client, invite).status_code == 302
    invite.refresh_from_db()
    assert invite.uses == 1 and AnnotatorProfile.objects.count() == 1


def test_multi_use_invite_stops_at_its_cap(study):
    invite = make_invite(study, max_uses=3)
    codes = [start(Client(), invite).status_code for _ in range(5)]
    assert codes == [302, 302, 302, 410, 410]
    invite.refresh_from_db()
    assert invite.uses == 3 and AnnotatorProfile.objects.filter(invite=invite).count() == 3


def test_inactive_or_expired_invite_is_refused(study):
    inactive = make_invite(study, active=False, max_uses=5)
    expired = make_invite(study, max_uses=5, expires_at=timezone.now() - timedelta(minutes=1))
    for invite in (inactive, expired):
        assert Client().get(f"/invite/{invite.token}/").status_code == 410
        assert start(Client(), invite).status_code == 410
    assert not AnnotatorProfile.objects.exists()


def test_unknown_invite_is_404():
    assert Client().get("/invite/nope/").status_code == 404


def test_invite_with_several_studies_lists_tasks_without_names(study):
    other = make_study(slug="inv-two", n_instances=2)
    invite = make_invite(study, other, max_uses=2)
    client = Client()
    response = start(client, invite)
    assert response["Location"] == f"/invite/{invite.token}/"
    html = client.get(f"/invite/{invite.token}/").content.decode()
    assert "/s/inv/" in html and "/s/inv-two/" in html and "Task 2" in html
    assert "alpha-model" not in html and "beta-model" not in html


def test_starting_an_invite_signs_out_whoever_was_signed_in(study, staff_client, staff_user):
    invite = make_invite(study)
    start(staff_client, invite)
    assert staff_client.get("/s/inv/").wsgi_request.user != staff_user
    assert get_user_model().objects.get(pk=staff_client.session["_auth_user_id"]).annotator.invite == invite


def test_invite_cap_holds_under_concurrent_claims(postgres, transactional_db):
    """Threads race for the last uses of a link on PostgreSQL: the conditional UPDATE lets exactly `cap` win."""
    invite = InviteLink.objects.create(max_uses=7)
    barrier = threading.Barrier(20)
    results = []

    def claim():
        try:
            barrier.wait()
            results.append(claim_invite_use(invite))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    invite.refresh_from_db()
    assert sum(results) == 7 and invite.uses == 7
