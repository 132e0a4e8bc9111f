"""Quality control: staff exclude (and restore) votes and whole annotators, with the reason kept, from the
dashboard, the admin and the API; leaderboards, agreement and exports follow. Annotators report items
they cannot judge; a second tab on the same item is told which answer was kept."""
import pytest
from django.test import Client

from annotations.models import AnnotatorExclusion, Assignment, InviteLink, ItemFlag, Study, Vote
from ranking.models import LeaderboardSnapshot
from ranking.services import refresh_snapshots
from tests.factories import make_study

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def study():
    return make_study(slug="qc", n_instances=8, systems=("alpha-model", "beta-model"), overlap=2, quota=0)


def annotator(study):
    invite = InviteLink.objects.create(max_uses=1)
    invite.studies.add(study)
    client = Client()
    client.post(f"/invite/{invite.token}/")
    return client


def vote(client, slug="qc", choice="left"):
    page = client.get(f"/s/{slug}/")
    return client.post(f"/s/{slug}/vote/", {"token": page.context["token"], "choice": choice}, **HX)


def counted(study):
    refresh_snapshots(study, rounds=5)
    return LeaderboardSnapshot.objects.get(study=study, method="bt").votes_used


def test_staff_exclude_and_restore_an_annotator_from_the_dashboard(study, staff_client):
    spammer, honest = annotator(study), annotator(study)
    for _ in range(3):
        vote(spammer)
        vote(honest, choice="right")
    spammer_user = spammer.get("/s/qc/").wsgi_request.user
    assert counted(study) == 6
    response = staff_client.post(f"/dashboard/studies/qc/annotators/{spammer_user.pk}/exclusion/",
                                 {"reason": "always picks the left side"})
    assert response.status_code == 302
    assert set(Vote.objects.filter(annotator=spammer_user).values_list("excluded", flat=True)) == {True}
    assert Vote.objects.filter(annotator=spammer_user).first().exclusion_reason.endswith("always picks the left side")
    assert counted(study) == 3
    vote(spammer)  # later votes are excluded as they arrive
    assert Vote.objects.filter(annotator=spammer_user, excluded=False).count() == 0
    page = staff_client.get("/dashboard/studies/qc/").content.decode()
    assert "always picks the left side" in page and "Restore" in page

    staff_client.post(f"/dashboard/studies/qc/annotators/{spammer_user.pk}/exclusion/", {"action": "restore"})
    assert not AnnotatorExclusion.objects.exists()
    assert Vote.objects.filter(annotator=spammer_user, excluded=False).count() == 4
    assert counted(study) == 7


def test_an_exclusion_needs_a_reason(study, staff_client):
    client = annotator(study)
    vote(client)
    user = client.get("/s/qc/").wsgi_request.user
    staff_client.post(f"/dashboard/studies/qc/annotators/{user.pk}/exclusion/", {"reason": "  "})
    assert not AnnotatorExclusion.objects.exists() and not Vote.objects.filter(excluded=True).exists()


def test_admin_excludes_single_votes_with_a_reason(study, staff_client):
    client = annotator(study)
    for _ in range(3):
        vote(client)
    first, second, _ = Vote.objects.order_by("id")
    response = staff_client.post("/admin/annotations/vote/", {
        "action": "exclude_selected_votes", "_selected_action": [first.pk, second.pk], "reason": "too fast"})
    assert response.status_code == 302
    assert list(Vote.objects.order_by("id").values_list("excluded", "exclusion_reason")) == [
        (True, "too fast"), (True, "too fast"), (False, "")]
    staff_client.post("/admin/annotations/vote/", {"action": "restore_selected_votes", "_selected_action": [first.pk]})
    assert Vote.objects.filter(excluded=True).count() == 1


def test_api_excludes_votes_and_annotators(study, staff_client):
    client = annotator(study)
    for _ in range(2):
        vote(client)
    pseudonym = client.get("/s/qc/").wsgi_request.user.annotator.pseudonym
    ids = list(Vote.objects.values_list("id", flat=True))
    api = "/api/v1/studies/qc/exclusions/"
    assert staff_client.post(api, {"votes": ids}, content_type="application/json").status_code == 400  # no reason
    assert staff_client.post(api, {"votes": ids[:1], "reason": "duplicate"},
                             content_type="application/json").json() == {"study": "qc", "changed": 1}
    assert staff_client.post(api, {"annotator": pseudonym, "reason": "bot"},
                             content_type="application/json").json()["changed"] == 1
    assert staff_client.post(api, {"annotator": "ann-nobody", "reason": "x"},
                             content_type="application/json").status_code == 404
    assert staff_client.post(api, {"annotator": pseudonym, "restore": True},
                             content_type="application/json").json()["changed"] == 1
    records = staff_client.get("/api/v1/studies/qc/votes/").json()["results"]
    assert sorted((r["excluded"], r["exclusion_reason"]) for r in records) == [(False, ""), (True, "duplicate")]
    assert Client().post(api, {"votes": ids, "reason": "x"}, content_type="application/json").status_code in (401, 403)


def test_an_item_that_cannot_be_judged_is_reported_and_skipped(study, staff_client):
    client = annotator(study)
    page = client.get("/s/qc/")
    token = page.context["token"]
    response = client.post("/s/qc/vote/", {"token": token, "choice": "flag", "flag_reason": "both texts are empty"},
                           **HX)
    assert response.status_code == 200 and "reported to the research team" in response.content.decode()
    assert response.context["token"] != token
    flag = ItemFlag.objects.get()
    assert flag.reason == "both texts are empty" and not Vote.objects.exists()
    assert Assignment.objects.get(token=token).completed_at is not None  # left their queue; no lease held
    assert "both texts are empty" in staff_client.get("/dashboard/studies/qc/").content.decode()
    # replaying the report changes nothing
    client.post("/s/qc/vote/", {"token": token, "choice": "flag"}, **HX)
    assert ItemFlag.objects.count() == 1


def test_a_second_tab_is_told_which_answer_was_kept(study):
    client = annotator(study)
    token = client.get("/s/qc/").context["token"]
    client.post("/s/qc/vote/", {"token": token, "choice": "left"}, **HX)
    response = client.post("/s/qc/vote/", {"token": token, "choice": "right"}, **HX)
    assert "your first answer, “Response A”, was kept" in response.content.decode()
    assert Vote.objects.get(assignment__token=token).choice == "left"


def test_the_admin_applies_the_study_forms_rules(study, staff_client):
    """The admin used to save instructions naming a model and status=open without comparisons."""
    new = Study.objects.create(slug="draft-one", name="x", dataset=study.dataset)
    new.systems.set(study.systems.all())
    form = staff_client.get(f"/admin/annotations/study/{new.pk}/change/").context["adminform"].form
    data = {name: form.initial.get(name, "") for name in form.fields}
    data.update({"systems": [s.pk for s in study.systems.all()], "dataset": study.dataset.pk,
                 "instructions": "Response from alpha-model is usually longer", "status": "open",
                 "allow_tie": "on", "allow_both_bad": "on", "leaderboard_public": "on"})
    data = {k: v for k, v in data.items() if v is not None}
    response = staff_client.post(f"/admin/annotations/study/{new.pk}/change/", data)
    assert response.status_code == 200  # the form again, with the error
    assert "must not name a model" in response.content.decode()
    new.refresh_from_db()
    assert new.status == Study.Status.DRAFT and "alpha" not in new.instructions
