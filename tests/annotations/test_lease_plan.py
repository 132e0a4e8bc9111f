"""The lease query (annotations.sql.lease_query) runs on every item served: PostgreSQL must answer it from the
partial index `comparison_serve_order` (study, priority DESC, id; selected, not gold), which already holds the
rows in serving order, so it stops at the first that fits instead of sorting the study's comparisons; also
once the adaptive policy's recompute has rewritten the priorities (ranking.priorities)."""
from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from annotations.models import Comparison
from annotations.sql import lease_query
from ranking.priorities import refresh_adaptive_priorities
from tests.factories import make_study
from tests.plans import nodes, plan_of


@pytest.mark.parametrize("policy", ["all", "adaptive"])
def test_the_lease_query_walks_the_serve_order_index_without_sorting(postgres, policy):
    study = make_study(slug="plan", n_instances=400, policy=policy)
    other = make_study(slug="plan-other", n_instances=400)  # another study's rows the index must skip
    assert Comparison.objects.filter(study__in=[study, other]).count() == 800
    user = get_user_model().objects.create_user("planner")
    if policy == "adaptive":  # the recompute rewrites the priorities: the same query, the same walk
        assert refresh_adaptive_priorities(study) == 400
        assert Comparison.objects.filter(study=study).values("priority").distinct().count() == 400
    with postgres.cursor() as cursor:
        cursor.execute(f'ANALYZE "{Comparison._meta.db_table}"')
    for lock in (False, True):
        sql, params = lease_query(study, user, timezone.now(), limit=1, lock=lock)
        plan = plan_of(postgres, sql, params)
        walked = list(nodes(plan))
        scans = [n for n in walked if n.get("Relation Name") == Comparison._meta.db_table]
        assert [n.get("Index Name") for n in scans] == ["comparison_serve_order"], json.dumps(plan, indent=1)
        assert not any(n["Node Type"] in ("Sort", "Incremental Sort") for n in walked), json.dumps(plan, indent=1)
