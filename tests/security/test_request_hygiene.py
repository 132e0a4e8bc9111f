"""A NUL character anywhere in a request (path, query string, form, cookie) is a clean 400, never a 500.

PostgreSQL refuses NUL in text, so before lib.middleware.RequestHygieneMiddleware each of these was a
500 on PostgreSQL: the invite page looked the token up, the dashboard looked the metric up, the admin
filtered votes by the winner, the session middleware looked the session key up. The Hypothesis test
then throws random query strings (NUL, control characters, broken UTF-8, lone percent signs) at a
handful of pages for each role and asks only that none of them is a server error.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotations.models import InviteLink, Vote
from tests.factories import make_voted_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(db):
    return make_voted_study(slug="hygiene", n_instances=2, annotators=1)


def assert_refused(response, api=False):
    assert response.status_code == 400, (response.status_code, response.content[:300])
    if api:
        assert response.json() == {"detail": "The request contains a NUL character, which this site does not accept."}
    else:
        assert response["Content-Type"].startswith("text/plain")
        assert b"NUL" in response.content


def test_nul_in_an_invite_token_is_a_400_for_an_anonymous_visitor(postgres, client):
    assert_refused(client.get("/invite/%00/"))
    assert_refused(client.get("/invite/abc%00def/"))


def test_nul_in_a_dashboard_query_parameter_is_a_400_for_staff(postgres, staff_client, study):
    url = f"/dashboard/datasets/{study.dataset.slug}/separability/"
    assert staff_client.get(url).status_code == 200
    assert_refused(staff_client.get(url + "?metric=%00"))
    assert_refused(staff_client.get(url + "?pair=x%00y"))
    assert_refused(staff_client.get(url + "?metric%00=bertscore"))  # in the key, too


def test_nul_in_an_admin_list_filter_is_a_400(postgres, staff_client, study):
    assert staff_client.get("/admin/annotations/vote/?winner__exact=a").status_code == 200
    assert_refused(staff_client.get("/admin/annotations/vote/?winner__exact=%00"))
    assert_refused(staff_client.get("/admin/annotations/vote/?q=%00"))


def test_nul_in_an_api_query_parameter_is_the_apis_json_400(postgres, staff_client, study):
    assert_refused(staff_client.get(f"/api/v1/studies/{study.slug}/comparisons/?system=%00"), api=True)


def test_nul_in_a_posted_form_is_a_400_and_changes_nothing(postgres, staff_client, study):
    invite = InviteLink.objects.create(max_uses=5)
    votes = Vote.objects.count()
    for fields in ({"username": "staff\x00", "password": "x"}, {"user\x00name": "staff", "password": "x"}):
        assert_refused(staff_client.post("/accounts/login/", fields))
    # multipart (the test client's default) and urlencoded alike
    assert_refused(staff_client.post(f"/invite/{invite.token}/", {"x": "a\x00b"}))
    assert_refused(staff_client.post(f"/invite/{invite.token}/", "x=a%00b",
                                     content_type="application/x-www-form-urlencoded"))
    upload = _named_upload("gen.jsonl", b'{"instance_id": "x", "system": "s", "generations": ["t"]}\n')
    response = staff_client.post(f"/api/v1/datasets/{study.dataset.slug}/import/", {"file": upload, "kind": "gen\x00"})
    assert_refused(response, api=True)
    assert Vote.objects.count() == votes
    invite.refresh_from_db()
    assert invite.uses == 0


def test_nul_in_a_session_cookie_is_a_400_not_a_failed_session_lookup(postgres, client):
    # A quoted cookie value may spell characters as octal escapes: this one is eight NULs.
    assert_refused(client.get("/", HTTP_COOKIE='sessionid="' + "\\000" * 8 + '"'))


def test_an_uploaded_files_content_is_left_to_the_importer(postgres, staff_client, study):
    upload = _named_upload("gen.csv", b"instance_id,input,system,sample_index,text\nx0,Q?,alpha,0,A\x00B\n")
    response = staff_client.post(f"/api/v1/datasets/{study.dataset.slug}/import/",
                                 {"file": upload, "kind": "generations"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("gen.csv:2: text:"), response.json()  # the importer's own answer


def test_requests_without_nul_pass_untouched(postgres, client, study):
    assert client.get("/?q=%C3%A9%20ok").status_code == 200
    assert client.get("/invite/no-such-token/").status_code == 404


def _named_upload(name, content):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


# --------------------------------------------------------------------------------------------------
# fuzz: random query strings against a few pages, each role


ODD = ["\x00", "%00", "a\x00", "%00b", "%", "%zz", "%C3", "%ED%A0%80", "%FF", "\x01", "\x7f", "\u2028", "é", "😀", "&",
       "=", "+", ";", "#", "[]", "\\", "'", '"', "<", "\n", " "]
pieces = st.one_of(st.sampled_from(ODD), st.text(alphabet=st.characters(codec="utf-8"), max_size=6))
words = st.lists(pieces, max_size=3).map("".join)

# (role, page, the query parameters it reads): a random key is mostly ignored, so keys are mostly these.
PROLIFIC = ["PROLIFIC_PID", "STUDY_ID", "SESSION_ID"]
ADMIN = ["q", "o", "p", "e", "_to_field", "winner__exact", "study__id__exact", "source__exact", "excluded__exact"]
PAGES = [
    ("anonymous", "/", []),
    ("anonymous", "/leaderboard/{study}/", ["method"]),
    ("anonymous", "/invite/{invite}/", []),
    ("anonymous", "/accounts/login/", ["next"]),
    ("anonymous", "/s/{study}/", PROLIFIC),
    ("annotator", "/s/{study}/", PROLIFIC),
    ("annotator", "/s/{study}/done/", PROLIFIC),
    ("annotator", "/leaderboard/{study}.json", ["method"]),
    ("staff", "/dashboard/studies/{study}/", []),
    ("staff", "/dashboard/datasets/{dataset}/separability/", ["metric", "pair"]),
    ("staff", "/dashboard/datasets/{dataset}/separability/export/", ["metric"]),
    ("staff", "/admin/annotations/vote/", ADMIN),
    ("staff", "/api/v1/studies/{study}/comparisons/", ["system", "selected", "is_gold", "min_separability", "limit",
                                                       "offset"]),
    ("staff", "/api/v1/studies/{study}/votes/", ["format", "limit", "offset"]),
    ("staff", "/api/v1/studies/{study}/leaderboards/", ["method"]),
    ("staff", "/api/v1/datasets/{dataset}/separability/", ["metric", "system_a", "system_b", "limit", "offset"]),
]


@st.composite
def requests_(draw):
    role, path, keys = draw(st.sampled_from(PAGES))
    known = st.sampled_from(keys) if keys else words
    pairs = draw(st.lists(st.tuples(st.one_of(known, known, known, words), words), max_size=4))
    return role, path, pairs


def _encode(pairs) -> str:
    """Each piece quoted as a browser would, except raw '%' sequences, which are sent as drawn."""
    def part(text):
        return "".join(ch if ch == "%" else quote(ch, safe="") for ch in text)
    return "&".join(f"{part(k)}={part(v)}" for k, v in pairs)


@pytest.fixture
def clients(study):
    invite = InviteLink.objects.create(max_uses=100)
    invite.studies.add(study)
    annotator, staff = Client(), Client()
    annotator.post(f"/invite/{invite.token}/")  # redeemed the way an annotator arrives
    from django.contrib.auth import get_user_model

    staff.force_login(get_user_model().objects.create_user("fuzz-staff", is_staff=True, is_superuser=True))
    names = {"study": study.slug, "dataset": study.dataset.slug, "invite": invite.token}
    return {"anonymous": Client(), "annotator": annotator, "staff": staff}, names


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request_=requests_())
def test_random_query_strings_are_never_a_server_error(postgres, clients, request_):
    by_role, names = clients
    role, path, pairs = request_
    response = by_role[role].get(f"{path.format(**names)}?{_encode(pairs)}")
    assert response.status_code < 500, (role, path, pairs, response.content[:500])
