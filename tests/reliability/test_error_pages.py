"""The error pages an annotator can meet (templates/404.html, 403.html, 500.html): plain words, the
site's look, no traceback. The 500 page renders with no database at all (it is what is left when the
database is what failed): this module's 500 test runs without database access."""
import pytest
from django.test import RequestFactory
from django.views.defaults import server_error

from tests.annotations.test_annotate_view import invited_client
from tests.factories import make_study


def test_server_error_page_renders_without_the_database_and_says_what_to_do():
    response = server_error(RequestFactory().post("/s/some-study/vote/"))
    body = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in body and "answer it again" in body
    assert "Traceback" not in body and "{%" not in body and "{{" not in body


@pytest.mark.django_db
def test_unknown_address_gets_the_friendly_not_found_page(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Page not found" in body and "Traceback" not in body


@pytest.mark.django_db
def test_voting_in_a_study_one_was_not_invited_to_answers_like_a_missing_study():
    """Not a 403 that would tell the annotator the study exists (docs/security.md)."""
    invited_to = make_study(slug="invited-here", n_instances=1)
    make_study(slug="not-invited", n_instances=1, systems=("gamma-model", "delta-model"))
    client = invited_client(invited_to)
    response = client.post("/s/not-invited/vote/", {"token": "x", "choice": "left"})
    missing = client.post("/s/no-such-study/vote/", {"token": "x", "choice": "left"})
    assert response.status_code == missing.status_code == 404
    body = response.content.decode()
    assert "Not available" in body and "Traceback" not in body


@pytest.mark.django_db
def test_an_annotator_on_a_staff_page_gets_the_friendly_forbidden_page():
    client = invited_client(make_study(slug="invited-here", n_instances=1))
    response = client.get("/dashboard/")
    assert response.status_code == 403
    body = response.content.decode()
    assert "Not allowed" in body and "ask the research team" in body
