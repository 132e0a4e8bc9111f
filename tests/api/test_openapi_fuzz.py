"""The researcher API fuzzed against its own OpenAPI schema (schemathesis 4 on Hypothesis).

Every operation of `/api/schema/` is called in-process through the WSGI application (no server) with
generated data, schema-valid and schema-violating (schemathesis' positive and negative modes), on a
real database seeded with a study (systems, instances, generations, comparisons, votes, leases,
separability rows and leaderboard snapshots). Path slugs, system names and import files are drawn
partly from that data, so operations also answer 2xx, not only 404 and 400.

- As staff (token): never a 5xx; every answer's status code is documented for the operation, its
  content type is documented for that status, and its body matches the documented schema.
- Anonymous and as a non-staff annotator (token): only 401 / 403 (or a 404 for an address no route
  matches, or the 400 of a request holding a NUL character), documented and well-formed likewise.
- Whoever calls: an answer that is not a 2xx, and any GET, leaves the row count of every table as it
  was: an import (or token request) that fails writes nothing.

The error answers (400, 401, 403, 404, 415) are documented once for every operation, in api/schema.py.
Not checked: schemathesis' `negative_data_rejection` (DRF reads "0"/"1" as booleans and ignores a
malformed `limit`, which it counts as accepting invalid data) and the stateful checks that resend
requests (`use_after_free`, `ignored_auth`: this API has no create/delete pairs and one auth rule).
"""
from __future__ import annotations

import os

import pytest
import schemathesis
from django.apps import apps
from django.db import connection
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from evalsite.wsgi import application
from lib.middleware import NUL_DETAIL
from tests.factories import SYSTEMS, make_account, make_voted_study
from tests.fuzz import inputs

# Fetched through the app itself; the schema view needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
STUDY = "fuzz-study"
DATASET = f"{STUDY}-data"  # make_study's naming
# Examples per operation: a second or two each here (2 cores). The staff run is the one that reaches
# the views; the refused ones stop at the permission check. API_FUZZ_EXAMPLES=400 for a deeper run.
STAFF_EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", 40))
REFUSED_EXAMPLES = max(1, STAFF_EXAMPLES // 5)
# The seed fixture runs once per operation, not per example: examples share (and may change) its data,
# as successive clients of one server would. That is what Hypothesis' function-scoped-fixture check
# warns about, and it is intended here.
FUZZ_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Import bodies that can succeed: the fuzz suite's valid seed files (tests/fuzz/inputs.py). The votes
# file names make_study's instances and systems, so it imports once into the study and is refused after.
VALID_IMPORTS = [
    {"kind": "generations", "file": inputs.generations_jsonl_seed(), "format": "jsonl"},
    {"kind": "generations", "file": inputs.generations_csv_seed(), "format": "csv"},
    {"kind": "votes", "study": STUDY, "file": inputs.votes_seed()},
    {"kind": "pairwise", "study": "fuzz-batch", "systems": "mistral-7b,vicuna-7b", "file": inputs.pairwise_seed(2)},
]


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """A slug of the seeded data most of the time, else the generated one (a 404, or unroutable)."""
    if not isinstance(path_parameters, dict) or "slug" not in path_parameters:
        return st.just(path_parameters)
    return st.sampled_from([STUDY, DATASET, STUDY, DATASET, path_parameters["slug"]]).map(
        lambda slug: {**path_parameters, "slug": slug})


@schema.hook
def flatmap_query(context, query):
    """Filters by system name: sometimes a seeded system, so the filter selects something."""
    if not isinstance(query, dict):
        return st.just(query)
    keys = [k for k in ("system", "system_a", "system_b") if isinstance(query.get(k), str)]
    if not keys:
        return st.just(query)
    return st.fixed_dictionaries({k: st.sampled_from([*SYSTEMS, query[k]]) for k in keys}).map(
        lambda names: {**query, **names})


@schema.hook
def flatmap_body(context, body):
    """The import: the generated form, or now and then one with a valid file."""
    if context.operation is None or not context.operation.path.endswith("/import/"):
        return st.just(body)
    return st.one_of(st.just(body), st.sampled_from(VALID_IMPORTS))


def row_counts() -> dict[str, int]:
    """The row count of every table (many-to-many ones included), in one query."""
    tables = sorted({m._meta.db_table for m in apps.get_models(include_auto_created=True)})
    counts = ", ".join(f"(SELECT COUNT(*) FROM {connection.ops.quote_name(t)})" for t in tables)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}")
        return dict(zip(tables, cursor.fetchone(), strict=True))


@pytest.fixture
def one_connection():
    """Like Django's test client: no closing of the connection around each request (with
    CONN_MAX_AGE=0 every call would otherwise reconnect, most of the run's time on PostgreSQL)."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(transactional_db, one_connection):
    """The study the operations work on, with separability rows and leaderboard snapshots."""
    from annotations.models import Instance, System
    from ranking.services import refresh_snapshots
    from separability.models import Alignment

    study = make_voted_study(STUDY)
    alpha, beta = sorted(System.objects.filter(name__in=SYSTEMS), key=lambda s: s.pk)
    for n, instance in enumerate(Instance.objects.filter(dataset__slug=DATASET).order_by("pk")):
        Alignment.objects.create(instance=instance, system_a=alpha, system_b=beta, metric="rouge1", self_a=0.8,
                                 self_b=0.7, cross=0.5 - n / 20, separability=0.3 + n / 20,
                                 normalised=(0.3 + n / 20) / 0.8, k_a=2, k_b=2)
        Alignment.objects.create(instance=instance, system_a=alpha, system_b=beta, metric="bertscore", k_a=2, k_b=2,
                                 undefined_reason="not computed in this test")
    refresh_snapshots(study, rounds=10)
    return study


def token_header(user) -> dict:
    """Read at each call: the token operation may have rotated the key."""
    from rest_framework.authtoken.models import Token

    return {"Authorization": f"Token {Token.objects.get_or_create(user=user)[0].key}"}


def call_and_check(case, headers: dict):
    before = row_counts()
    response = case.call(headers=headers)
    event(f"{case.method} {response.status_code}")
    case.validate_response(response, checks=CHECKS, headers=headers)
    if case.method == "GET" or not 200 <= response.status_code < 300:
        assert row_counts() == before, f"{case.method} {case.formatted_path} answered {response.status_code} " \
                                       f"but changed rows"
    return response


@schema.parametrize()
@settings(max_examples=STAFF_EXAMPLES, **FUZZ_SETTINGS)
def test_no_api_operation_answers_a_server_error_or_off_schema_and_failures_write_nothing(case, seeded, staff_user):
    call_and_check(case, token_header(staff_user))


@pytest.fixture
def annotator(db, one_connection):
    """A signed-up annotator, not staff. The refused calls never reach a view, so no seeded study and
    no committed transactions are needed: the test transaction is rolled back (faster than a flush)."""
    return make_account("fuzz-annotator")


@schema.parametrize()
@settings(max_examples=REFUSED_EXAMPLES, **FUZZ_SETTINGS)
def test_anonymous_and_non_staff_callers_are_refused_as_documented_and_write_nothing(case, annotator):
    for headers, refused in (({}, 401), (token_header(annotator), 403)):
        response = call_and_check(case, headers)
        # 404: an address no route matches (a generated slug that is not a slug) is not found for anyone.
        # 400: a NUL character anywhere in the request, refused before authentication (lib.middleware).
        nul = response.status_code == 400 and response.json() == {"detail": NUL_DETAIL}
        assert response.status_code in (refused, 404) or nul, (headers, response.status_code)
