"""PostgreSQL query plans read in tests: the tests that check a hot or per-page statement walks the index
it was written for (tests/annotations/test_lease_plan.py, tests/dashboard/test_annotator_count.py)."""
from __future__ import annotations


def plan_of(connection, sql: str, params: list) -> dict:
    """The top node of PostgreSQL's plan for `sql` with `params` (EXPLAIN, not run)."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        return cursor.fetchone()[0][0]["Plan"]


def nodes(plan: dict):
    """Every node of a plan, the top one first."""
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)
