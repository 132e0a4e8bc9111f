"""A study's annotator count (the dashboard index, the API's studies) walks the (study, annotator) index from
one annotator to the next instead of reading every vote (dashboard.queries.annotators_per_study): it must
give what COUNT(DISTINCT annotator) gives, for every study at once, and on PostgreSQL never scan the votes."""
from __future__ import annotations

import json

import pytest
from django.db.models import Count

from annotations.models import Vote
from dashboard.queries import annotators_per_study, annotators_per_study_query, studies_progress
from tests.factories import answer, make_annotator, make_study, make_voted_study
from tests.plans import nodes, plan_of

pytestmark = pytest.mark.django_db


def distinct_annotators(ids) -> dict[int, int]:
    return dict(Vote.objects.filter(study_id__in=ids).order_by().values("study_id")
                .annotate(n=Count("annotator_id", distinct=True)).values_list("study_id", "n"))


def test_each_study_counts_its_own_annotators_as_count_distinct_does():
    first = make_study("count-first", n_instances=6, overlap=3)
    second = make_study("count-second", n_instances=6, overlap=3)
    empty = make_study("count-empty", n_instances=2)
    for n in range(3):
        answer(first, make_annotator(f"first-{n}"))
    for n in range(5):
        answer(second, make_annotator(f"second-{n}"))
    shared = make_annotator("in-both")  # one person voting in two studies, twice in one, counts once in each
    assert answer(first, shared) and answer(first, shared) and answer(second, shared)

    counts = annotators_per_study([first.pk, second.pk, empty.pk])

    assert counts == {**distinct_annotators([first.pk, second.pk]), empty.pk: 0}
    assert counts[first.pk] == 4 and counts[second.pk] == 6
    assert annotators_per_study([]) == {}
    assert studies_progress([first, second, empty])[second.pk]["annotators"] == 6


def test_a_study_whose_every_vote_is_one_annotators_counts_one():
    study = make_study("count-one", n_instances=5)
    voter = make_annotator("alone")
    for _ in range(4):
        answer(study, voter)
    assert Vote.objects.filter(study=study).count() == 4
    assert annotators_per_study([study.pk]) == {study.pk: 1}


def test_postgresql_answers_from_the_study_annotator_index_without_scanning_the_votes(postgres):
    studies = [make_voted_study(f"count-plan-{n}", n_instances=4, annotators=3) for n in range(2)]
    with postgres.cursor() as cursor:
        cursor.execute(f'ANALYZE "{Vote._meta.db_table}"')
        cursor.execute("SET enable_seqscan = off")  # a tiny table: make the planner show the path it has
    try:
        plan = plan_of(postgres, *annotators_per_study_query([s.pk for s in studies]))
    finally:
        with postgres.cursor() as cursor:
            cursor.execute("RESET enable_seqscan")

    scans = [n for n in nodes(plan) if n.get("Relation Name") == Vote._meta.db_table]
    assert scans and {n.get("Index Name") for n in scans} == {"vote_study_annotator"}, json.dumps(plan, indent=1)
    assert all(n["Node Type"] in ("Index Only Scan", "Index Scan") for n in scans), json.dumps(plan, indent=1)
