"""On PostgreSQL the site binds parameters on the server, so the annotator cycle's statements are prepared
once per connection instead of parsed and planned on every vote (evalsite/settings.py)."""
import pytest
from django.db import connection

from annotations.sql import study_by_slug
from tests.factories import make_study

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_statement_run_five_times_on_a_connection_is_prepared_and_still_answers(postgres):
    study = make_study(slug="prepared", n_instances=1)
    assert connection.settings_dict["OPTIONS"].get("server_side_binding") is True
    answers = [study_by_slug("prepared") for _ in range(6)]
    assert {answer.pk for answer in answers} == {study.pk}
    assert study_by_slug("no-such-study") is None  # the prepared plan with another parameter
    assert any('WHERE s.slug = $1' in statement for statement in _prepared_statements())
