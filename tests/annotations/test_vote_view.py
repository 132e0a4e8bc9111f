"""The vote endpoint POST /s/<slug>/vote/: stores one vote per item, whatever the client replays."""
import re

import pytest
from django.test import Client

from annotations.models import Assignment, Comparison, Study, Vote
from tests.factories import make_study

from .test_annotate_view import invited_client

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def token_of(response):
    return re.search(r'name="token" value="([^"]+)"', response.content.decode()).group(1)


@pytest.fixture
def study():
    return make_study(slug="votes", n_instances=4, quota=3)


@pytest.fixture
def annotator(study):
    return invited_client(study)


def test_vote_is_stored_and_next_item_swapped_in(study, annotator):
    first = token_of(annotator.get("/s/votes/"))
    response = annotator.post("/s/votes/vote/", {"token": first, "choice": "right"}, **HX)
    assert response.status_code == 200
    assert 'id="item"' in response.content.decode() and token_of(response) != first
    vote = Vote.objects.get()
    assert vote.choice == "right" and vote.assignment.token == first
    assert vote.winner == ("b" if vote.assignment.left_is_a else "a")
    assert vote.assignment.completed_at is not None


def test_vote_twice_with_the_same_token_is_stored_once(study, annotator):
    token = token_of(annotator.get("/s/votes/"))
    first = annotator.post("/s/votes/vote/", {"token": token, "choice": "left"}, **HX)
    replay = annotator.post("/s/votes/vote/", {"token": token, "choice": "right"}, **HX)
    assert replay.status_code == 200
    assert token_of(replay) == token_of(first)  # the replay gets the same next item, not a new lease
    assert Vote.objects.count() == 1 and Vote.objects.get().choice == "left"
    assert Comparison.objects.get(pk=Vote.objects.get().comparison_id).votes_count == 1


def test_plain_form_post_redirects_to_the_next_item(study, annotator):
    token = token_of(annotator.get("/s/votes/"))
    response = annotator.post("/s/votes/vote/", {"token": token, "choice": "left"})
    assert response.status_code == 302 and response["Location"] == "/s/votes/"
    assert Vote.objects.count() == 1


def test_post_without_csrf_token_is_forbidden(study):
    client = invited_client(study, Client(enforce_csrf_checks=True))
    token = token_of(client.get("/s/votes/"))
    response = client.post("/s/votes/vote/", {"token": token, "choice": "left"})
    assert response.status_code == 403
    assert not Vote.objects.exists()
    csrf = client.cookies["csrftoken"].value
    ok = client.post("/s/votes/vote/", {"token": token, "choice": "left"}, HTTP_X_CSRFTOKEN=csrf, **HX)
    assert ok.status_code == 200 and Vote.objects.count() == 1


def test_get_on_the_vote_endpoint_is_not_allowed(study, annotator):
    assert annotator.get("/s/votes/vote/").status_code == 405


def test_too_many_votes_get_429_with_a_friendly_message(study, annotator, settings):
    settings.VOTE_RATE_LIMIT = "2/m"
    for _ in range(2):
        token = token_of(annotator.get("/s/votes/"))
        assert annotator.post("/s/votes/vote/", {"token": token, "choice": "left"}, **HX).status_code == 200
    token = token_of(annotator.get("/s/votes/"))
    response = annotator.post("/s/votes/vote/", {"token": token, "choice": "left"}, **HX)
    assert response.status_code == 429
    assert "Please wait" in response.content.decode() and int(response["Retry-After"]) >= 1
    assert token_of(response) == token  # the item stays on screen
    assert Vote.objects.count() == 2


def test_rate_limit_is_per_annotator(study, settings):
    settings.VOTE_RATE_LIMIT = "1/m"
    for _ in range(2):
        client = invited_client(study)
        token = token_of(client.get("/s/votes/"))
        assert client.post("/s/votes/vote/", {"token": token, "choice": "left"}, **HX).status_code == 200


def test_required_rationale_missing_is_rejected_and_item_kept(study, annotator):
    Study.objects.filter(pk=study.pk).update(rationale=Study.Rationale.REQUIRED)
    token = token_of(annotator.get("/s/votes/"))
    response = annotator.post("/s/votes/vote/", {"token": token, "choice": "left", "rationale": "  "}, **HX)
    assert response.status_code == 400 and token_of(response) == token
    assert "explain your choice" in response.content.decode()
    assert not Vote.objects.exists()
    ok = annotator.post("/s/votes/vote/", {"token": token, "choice": "left", "rationale": "More complete."}, **HX)
    assert ok.status_code == 200 and Vote.objects.get().rationale == "More complete."


def test_answer_the_study_does_not_allow_is_rejected(study, annotator):
    Study.objects.filter(pk=study.pk).update(allow_tie=False)
    token = token_of(annotator.get("/s/votes/"))
    for bad in ("tie", "a", "", "left; DROP TABLE"):
        assert annotator.post("/s/votes/vote/", {"token": token, "choice": bad}, **HX).status_code == 400
    assert annotator.post("/s/votes/vote/", {"token": token, "choice": "both_bad"}, **HX).status_code == 200
    assert Vote.objects.get().winner == "both_bad"


def test_unknown_or_foreign_token_stores_nothing(study, annotator):
    other = invited_client(study)
    foreign = token_of(other.get("/s/votes/"))
    token_of(annotator.get("/s/votes/"))
    for token in (foreign, "not-a-token"):
        response = annotator.post("/s/votes/vote/", {"token": token, "choice": "left"}, **HX)
        assert response.status_code == 404
        assert "not yours" in response.content.decode()
    assert not Vote.objects.exists()


def test_last_vote_sends_htmx_to_the_done_page(study, annotator):
    for _ in range(3):
        token = token_of(annotator.get("/s/votes/"))
        response = annotator.post("/s/votes/vote/", {"token": token, "choice": "left"}, **HX)
    assert response["HX-Redirect"] == "/s/votes/done/"
    assert Vote.objects.count() == 3


def test_vote_after_the_study_closed_is_refused(study, annotator):
    token = token_of(annotator.get("/s/votes/"))
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    response = annotator.post("/s/votes/vote/", {"token": token, "choice": "left"}, **HX)
    assert response.status_code == 409 and "closed" in response.content.decode()
    assert not Vote.objects.exists()


def test_signed_out_vote_is_refused(study):
    assert Client().post("/s/votes/vote/", {"token": "x", "choice": "left"}).status_code == 403


def test_gold_vote_records_pass_or_fail(study, annotator):
    Comparison.objects.filter(study=study).update(is_gold=True, gold_answer="a")
    Study.objects.filter(pk=study.pk).update(gold_every=1)
    token = token_of(annotator.get("/s/votes/"))
    left_is_a = Assignment.objects.get(token=token).left_is_a
    annotator.post("/s/votes/vote/", {"token": token, "choice": "left"}, **HX)
    vote = Vote.objects.get()
    assert vote.gold_passed is left_is_a
    assert vote.winner == ("a" if left_is_a else "b")


def test_vote_and_next_item_cycle_stays_within_its_statement_budget(study, annotator, django_assert_max_num_queries):
    """The annotator cycle (vote + next item) is the site's hot path: 21 statements on PostgreSQL
    (session, user, study, access, the vote's transaction, progress, the lease's transaction, the item's
    texts; the transactions' BEGIN and COMMIT, here savepoints, included), 24 on SQLite (a write lock first
    in each transaction; the vote's INSERT and its two UPDATEs are three statements there, one WITH on
    PostgreSQL). A change that adds statements to it should be deliberate (see docs/benchmarks.md, "Web
    load")."""
    from django.db import connection

    token = token_of(annotator.get("/s/votes/"))
    annotator.post("/s/votes/vote/", {"token": token, "choice": "left"}, **HX)
    token = token_of(annotator.get("/s/votes/"))
    with django_assert_max_num_queries(21 if connection.vendor == "postgresql" else 24):
        response = annotator.post("/s/votes/vote/", {"token": token, "choice": "right"}, **HX)
    assert response.status_code == 200 and Vote.objects.count() == 2
