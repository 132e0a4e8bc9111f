"""When there is nothing to judge, the annotator is told why, truthfully: the study is complete, items
are held by others (and when to try again), they judged everything open to them, or the study is
closed; a policy that selects nothing is refused to staff before any annotator meets it."""
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from annotations import queue
from annotations.models import Assignment, Comparison, InviteLink, Study
from annotations.selection import SelectionError, open_study
from tests.factories import answer, make_annotator, make_study

pytestmark = pytest.mark.django_db


def invited(study):
    invite = InviteLink.objects.create(max_uses=5)
    invite.studies.add(study)
    client = Client()
    client.post(f"/invite/{invite.token}/")
    return client


def done_page(client, slug):
    return " ".join(client.get(f"/s/{slug}/done/").content.decode().split())


def test_a_complete_study_says_so():
    study = make_study(slug="full", n_instances=2, overlap=1)
    for _ in range(2):
        answer(study, make_annotator())
    assert "This study is complete" in done_page(invited(study), "full")


def test_items_held_by_others_say_when_to_try_again():
    study = make_study(slug="held", n_instances=1, overlap=1, lease_seconds=600)
    holder = make_annotator()
    queue.next_assignment(study, holder)
    client = invited(study)
    html = done_page(client, "held")
    assert "being judged by someone else" in html and "try again in 10 minutes" in html
    Assignment.objects.update(expires_at=timezone.now() - timedelta(seconds=1))  # the lease ran out
    assert client.get("/s/held/").status_code == 200  # the item is theirs now


def test_judged_everything_available_is_not_called_complete():
    study = make_study(slug="mine", n_instances=2, overlap=2, quota=5)  # the quota cannot be met
    client = invited(study)
    for _ in range(2):
        page = client.get("/s/mine/")
        client.post("/s/mine/vote/", {"token": page.context["token"], "choice": "left"}, HTTP_HX_REQUEST="true")
    html = done_page(client, "mine")
    assert "You have judged everything available to you" in html and "complete" not in html.lower().split("</h1>")[0]


def test_a_closed_study_says_so_and_what_was_kept():
    study = make_study(slug="shut", n_instances=3, quota=3)
    client = invited(study)
    page = client.get("/s/shut/")
    client.post("/s/shut/vote/", {"token": page.context["token"], "choice": "left"}, HTTP_HX_REQUEST="true")
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    response = client.get("/s/shut/", follow=True)
    html = response.content.decode()
    assert "The study is now closed" in html and "what you answered is kept" in html
    assert "Keyboard" not in html  # no keyboard help for an item that is gone


def test_a_policy_that_selects_nothing_is_refused_before_anyone_meets_it():
    study = make_study(slug="none", n_instances=3, open_it=False, policy=Study.Policy.ALL)
    Comparison.objects.filter(study=study).delete()
    study.systems.set(study.systems.all()[:1])  # one model: no pair to compare
    with pytest.raises(SelectionError, match="selected none"):
        open_study(study)
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT


def test_staff_see_the_refusal_on_the_study_page(staff_client):
    study = make_study(slug="none2", n_instances=2, open_it=False)
    study.systems.set(study.systems.all()[:1])
    response = staff_client.post("/studies/none2/open/", follow=True)
    assert "The study was not opened" in response.content.decode() and "selected none" in response.content.decode()


def test_a_prolific_participant_stranded_by_a_closed_study_still_gets_the_code_and_the_way_back():
    study = make_study(slug="cut", n_instances=4, quota=3, prolific_study_id="65f0a1b2c3d4e5f6a7b8c9d0",
                       prolific_completion_code="C0DE99",
                       prolific_redirect_url="https://app.prolific.com/submissions/complete?cc=C0DE99")
    client = Client()
    client.get("/s/cut/", {"PROLIFIC_PID": "a" * 24, "STUDY_ID": "65f0a1b2c3d4e5f6a7b8c9d0", "SESSION_ID": "s1"})
    page = client.get("/s/cut/")
    client.post("/s/cut/vote/", {"token": page.context["token"], "choice": "left"}, HTTP_HX_REQUEST="true")
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    html = done_page(client, "cut")
    assert "C0DE99" in html and "app.prolific.com" in html and "before you reached 3" in html
