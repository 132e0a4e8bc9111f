"""The researcher API: imports (a bad file is a 400 naming file, line and field, and writes nothing),
studies, comparisons, votes (JSON and CSV), leaderboards, tokens, input validation, and the schema."""
import csv
import io
import json

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from annotations.models import AnnotatorProfile, Comparison, Dataset, Generation, Instance, Study, System, Vote
from tests.factories import make_account, make_voted_study

pytestmark = pytest.mark.django_db

MODELS = (Dataset, Instance, Generation, System, Study, Comparison, Vote, AnnotatorProfile)


def row_counts():
    return {m.__name__: m.objects.count() for m in MODELS}


def upload(name, text):
    return SimpleUploadedFile(name, text.encode("utf-8"), content_type="application/octet-stream")


def jsonl(*objects):
    return "\n".join(json.dumps(o) for o in objects) + "\n"


GOOD = jsonl({"instance_id": "q1", "input": "Say hi.", "system": "sys-one", "generations": ["hi", "hello"]},
             {"instance_id": "q1", "system": "sys-two", "generations": ["hey", "yo"]})


@pytest.fixture
def study():
    return make_voted_study("api-study")


def test_import_generations_then_votes(staff_client):
    response = staff_client.post("/api/v1/datasets/fresh/import/",
                                 {"kind": "generations", "file": upload("g.jsonl", GOOD)})
    assert response.status_code == 201, response.content
    assert response.json()["summary"]["generations_created"] == 4 and response.json()["study"] is None
    again = staff_client.post("/api/v1/datasets/fresh/import/",
                              {"kind": "generations", "file": upload("g.jsonl", GOOD)})
    assert again.status_code == 201 and again.json()["message"] == "nothing new (everything was already there)"

    study = Study.objects.create(slug="fresh-study", name="fresh", dataset=Dataset.objects.get(slug="fresh"))
    study.systems.set(System.objects.filter(name__in=["sys-one", "sys-two"]))
    votes = ("instance_id,system_a,system_b,sample_a,sample_b,winner,annotator\n"
             "q1,sys-one,sys-two,0,0,a,w1\nq1,sys-two,sys-one,1,1,a,w1\n")
    response = staff_client.post("/api/v1/datasets/fresh/import/",
                                 {"kind": "votes", "study": "fresh-study", "file": upload("v.csv", votes)})
    assert response.status_code == 201, response.content
    assert response.json()["summary"]["votes_created"] == 2
    winners = sorted(Vote.objects.filter(study=study).values_list("winner", flat=True))
    assert winners == ["a", "b"]  # the second line named the systems the other way round


BAD_FILES = [
    ("generations", {}, "bad.jsonl",
     jsonl({"instance_id": "q9", "input": "x", "system": "s", "generations": ["ok"]})
     + '{"instance_id": "q9", "system": "t"}\n',
     "bad.jsonl:2: generations: is missing"),
    ("generations", {}, "bad.csv", "instance_id,input,system,sample_index,text\nq1,in,s,zero,t\n",
     "bad.csv:2: sample_index: 'zero' is not a whole number"),
    ("votes", {"study": "api-study"}, "votes.csv",
     "instance_id,system_a,system_b,sample_a,sample_b,winner,annotator\nx0,alpha-model,beta-model,0,0,a,w\n"
     "x1,alpha-model,beta-model,0,0,left,w\n",
     "votes.csv:3: winner: 'left' is not one of a, b, tie, both_bad"),
    ("votes", {"study": "api-study"}, "votes.csv",
     "instance_id,system_a,system_b,sample_a,sample_b,winner,annotator\nx0,alpha-model,beta-model,0,0,a,w\n"
     "nope,alpha-model,beta-model,0,0,a,w\n",
     "votes.csv:3: instance_id: unknown instance 'nope'"),
    ("pairwise", {"study": "new-batch", "systems": "m1,m2"}, "batch.csv", "WorkerId,Answer.pref1\nw1,1\n",
     "batch.csv:1: "),
    # A name longer than its column: a 500 on PostgreSQL (value too long for type character varying(200)).
    ("generations", {}, "long.jsonl",
     jsonl({"instance_id": "q1", "input": "x", "system": "m" * 201, "generations": ["a"]}),
     "long.jsonl:1: system: is 201 characters, over the limit of 200"),
]


@pytest.mark.parametrize("kind,extra,name,content,message", BAD_FILES, ids=[b[2] + "-" + b[4][-20:] for b in BAD_FILES])
def test_import_bad_file_is_a_400_and_writes_nothing(staff_client, study, kind, extra, name, content, message):
    before = row_counts()
    response = staff_client.post(f"/api/v1/datasets/{study.dataset.slug}/import/",
                                 {"kind": kind, "file": upload(name, content), **extra})
    assert response.status_code == 400, response.content
    assert response.json()["error"].startswith(message), response.json()
    assert row_counts() == before


@pytest.mark.parametrize("data,field", [
    ({"kind": "generations"}, "file"),
    ({"kind": "poems", "file": "x"}, "kind"),
    ({"kind": "votes", "file": "x"}, "study"),
    ({"kind": "votes", "study": "no-such-study", "file": "x"}, "study"),
    ({"kind": "votes", "study": "other", "file": "x"}, "study"),
    ({"kind": "pairwise", "study": "s", "systems": "only-one", "file": "x"}, "systems"),
    ({"kind": "pairwise", "study": "s", "systems": "same,same", "file": "x"}, "systems"),
    ({"kind": "generations", "study": "api-study", "file": "x"}, "study"),
    ({"kind": "generations", "format": "xml", "file": "x"}, "format"),
    ({"kind": "generations", "file": ""}, "file"),
    ({"kind": "pairwise", "study": "s" * 101, "systems": "m1,m2", "file": "x"}, "study"),
    ({"kind": "pairwise", "study": "s", "systems": "m" * 201 + ",m2", "file": "x"}, "systems"),
])
def test_import_validation_errors(staff_client, study, data, field):
    other = Study.objects.create(slug="other", name="other", dataset=Dataset.objects.create(slug="elsewhere"))
    assert other
    before = row_counts()
    payload = dict(data)
    if payload.get("file") == "x":
        payload["file"] = upload("x.jsonl", GOOD)
    elif payload.get("file") == "":
        payload["file"] = upload("empty.jsonl", "")
    response = staff_client.post(f"/api/v1/datasets/{study.dataset.slug}/import/", payload)
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in body and body[field], body
    assert row_counts() == before


def test_import_into_a_new_dataset_whose_slug_is_too_long_to_store_is_a_400(staff_client):
    """A slug the URL accepts but the column (100 characters) does not: was a 500 on PostgreSQL."""
    before = row_counts()
    response = staff_client.post(f"/api/v1/datasets/{'d' * 101}/import/",
                                 {"kind": "generations", "file": upload("g.jsonl", GOOD)})
    assert response.status_code == 400 and "over the limit of 100" in response.json()["dataset"][0], response.content
    assert row_counts() == before


@pytest.mark.parametrize("url", [
    "/api/v1/datasets/?limit=100000000000000000000",
    "/api/v1/studies/api-study/comparisons/?limit=100000000000000000000&offset=2",
    "/api/v1/datasets/api-study-data/separability/?limit=100000000000000000000",
    "/api/v1/datasets/api-study-data/separability/?offset=100000000000000000000",
])
def test_a_huge_limit_or_offset_is_capped_not_a_server_error(staff_client, study, url):
    """DRF's default pagination has no ceiling: the limit reached the database's LIMIT and overflowed it
    (and the separability view's islice), a 500. Found by tests/api/test_openapi_fuzz.py."""
    response = staff_client.get(url)
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) <= 20_000


def test_an_address_under_api_that_no_route_matches_is_a_json_404(staff_client):
    """Not the site's HTML page: the schema documents 404 as `{"detail": ...}` JSON."""
    for url in ("/api/v1/studies/not a slug/", "/api/v1/nothing-here/", "/api/v2/"):
        response = staff_client.get(url)
        assert response.status_code == 404 and response["Content-Type"] == "application/json", url
        assert response.json() == {"detail": "Not found."}
    assert "text/html" in staff_client.get("/no/such/page/")["Content-Type"]


def test_studies_comparisons_and_detail(staff_client, study):
    studies = staff_client.get("/api/v1/studies/").json()
    [row] = [r for r in studies["results"] if r["slug"] == "api-study"]
    assert row["progress"]["target"] == 8 * 3 and row["progress"]["leases_out"] == 3
    assert row["systems"] == ["alpha-model", "beta-model"] and row["dataset"] == study.dataset.slug
    detail = staff_client.get("/api/v1/studies/api-study/").json()
    assert detail["agreement"]["krippendorff_alpha"]["items"] == 7
    page = staff_client.get("/api/v1/studies/api-study/comparisons/?limit=3").json()
    assert page["count"] == 8 and len(page["results"]) == 3 and page["next"]
    assert set(page["results"][0]) >= {"id", "instance_id", "system_a", "system_b", "sample_a", "sample_b"}
    filtered = staff_client.get("/api/v1/studies/api-study/comparisons/?selected=true&system=beta-model&is_gold=false")
    assert filtered.json()["count"] == 8
    assert staff_client.get("/api/v1/studies/api-study/comparisons/?min_separability=0.5").json()["count"] == 0
    assert staff_client.get("/api/v1/studies/nope/").status_code == 404
    assert staff_client.get("/api/v1/studies/nope/comparisons/").status_code == 404
    dataset = staff_client.get(f"/api/v1/datasets/{study.dataset.slug}/").json()
    assert dataset["instances"] == 4 and dataset["generations"] == 16 and dataset["studies"] == ["api-study"]


@pytest.mark.parametrize("url,field", [
    ("/api/v1/studies/api-study/comparisons/?selected=perhaps", "selected"),
    ("/api/v1/studies/api-study/comparisons/?min_separability=high", "min_separability"),
    ("/api/v1/studies/api-study/leaderboards/?method=chess", "method"),
    ("/api/v1/datasets/api-study-data/separability/?metric=nope", "metric"),
    ("/api/v1/datasets/api-study-data/separability/?system_a=alpha-model", "non_field_errors"),
])
def test_query_validation_errors(staff_client, study, url, field):
    response = staff_client.get(url)
    assert response.status_code == 400 and field in response.json(), response.content


def test_votes_json_and_csv_use_pseudonyms(staff_client, study):
    data = staff_client.get("/api/v1/studies/api-study/votes/?limit=5").json()
    assert data["count"] == 21 and len(data["results"]) == 5
    pseudonyms = set(AnnotatorProfile.objects.filter(user__username__startswith="api-study-annotator")
                     .values_list("pseudonym", flat=True))
    assert {r["annotator"] for r in data["results"]} <= pseudonyms
    first = data["results"][0]
    assert first["winner"] in ("a", "b", "tie") and first["duration_seconds"] is not None
    response = staff_client.get("/api/v1/studies/api-study/votes/?format=csv")
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 21 and {r["annotator"] for r in rows} == pseudonyms
    assert "api-study-annotator" not in text
    for row in rows:
        left_is_a = row["system_left"] == row["system_a"]
        expected = {"left": "a" if left_is_a else "b",
                    "right": "b" if left_is_a else "a"}.get(row["choice"], row["choice"])
        assert row["winner"] == expected


def test_leaderboards_from_snapshots(staff_client, study):
    from ranking.services import refresh_snapshots

    refresh_snapshots(study, rounds=10)
    data = staff_client.get("/api/v1/studies/api-study/leaderboards/").json()
    methods = {b["method"]: b for b in data["leaderboards"]}
    assert set(methods) == {"elo", "weighted_elo", "bt", "weighted_bt"}
    assert [r["system"] for r in methods["bt"]["ratings"]]
    assert methods["weighted_bt"]["ratings"] == methods["bt"]["ratings"]  # no separability yet: the weight floor
    assert {c["plain"] for c in data["comparisons"]} == {"elo", "bt"}
    only = staff_client.get("/api/v1/studies/api-study/leaderboards/?method=elo").json()
    assert [b["method"] for b in only["leaderboards"]] == ["elo"]


def test_token_for_staff_and_token_authentication(client, staff_client, study):
    response = staff_client.post("/api/v1/token/")
    assert response.status_code == 201
    key = response.json()["token"]
    assert staff_client.post("/api/v1/token/").json() == {"token": key, "created": False}
    assert client.get("/api/v1/studies/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    rotated = staff_client.post("/api/v1/token/", {"rotate": True}, content_type="application/json").json()["token"]
    assert rotated != key
    assert client.get("/api/v1/studies/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 401
    assert client.get("/api/v1/studies/", HTTP_AUTHORIZATION=f"Token {rotated}").status_code == 200
    assert staff_client.post("/api/v1/token/", {"rotate": "sometimes"},
                             content_type="application/json").status_code == 400


def test_annotator_token_is_refused_and_command_line_token_works(client, staff_user):
    from rest_framework.authtoken.models import Token

    annotator = make_account("token-annotator")
    key = Token.objects.create(user=annotator).key
    assert client.get("/api/v1/studies/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 403
    call_command("drf_create_token", staff_user.username, stdout=io.StringIO())
    staff_key = Token.objects.get(user=staff_user).key
    assert client.get("/api/v1/datasets/", HTTP_AUTHORIZATION=f"Token {staff_key}").status_code == 200


def test_schema_is_valid_openapi_in_yaml_and_json(client):
    from drf_spectacular.validation import validate_schema

    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    for path in ("/api/v1/datasets/", "/api/v1/datasets/{slug}/import/", "/api/v1/datasets/{slug}/separability/",
                 "/api/v1/studies/", "/api/v1/studies/{slug}/", "/api/v1/studies/{slug}/comparisons/",
                 "/api/v1/studies/{slug}/votes/", "/api/v1/studies/{slug}/leaderboards/", "/api/v1/token/"):
        assert path in schema["paths"], path
    upload_body = schema["paths"]["/api/v1/datasets/{slug}/import/"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload_body
    assert schema["components"]["schemas"]["ImportRequest"]["properties"]["file"]["format"] == "binary"
    for path, operations in schema["paths"].items():  # the error answers, documented (api/schema.py)
        for operation in operations.values():
            expected = {"401", "403"} | ({"404"} if "{slug}" in path else set())
            assert expected <= set(operation["responses"]), (path, sorted(operation["responses"]))
            if "{slug}" in path:
                [slug] = [p for p in operation["parameters"] if p["name"] == "slug"]
                assert slug["schema"]["pattern"] == "^[-a-zA-Z0-9_]+$"
    as_json = client.get("/api/schema/?format=json")
    validate_schema(json.loads(as_json.content))
    assert json.loads(as_json.content)["paths"].keys() == schema["paths"].keys()


def test_docs_page_uses_vendored_assets_only(client):
    html = client.get("/api/docs/").content.decode()
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html and "/api/schema/" in html
    assert "cdn" not in html.lower() and "https://" not in html
    assert "/api/v1/studies/{slug}/votes/" in html  # the server-side list for readers without JavaScript
