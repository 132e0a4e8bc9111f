"""Nobody can become somebody else: a Prolific id is bound to its first session, a link never switches
identities on a GET, invited annotators can always get back in, and invites mean what staff set."""
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from annotations.models import AnnotatorProfile, InviteLink, ProlificSession, Study, Vote
from tests.factories import make_study

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
PID = "5f1a2b3c4d5e6f7a8b9c0d1e"
STUDY_ID = "65f0a1b2c3d4e5f6a7b8c9d0"


@pytest.fixture
def study():
    return make_study(slug="pro", n_instances=6, quota=3, prolific_study_id=STUDY_ID,
                      prolific_completion_code="CQX7Z2")


def enter(client, pid=PID, session="sess-victim", study_id=STUDY_ID):
    return client.get("/s/pro/", {"PROLIFIC_PID": pid, "STUDY_ID": study_id, "SESSION_ID": session})


def vote_once(client, slug="pro"):
    page = client.get(f"/s/{slug}/")
    return client.post(f"/s/{slug}/vote/", {"token": page.context["token"], "choice": "left"}, **HX)


# --- Prolific ------------------------------------------------------------------------------------------


def test_a_second_client_with_the_victims_pid_and_another_session_is_refused(study):
    victim = Client()
    enter(victim)
    vote_once(victim)
    attacker = Client()
    response = enter(attacker, session="sess-attacker")
    assert response.status_code == 403 and "another session" in response.content.decode()
    assert "_auth_user_id" not in attacker.session
    # nothing of the victim's reaches the attacker, and the attacker stores no vote
    assert attacker.get("/s/pro/").status_code == 302  # to the sign-in page
    assert attacker.post("/s/pro/vote/", {"token": "x", "choice": "left"}, **HX).status_code == 403
    assert Vote.objects.count() == 1
    binding = ProlificSession.objects.get()
    assert binding.session_id == "sess-victim" and binding.refused_takeovers == 1
    assert vote_once(victim).status_code == 200  # the participant goes on undisturbed


def test_the_same_participant_may_come_back_with_the_same_session_on_another_browser(study):
    enter(Client())
    other_browser = Client()
    assert enter(other_browser).status_code == 302
    assert vote_once(other_browser).status_code == 200


def test_made_up_participant_ids_get_no_account(study):
    for pid in ("fake0", "fake1", "x" * 24, PID.upper(), PID + "0", "<script>"):
        assert enter(Client(), pid=pid, session=f"s-{pid}").status_code == 403
    assert not AnnotatorProfile.objects.exists()


def test_a_study_may_accept_its_own_participant_id_format(study):
    Study.objects.filter(pk=study.pk).update(prolific_pid_pattern=r"P-\d{4}")
    assert enter(Client(), pid="P-1234").status_code == 302
    assert enter(Client(), pid=PID).status_code == 403


def test_the_session_is_required(study):
    assert enter(Client(), session="").status_code == 403
    assert not AnnotatorProfile.objects.exists()


def test_staff_see_who_never_received_the_completion_code(study, staff_client):
    finisher, quitter = Client(), Client()
    enter(finisher, pid="a" * 24, session="s-a")
    enter(quitter, pid="b" * 24, session="s-b")
    for _ in range(3):
        vote_once(finisher)
    vote_once(quitter)
    assert "CQX7Z2" in finisher.get("/s/pro/done/").content.decode()
    assert set(ProlificSession.objects.filter(completion_shown_at__isnull=True)
               .values_list("profile__prolific_pid", flat=True)) == {"b" * 24}
    page = staff_client.get("/studies/pro/").content.decode()
    assert "b" * 24 in page and "never shown" in page.lower()


# --- no identity switch on a GET (login CSRF) -------------------------------------------------------------


def invited(study, **fields):
    invite = InviteLink.objects.create(max_uses=5, **fields)
    invite.studies.add(study)
    client = Client()
    client.post(f"/invite/{invite.token}/")
    return client, invite


def test_a_link_with_another_pid_does_not_switch_an_invited_annotator(study):
    client, _ = invited(study)
    me = client.get("/s/pro/").wsgi_request.user
    page = enter(client, pid="c" * 24)
    assert page.status_code == 200 and "Someone else is signed in" in page.content.decode()
    assert client.get("/s/pro/").wsgi_request.user == me
    assert not AnnotatorProfile.objects.filter(prolific_pid="c" * 24).exists()


def test_the_switch_needs_the_csrf_token(study):
    client, _ = invited(study)
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.cookies.update(client.cookies)
    response = csrf_client.post("/s/pro/enter/", {"PROLIFIC_PID": "c" * 24, "STUDY_ID": STUDY_ID,
                                                  "SESSION_ID": "s-c"})
    assert response.status_code == 403
    assert not AnnotatorProfile.objects.filter(prolific_pid="c" * 24).exists()


def test_an_invited_annotator_gets_back_in_with_the_personal_link_shown_once(study):
    client, invite = invited(study)
    tasks_page = client.get(f"/invite/{invite.token}/")
    reentry = tasks_page.context["reentry_url"]
    assert reentry and reentry in tasks_page.content.decode()
    assert not client.get(f"/invite/{invite.token}/").context["reentry_url"]  # shown once
    vote_once(client)
    me = client.get("/s/pro/").wsgi_request.user
    path = reentry.split("testserver", 1)[1]

    new_browser = Client()
    assert new_browser.get(path).status_code == 302
    assert new_browser.get("/s/pro/").wsgi_request.user == me
    assert "1 of 3 done" in new_browser.get("/s/pro/").content.decode()
    # after being switched to another identity (confirmed), the link brings them back, with a confirmation
    enter(client, pid="d" * 24)
    client.post("/s/pro/enter/", {"PROLIFIC_PID": "d" * 24, "STUDY_ID": STUDY_ID, "SESSION_ID": "s-d"})
    assert client.get("/s/pro/").wsgi_request.user != me
    assert "Someone else is signed in" in client.get(path).content.decode()
    client.post(path)
    assert client.get("/s/pro/").wsgi_request.user == me


def test_a_forged_reentry_link_opens_nothing(study):
    invited(study)
    for key in ("x" * 32, "%00" * 10, "a"):
        response = Client().get(f"/r/{key}/")
        assert response.status_code in (400, 404)


# --- invites ------------------------------------------------------------------------------------------


def test_withdrawing_an_invite_revokes_the_annotators_it_created(study):
    client, invite = invited(study)
    assert vote_once(client).status_code == 200
    InviteLink.objects.filter(pk=invite.pk).update(active=False)
    assert client.get("/s/pro/").status_code == 404
    page = client.get("/s/pro/")
    assert client.post("/s/pro/vote/", {"token": page.context.get("token", "x"), "choice": "left"},
                       **HX).status_code == 404
    assert client.get(f"/invite/{invite.token}/").status_code == 410
    assert Vote.objects.count() == 1


def test_an_expired_invite_ends_its_annotators_access(study):
    client, invite = invited(study)
    InviteLink.objects.filter(pk=invite.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get("/s/pro/").status_code == 404


def test_an_invite_to_a_closed_study_uses_no_redemption(study):
    invite = InviteLink.objects.create(max_uses=1)
    invite.studies.add(study)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    landing = Client().get(f"/invite/{invite.token}/").content.decode()
    assert "No task of this invite is open" in landing and "Start" not in landing
    response = Client().post(f"/invite/{invite.token}/")
    assert "Nothing to do right now" in response.content.decode()
    invite.refresh_from_db()
    assert invite.uses == 0 and not AnnotatorProfile.objects.exists()
    Study.objects.filter(pk=study.pk).update(status=Study.Status.OPEN)
    assert Client().post(f"/invite/{invite.token}/").status_code == 302  # the use is still there
