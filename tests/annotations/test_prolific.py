"""Prolific participants: /s/<slug>/?PROLIFIC_PID=..&STUDY_ID=..&SESSION_ID=.. signs in exactly that
participant, and the completion code appears only once the quota is met."""
import re

import pytest
from django.test import Client

from annotations.models import AnnotatorProfile, InviteLink, Study, Vote
from tests.factories import make_study

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def study():
    return make_study(slug="pro", n_instances=4, quota=2, prolific_study_id="65f0a1b2c3d4e5f6a7b8c9d0",
                      prolific_completion_code="CQX7Z2",
                      prolific_redirect_url="https://app.prolific.com/submissions/complete?cc=CQX7Z2")


def enter(client, pid, study_id="65f0a1b2c3d4e5f6a7b8c9d0", session="sess-1", slug="pro"):
    return client.get(f"/s/{slug}/", {"PROLIFIC_PID": pid, "STUDY_ID": study_id, "SESSION_ID": session})


def signed_in_pid(client):
    user = client.get("/s/pro/done/").wsgi_request.user
    return user.annotator.prolific_pid if user.is_authenticated else None


def test_participant_gets_one_account_and_a_clean_address(study):
    client = Client()
    response = enter(client, "5f1a2b3c4d5e6f7a8b9c0d1e")
    assert response.status_code == 302 and response["Location"] == "/s/pro/"
    assert client.get("/s/pro/").status_code == 200
    enter(Client(), "5f1a2b3c4d5e6f7a8b9c0d1e")  # same participant and session, another browser
    profile = AnnotatorProfile.objects.get(prolific_pid="5f1a2b3c4d5e6f7a8b9c0d1e")
    assert AnnotatorProfile.objects.count() == 1
    assert not profile.user.has_usable_password()
    assert client.session["prolific_session_id"] == "sess-1"


def test_wrong_study_id_is_refused(study):
    response = enter(Client(), "5f1a2b3c4d5e6f7a8b9c0d1e", study_id="someotherstudy")
    assert response.status_code == 403 and "different Prolific study" in response.content.decode()
    assert not AnnotatorProfile.objects.exists()


def test_study_without_prolific_id_refuses_participants(study):
    Study.objects.filter(pk=study.pk).update(prolific_study_id="")
    assert enter(Client(), "5f1a2b3c4d5e6f7a8b9c0d1e", study_id="").status_code == 403
    assert not AnnotatorProfile.objects.exists()


def test_missing_or_malformed_participant_id_is_refused(study):
    assert enter(Client(), "").status_code == 403
    assert enter(Client(), "<script>").status_code == 403
    assert not AnnotatorProfile.objects.exists()


def confirm(client, pid, study_id="65f0a1b2c3d4e5f6a7b8c9d0", session="sess-1", slug="pro"):
    """The POST of the "someone else is signed in" page."""
    return client.post(f"/s/{slug}/enter/", {"PROLIFIC_PID": pid, "STUDY_ID": study_id, "SESSION_ID": session})


def test_another_participant_id_never_continues_the_signed_in_session(study):
    client = Client()
    enter(client, "aaaaaaaaaaaaaaaaaaaaaaaa")
    token = re.search(r'name="token" value="([^"]+)"', client.get("/s/pro/").content.decode()).group(1)
    client.post("/s/pro/vote/", {"token": token, "choice": "left"}, **HX)
    assert "Someone else is signed in" in enter(client, "bbbbbbbbbbbbbbbbbbbbbbbb", session="sess-b").content.decode()
    assert signed_in_pid(client) == "aaaaaaaaaaaaaaaaaaaaaaaa"  # a GET alone switches nothing
    confirm(client, "bbbbbbbbbbbbbbbbbbbbbbbb", session="sess-b")
    assert signed_in_pid(client) == "bbbbbbbbbbbbbbbbbbbbbbbb"
    assert "0 of 2 done" in client.get("/s/pro/").content.decode()  # not the first participant's progress
    confirm(client, "aaaaaaaaaaaaaaaaaaaaaaaa")
    assert signed_in_pid(client) == "aaaaaaaaaaaaaaaaaaaaaaaa"
    assert "1 of 2 done" in client.get("/s/pro/").content.decode()
    assert AnnotatorProfile.objects.count() == 2


def test_invited_annotator_is_signed_out_only_after_confirming(study):
    invite = InviteLink.objects.create(max_uses=1)
    invite.studies.add(study)
    client = Client()
    client.post(f"/invite/{invite.token}/")
    invited = client.get("/s/pro/").wsgi_request.user
    enter(client, "cccccccccccccccccccccccc")
    assert client.get("/s/pro/").wsgi_request.user == invited
    confirm(client, "cccccccccccccccccccccccc")
    assert signed_in_pid(client) == "cccccccccccccccccccccccc"
    assert client.get("/s/pro/").wsgi_request.user != invited


def test_participant_may_not_wander_into_another_study(study):
    make_study(slug="private", n_instances=2, prolific_study_id="other-prolific-id", prolific_completion_code="X")
    client = Client()
    enter(client, "dddddddddddddddddddddddd")
    assert client.get("/s/private/").status_code == 404


def test_completion_code_and_redirect_only_after_the_quota(study):
    client = Client()
    enter(client, "eeeeeeeeeeeeeeeeeeeeeeee")
    for expected_done in (0, 1):
        done_page = client.get("/s/pro/done/").content.decode()
        assert "CQX7Z2" not in done_page and "app.prolific.com" not in done_page
        page = client.get("/s/pro/").content.decode()
        assert f"{expected_done} of 2 done" in page
        token = re.search(r'name="token" value="([^"]+)"', page).group(1)
        response = client.post("/s/pro/vote/", {"token": token, "choice": "right"}, **HX)
    assert response["HX-Redirect"] == "/s/pro/done/"
    done_page = client.get("/s/pro/done/").content.decode()
    assert "CQX7Z2" in done_page
    assert 'href="https://app.prolific.com/submissions/complete?cc=CQX7Z2"' in done_page
    assert Vote.objects.filter(annotator__annotator__prolific_pid="eeeeeeeeeeeeeeeeeeeeeeee").count() == 2
