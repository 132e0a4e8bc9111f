"""The database connection dies in the middle of a vote.

Two ways: (1) anywhere, an OperationalError raised inside the vote's transaction at three points
(before the vote row is written, between the vote row and the rating update, at COMMIT); (2) on
PostgreSQL, the request's own backend terminated with `pg_terminate_backend` from another
connection at the same three points, so the next statement (or the COMMIT) meets a dead socket.

Each time the annotator gets the friendly 500 page (templates/500.html, no traceback, no exception
name), nothing of the vote is left behind (no vote row, no completed assignment, no counted
comparison, no rating movement), and answering again afterwards stores the vote exactly once.
"""
from __future__ import annotations

import re

import pytest
from django.db import OperationalError, connection
from django.test import Client

import annotations.queue as queue_module
import ranking.services as rating_services
from annotations.models import Assignment, Comparison, InviteLink, Vote
from ranking.models import RatingState
from tests.conftest import database_url_for_subprocess
from tests.factories import make_study

from .conftest import wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

TOKEN = re.compile(r'name="token" value="([^"]+)"')
POINTS = ("before the vote row", "before the rating update", "at commit")


def invited(study) -> Client:
    client = Client(raise_request_exception=False)  # as in production: the 500 handler answers
    invite = InviteLink.objects.create(max_uses=1)
    invite.studies.add(study)
    client.get(f"/invite/{invite.token}/")
    client.post(f"/invite/{invite.token}/", {"csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    return client


def token_on(response) -> str:
    return TOKEN.search(response.content.decode()).group(1)


def inject(monkeypatch, point: str, fault) -> list[str]:
    """Call `fault()` once, at `point` inside submit_vote's transaction; returns a list that records it."""
    fired: list[str] = []
    real_check, real_apply = queue_module.check_answer, rating_services.apply_vote_to_ratings

    def fire():
        if not fired:
            fired.append(point)
            fault()

    def check_answer(*args, **kwargs):  # runs after the locks and lookups, before the vote row is written
        if point == POINTS[0]:
            fire()
        return real_check(*args, **kwargs)

    def apply_vote_to_ratings(vote):  # runs after the vote row, the assignment and the comparison count
        if point == POINTS[1]:
            fire()
        real_apply(vote)
        if point == POINTS[2]:
            fire()  # the last statement before COMMIT

    monkeypatch.setattr(queue_module, "check_answer", check_answer)
    monkeypatch.setattr(rating_services, "apply_vote_to_ratings", apply_vote_to_ratings)
    return fired


def assert_clean_error_page(response) -> None:
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong on our side" in body
    for leak in ("Traceback", "OperationalError", "psycopg", "sqlite", "File \"", "SELECT", "INSERT"):
        assert leak not in body, f"the error page shows {leak!r}"


def assert_nothing_stored(study, assignment: Assignment) -> None:
    assignment.refresh_from_db()
    assert not Vote.objects.filter(study=study).exists()
    assert assignment.completed_at is None
    assert Comparison.objects.get(pk=assignment.comparison_id).votes_count == 0
    assert sum(RatingState.objects.filter(study=study).values_list("votes", flat=True)) == 0


def vote_fails_cleanly_then_succeeds_once(monkeypatch, point: str, fault) -> None:
    study = make_study(slug="db-drop", n_instances=3)
    client = invited(study)
    token = token_on(client.get("/s/db-drop/"))
    assignment = Assignment.objects.get(token=token)
    fired = inject(monkeypatch, point, fault)

    response = client.post("/s/db-drop/vote/", {"token": token, "choice": "left"}, HTTP_HX_REQUEST="true")
    assert fired == [point]
    connection.close()  # the test client keeps the request's connection; a real server closes a broken one
    assert_clean_error_page(response)
    assert_nothing_stored(study, assignment)

    monkeypatch.undo()
    page = client.get("/s/db-drop/")  # the annotator reloads: the same item is still theirs
    assert token_on(page) == token
    retry = client.post("/s/db-drop/vote/", {"token": token, "choice": "left"}, HTTP_HX_REQUEST="true")
    assert retry.status_code == 200
    vote = Vote.objects.get(study=study)
    assert vote.assignment_id == assignment.pk
    assert Comparison.objects.get(pk=assignment.comparison_id).votes_count == 1
    assert sum(RatingState.objects.filter(study=study, method="elo").values_list("votes", flat=True)) == 2


@pytest.mark.parametrize("point", POINTS)
def test_operational_error_inside_the_vote_gives_the_error_page_and_no_partial_rows(monkeypatch, point):
    def fault():
        if point == POINTS[2]:  # at COMMIT: the commit itself fails, as when the server is gone
            real_commit = connection.commit

            def failing_commit():
                connection.commit = real_commit
                raise OperationalError("server closed the connection unexpectedly")

            connection.commit = failing_commit
            return
        raise OperationalError("server closed the connection unexpectedly")

    vote_fails_cleanly_then_succeeds_once(monkeypatch, point, fault)


@pytest.mark.services
@pytest.mark.parametrize("point", POINTS)
def test_backend_terminated_mid_vote_gives_the_error_page_and_no_partial_rows(postgres, monkeypatch, point):
    import psycopg

    def terminate_own_backend():
        pid = connection.connection.info.backend_pid
        with psycopg.connect(database_url_for_subprocess(), autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
            wait_until(lambda: admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                                             [pid]).fetchone()[0] == 0, 30, f"backend {pid} to exit")

    vote_fails_cleanly_then_succeeds_once(monkeypatch, point, terminate_own_backend)
