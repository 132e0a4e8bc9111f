"""The annotator cycle's plain-SQL reads and writes (annotations.sql, annotations.session_store) give the
same rows, the same model instances and the same all-or-nothing writes as the ORM statements they replace,
on SQLite and on PostgreSQL."""
from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore as DjangoSessionStore
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotations import queue, sql
from annotations.models import Assignment, Comparison, Study, Vote
from annotations.session_store import SessionStore
from tests.factories import answer, make_annotator, make_study

pytestmark = pytest.mark.django_db


def fields_of(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_rows_read_by_plain_sql_are_the_orm_s_instances():
    study = make_study(slug="plain-rows", n_instances=3, overlap=2)
    user = make_annotator()
    leased = queue.next_assignment(study, user)

    read = sql.study_by_slug("plain-rows")
    assert fields_of(read) == fields_of(Study.objects.get(pk=study.pk)) and not read._state.adding
    assert sql.study_by_slug("no-such-study") is None

    orm = Assignment.objects.select_related("comparison").get(pk=leased.pk)
    for got in (sql.open_assignment(leased.token, user, study), sql.unanswered_assignments(study, user)[0]):
        assert fields_of(got) == fields_of(orm)
        assert fields_of(got.comparison) == fields_of(orm.comparison)
        assert isinstance(got.left_is_a, bool) and got.expires_at.tzinfo is not None

    comparison = Comparison.objects.select_related("instance", "generation_a", "generation_b").get(
        pk=leased.comparison_id)
    assert sql.item_texts(leased.comparison_id) == (
        comparison.instance.input, comparison.generation_a.text, comparison.generation_b.text)
    found = sql.open_comparisons(study, user, timezone.now(), limit=1)
    assert [fields_of(c) for c in found] == [fields_of(Comparison.objects.get(pk=found[0].pk))]


def test_only_the_annotator_s_own_served_open_item_of_the_study_is_found():
    study = make_study(slug="plain-own", n_instances=3)
    other_study = make_study(slug="plain-other", n_instances=3)
    user, someone = make_annotator(), make_annotator()
    leased = queue.next_assignment(study, user)
    assert sql.open_assignment(leased.token, someone, study) is None
    assert sql.open_assignment(leased.token, user, other_study) is None
    assert sql.lock_assignment(leased.token, someone, study) is None
    answer(study, user, choice="left")
    assert sql.open_assignment(leased.token, user, study) is None  # answered
    assert sql.lock_assignment(leased.token, user, study).completed_at is not None
    assert sql.votes_by(study, user) == 1 == queue.progress(study, user).done


def test_a_vote_that_breaks_the_unique_constraint_leaves_no_write_behind():
    """The vote's INSERT and its two UPDATEs are one statement on PostgreSQL: when the INSERT fails (a
    vote for this assignment came in by another path), the assignment stays open and the count unchanged,
    and the answer is a replay of the stored vote."""
    study = make_study(slug="plain-unique", n_instances=2)
    user = make_annotator()
    leased = queue.next_assignment(study, user)
    now = timezone.now()
    Vote.objects.create(assignment=leased, study=study, comparison=leased.comparison, annotator=user,
                        choice="left", winner="a", submitted_at=now, source=Vote.Source.IMPORTED)
    result = queue.submit_vote(study, user, leased.token, "right")
    assert result.replay and result.vote.choice == "left" and Vote.objects.count() == 1
    assert Assignment.objects.get(pk=leased.pk).completed_at is None
    assert Comparison.objects.get(pk=leased.comparison_id).votes_count == 0


def test_insert_vote_raises_on_a_second_vote_for_an_assignment():
    study = make_study(slug="plain-twice", n_instances=2)
    user = make_annotator()
    answer(study, user, choice="left")
    stored = Vote.objects.get()
    again = Vote(assignment_id=stored.assignment_id, study=study, comparison_id=stored.comparison_id,
                 annotator=user, choice="right", winner="b", submitted_at=timezone.now())
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            sql.insert_vote(again, timezone.now())
    assert Vote.objects.count() == 1 and Comparison.objects.get(pk=stored.comparison_id).votes_count == 1


def test_a_stored_vote_is_the_orm_s_row():
    study = make_study(slug="plain-vote", n_instances=2)
    user = make_annotator()
    leased = queue.next_assignment(study, user)
    result = queue.submit_vote(study, user, leased.token, "left")
    assert not result.replay and not result.vote._state.adding
    assert fields_of(result.vote) == fields_of(Vote.objects.get(pk=result.vote.pk))
    assert Assignment.objects.get(pk=leased.pk).completed_at is not None
    assert Comparison.objects.get(pk=leased.comparison_id).votes_count == 1


def test_sessions_of_the_stock_engine_are_read_and_expired_ones_are_not():
    stock = DjangoSessionStore()
    stock["_auth_user_id"] = "7"
    stock.save()
    assert SessionStore(stock.session_key).load() == {"_auth_user_id": "7"}
    ours = SessionStore()
    ours["x"] = [1, 2]
    ours.save()
    assert DjangoSessionStore(ours.session_key).load() == {"x": [1, 2]}

    expired = SessionStore(stock.session_key)
    expired.model.objects.filter(session_key=stock.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1))
    assert expired.load() == {} and expired.session_key is None
    missing = SessionStore("nosuchsessionkey00000000")
    assert missing.load() == {} and missing.session_key is None
    assert SessionStore().load() == {}
