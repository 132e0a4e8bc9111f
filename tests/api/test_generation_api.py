"""The generation API (issue 15): model endpoints (validated by the same form as the admin and the staff
pages; a key is never accepted nor shown, only the name of its variable) and generation runs, started
against a real OpenAI-compatible server (`transformers serve`), followed and cancelled."""
from __future__ import annotations

import json

import pytest

from annotations.models import Generation, System
from generation import services
from generation.models import GenerationFailure, GenerationRun, ModelEndpoint
from tests.factories import make_account, make_endpoint, make_prompt_dataset

pytestmark = pytest.mark.django_db

KEY_VARIABLE = "SEPEVAL_TEST_API_KEY"
KEY_VALUE = "sk-test-4f9c1d2e7a6b5c3d"  # stands for a real key: it must never come back


@pytest.fixture
def inline(monkeypatch):
    """Chunks run inline in the request (a background thread cannot see the test's data)."""
    monkeypatch.setattr(services, "BACKGROUND_WHEN_EAGER", False)


def post(client, url, data):
    return client.post(url, json.dumps(data), content_type="application/json")


def patch(client, url, data):
    return client.patch(url, json.dumps(data), content_type="application/json")


def counts():
    return (ModelEndpoint.objects.count(), System.objects.count(), GenerationRun.objects.count(),
            Generation.objects.count())


GOOD_ENDPOINT = {"name": "vllm-llama", "system": "llama-8b", "base_url": "http://127.0.0.1:8000/v1",
                 "model": "meta-llama/Llama-3.1-8B-Instruct", "api_key_env": KEY_VARIABLE}


def test_an_endpoint_is_created_listed_changed_and_deleted(staff_client):
    response = post(staff_client, "/api/v1/endpoints/", GOOD_ENDPOINT)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["system"] == "llama-8b" and body["kind"] == "openai" and body["mode"] == "chat"
    assert body["max_concurrency"] == 4 and body["timeout_seconds"] == 120.0  # the model's defaults
    assert body["api_key_env"] == KEY_VARIABLE and body["url"] == "/api/v1/endpoints/vllm-llama/"
    endpoint = ModelEndpoint.objects.get(name="vllm-llama")
    assert endpoint.system.name == "llama-8b" and endpoint.base_url == GOOD_ENDPOINT["base_url"]

    listed = staff_client.get("/api/v1/endpoints/").json()
    assert [e["name"] for e in listed["results"]] == ["vllm-llama"] and listed["count"] == 1
    assert staff_client.get("/api/v1/endpoints/vllm-llama/").json() == body

    changed = patch(staff_client, "/api/v1/endpoints/vllm-llama/",
                    {"max_concurrency": 2, "requests_per_minute": 60, "system": "llama-8b-v2"})
    assert changed.status_code == 200, changed.content
    assert changed.json()["max_concurrency"] == 2 and changed.json()["system"] == "llama-8b-v2"
    endpoint.refresh_from_db()
    assert (endpoint.max_concurrency, endpoint.requests_per_minute, endpoint.system.name) == (2, 60, "llama-8b-v2")
    assert endpoint.base_url == GOOD_ENDPOINT["base_url"] and endpoint.api_key_env == KEY_VARIABLE  # untouched

    assert staff_client.delete("/api/v1/endpoints/vllm-llama/").status_code == 204
    assert not ModelEndpoint.objects.exists()
    assert System.objects.filter(name="llama-8b-v2").exists()  # the system (and its samples) stay
    assert staff_client.get("/api/v1/endpoints/vllm-llama/").status_code == 404


@pytest.mark.parametrize("change,field,words", [
    ({"base_url": ""}, "base_url", "needs its base URL"),
    ({"kind": "local"}, "base_url", "A local model has no URL"),
    ({"api_key": KEY_VALUE}, "api_key", "give api_key_env"),
    ({"api_key_env": KEY_VALUE}, "api_key_env", "not the key itself"),
    ({"kind": "azure"}, "kind", "Unknown kind 'azure'; choose from openai, local"),
    ({"mode": "embeddings"}, "mode", "Unknown mode"),
    ({"name": "not a slug"}, "name", "slug"),
    ({"base_url": "not a url"}, "base_url", "valid URL"),
    ({"model": ""}, "model", "required"),
    ({"max_concurrency": 0}, "max_concurrency", "greater than or equal to 1"),
    ({"max_retries": 99}, "max_retries", "less than or equal to 20"),
    ({"timeout_seconds": "soon"}, "timeout_seconds", "number"),
    ({"requests_per_minute": -1}, "requests_per_minute", "greater than or equal to 0"),
])
def test_a_bad_endpoint_is_a_400_naming_the_field_and_writes_nothing(staff_client, change, field, words):
    before = counts()
    response = post(staff_client, "/api/v1/endpoints/", {**GOOD_ENDPOINT, **change})
    assert response.status_code == 400, response.content
    errors = response.json()
    assert field in errors and words in " ".join(errors[field]), errors
    assert KEY_VALUE not in response.content.decode()
    assert counts() == before


def test_an_endpoint_name_or_system_already_taken_is_refused(staff_client):
    make_endpoint("taken", "http://127.0.0.1:8000/v1", "m", system_name="busy-system")
    before = counts()
    same_name = post(staff_client, "/api/v1/endpoints/", {**GOOD_ENDPOINT, "name": "taken"})
    assert same_name.status_code == 400 and "already exists" in same_name.json()["name"][0]
    same_system = post(staff_client, "/api/v1/endpoints/", {**GOOD_ENDPOINT, "system": "busy-system"})
    assert same_system.status_code == 400
    assert same_system.json()["system"] == ["System 'busy-system' already has the endpoint 'taken'."]
    assert counts() == before


def test_a_bad_change_is_a_400_and_changes_nothing(staff_client):
    endpoint = make_endpoint("steady", "http://127.0.0.1:8000/v1", "m", api_key_env=KEY_VARIABLE)
    stored = ModelEndpoint.objects.filter(pk=endpoint.pk).values().get()
    for change, field in (({"kind": "local"}, "base_url"), ({"api_key": KEY_VALUE}, "api_key"),
                          ({"max_concurrency": 1000}, "max_concurrency"), ({"name": ""}, "name")):
        response = patch(staff_client, "/api/v1/endpoints/steady/", change)
        assert response.status_code == 400 and field in response.json(), (change, response.content)
    assert ModelEndpoint.objects.filter(pk=endpoint.pk).values().get() == stored
    assert patch(staff_client, "/api/v1/endpoints/nope/", {"max_retries": 1}).status_code == 404


def test_an_endpoint_an_unfinished_run_samples_from_cannot_be_deleted(staff_client):
    endpoint = make_endpoint("in-use", "http://127.0.0.1:8000/v1", "m")
    run = GenerationRun.objects.create(dataset=make_prompt_dataset(), status=GenerationRun.Status.RUNNING, total=3)
    run.systems.set([endpoint.system])
    response = staff_client.delete("/api/v1/endpoints/in-use/")
    assert response.status_code == 409
    assert response.json()["error"].startswith(f"Generation run {run.pk} (running) samples from endpoint in-use")
    assert ModelEndpoint.objects.filter(name="in-use").exists()
    GenerationRun.objects.filter(pk=run.pk).update(status=GenerationRun.Status.CANCELLED)
    assert staff_client.delete("/api/v1/endpoints/in-use/").status_code == 204


@pytest.mark.django_db(transaction=True)
def test_a_run_started_through_the_api_fills_every_sample_and_no_key_is_ever_shown(
        staff_client, model_server, inline, monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, KEY_VALUE)  # `transformers serve` takes any bearer token
    dataset = make_prompt_dataset(n_instances=2)
    answers = []
    for name in ("tiny-one", "tiny-two"):
        created = post(staff_client, "/api/v1/endpoints/", {
            "name": name, "system": name, "model": model_server.model_dir, "base_url": model_server.base_url,
            "max_retries": 1, "api_key_env": KEY_VARIABLE})
        assert created.status_code == 201, created.content
        answers.append(created)

    started = post(staff_client, "/api/v1/generation-runs/", {
        "dataset": dataset.slug, "systems": ["tiny-one", "tiny-two"], "k": 2, "max_tokens": 6,
        "system_prompt": "Answer briefly.", "prompt_template": "Q: $input"})
    assert started.status_code == 201, started.content
    run = started.json()
    assert run["dataset"] == dataset.slug and run["systems"] == ["tiny-one", "tiny-two"] and run["k"] == 2
    assert run["chain_separability"] is True and run["url"] == f"/api/v1/generation-runs/{run['id']}/"

    detail = staff_client.get(run["url"])
    shown = detail.json()
    assert shown["status"] == "done", (shown["error"], shown["failures"], shown["blocked"])
    assert shown["done"] == shown["total"] == 8 and shown["existing"] == 0 and shown["failed"] == 0
    assert shown["percent"] == 100 and shown["chunks_done"] == shown["chunks_total"] >= 2
    assert shown["failures"] == [] and shown["blocked"] == {} and shown["error"] == ""
    # `transformers serve` reports no usage in its streams: the run says so instead of counting 0 tokens
    assert (shown["tokens_out"] > 0) == (shown["usage_missing"] == 0) and shown["usage_missing"] in (0, 8)
    assert set(shown["report"]) == {"tiny-one", "tiny-two"}
    assert all(figures["missing"] == 0 and figures["empty"] == 0 for figures in shown["report"].values())
    assert shown["separability_run"]["status"] == "done"
    assert Generation.objects.filter(instance__dataset=dataset).count() == 8

    listed = staff_client.get(f"/api/v1/generation-runs/?dataset={dataset.slug}&status=done")
    assert [r["id"] for r in listed.json()["results"]] == [run["id"]]
    assert staff_client.get("/api/v1/generation-runs/?status=queued").json()["count"] == 0
    finished = post(staff_client, f"{run['url']}cancel/", {})
    assert finished.status_code == 409 and "already finished (done)" in finished.json()["error"]

    every = [*answers, started, detail, listed, finished, staff_client.get("/api/v1/endpoints/"),
             staff_client.get("/api/v1/endpoints/tiny-one/"), staff_client.get("/api/v1/generation-runs/")]
    assert all(KEY_VALUE not in response.content.decode() for response in every)
    assert all(KEY_VARIABLE in response.content.decode() for response in every[:2])  # the name is shown


def test_a_run_that_cannot_start_is_a_400_with_the_reason_and_writes_nothing(staff_client, monkeypatch):
    monkeypatch.delenv("SEPEVAL_TEST_NO_SUCH_KEY", raising=False)
    dataset = make_prompt_dataset(n_instances=2)
    make_endpoint("keyed", "http://127.0.0.1:9/v1", "m", api_key_env="SEPEVAL_TEST_NO_SUCH_KEY")
    before = counts()
    response = post(staff_client, "/api/v1/generation-runs/", {"dataset": dataset.slug, "systems": ["keyed"]})
    assert response.status_code == 400
    assert response.json() == {"error": "endpoint keyed: the environment variable SEPEVAL_TEST_NO_SUCH_KEY that "
                                        "should hold its API key is not set (or empty) in the worker's environment"}
    assert counts() == before


@pytest.mark.parametrize("change,field,words", [
    ({"dataset": "no-such-data"}, "dataset", "valid choice"),
    ({"systems": ["without-endpoint"]}, "systems", "without-endpoint is not one of the available choices"),
    ({"systems": []}, "systems", "required"),
    ({"k": 0}, "k", "greater than or equal to 1"),
    ({"top_p": 0}, "top_p", "above 0"),
    ({"temperature": 3}, "temperature", "less than or equal to 2"),
    ({"seed_policy": "random"}, "seed_policy", "Unknown seed policy"),
    ({"prompt_template": "$nothing"}, "prompt_template", "$nothing"),
    ({"max_tokens": "many"}, "max_tokens", "valid integer"),
])
def test_a_bad_run_is_a_400_naming_the_field_and_writes_nothing(staff_client, change, field, words):
    dataset = make_prompt_dataset(n_instances=1)
    make_endpoint("ready", "http://127.0.0.1:9/v1", "m")
    System.objects.create(name="without-endpoint")
    before = counts()
    response = post(staff_client, "/api/v1/generation-runs/", {"dataset": dataset.slug, "systems": ["ready"], **change})
    assert response.status_code == 400, response.content
    assert field in response.json() and words in " ".join(response.json()[field]), response.json()
    assert counts() == before


def test_bodies_are_json_only(staff_client):
    """A form-encoded list of names longer than Django's field limit was an HTML 400 before any check."""
    make_endpoint("ready", "http://127.0.0.1:9/v1", "m")
    before = counts()
    for url, data in (("/api/v1/endpoints/", GOOD_ENDPOINT),
                      ("/api/v1/generation-runs/", {"dataset": "d", "systems": ["ready"] * 1200})):
        response = staff_client.post(url, data)
        assert response.status_code == 415, url
        assert response.json()["detail"].startswith('Unsupported media type "multipart/form-data'), url
    assert patch(staff_client, "/api/v1/endpoints/ready/", {"max_retries": 2}).status_code == 200
    assert staff_client.patch("/api/v1/endpoints/ready/", "max_retries=3",
                              content_type="application/x-www-form-urlencoded").status_code == 415
    assert counts() == before and ModelEndpoint.objects.get().max_retries == 2


def test_cancel_stops_an_unfinished_run_and_a_finished_one_is_a_409(staff_client):
    dataset = make_prompt_dataset(n_instances=2)
    endpoint = make_endpoint("slow", "http://127.0.0.1:9/v1", "m")
    run, _chunks = services.start_run(dataset, [endpoint.system], services.RunSettings(k=2))  # queued, not launched
    response = post(staff_client, f"/api/v1/generation-runs/{run.pk}/cancel/", {})
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert response.json()["report"]["slow"]["missing"] == 4
    again = post(staff_client, f"/api/v1/generation-runs/{run.pk}/cancel/", {})
    assert again.status_code == 409
    assert again.json() == {"error": f"Generation run {run.pk} had already finished (cancelled): there is nothing "
                                     f"to cancel."}
    assert post(staff_client, "/api/v1/generation-runs/999999/cancel/", {}).status_code == 404


def test_failures_blocked_systems_and_errors_are_shown_by_kind_with_any_key_value_blotted_out(staff_client,
                                                                                              monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, KEY_VALUE)
    dataset = make_prompt_dataset(n_instances=2)
    endpoint = make_endpoint("quoting", "http://127.0.0.1:9/v1", "m", api_key_env=KEY_VARIABLE)
    run, _chunks = services.start_run(dataset, [endpoint.system], services.RunSettings(k=1))
    refused = f"endpoint quoting: the server refused the key in {KEY_VARIABLE} (HTTP 401: bad key {KEY_VALUE})"
    services.block_system(run.pk, 0, endpoint.system_id, services.EndpointError("auth", refused))
    GenerationFailure.objects.create(run=run, chunk_index=0, system=endpoint.system,
                                     instance=dataset.instances.first(), sample_index=0, kind="timeout",
                                     message="endpoint quoting: no answer within 60 s")
    GenerationRun.objects.filter(pk=run.pk).update(error=f"all blocked: {KEY_VALUE}")
    response = staff_client.get(f"/api/v1/generation-runs/{run.pk}/")
    body = response.json()
    assert KEY_VALUE not in response.content.decode()
    assert body["blocked"] == {"quoting": refused.replace(KEY_VALUE, "[redacted]")}
    assert body["error"] == "all blocked: [redacted]"
    assert body["failures"] == [{"kind": "auth", "n": 1, "example": refused.replace(KEY_VALUE, "[redacted]")},
                                {"kind": "timeout", "n": 1, "example": "endpoint quoting: no answer within 60 s"}]
    assert body["separability_run"] is None


def test_only_staff_reach_the_generation_api(client):
    from rest_framework.authtoken.models import Token

    endpoint = make_endpoint("guarded", "http://127.0.0.1:9/v1", "m")
    run = GenerationRun.objects.create(dataset=make_prompt_dataset(), total=3)
    key = Token.objects.create(user=make_account("generation-annotator")).key
    before = counts()
    named = f"/api/v1/endpoints/{endpoint.name}/"
    for method, url in (("get", "/api/v1/endpoints/"), ("post", "/api/v1/endpoints/"), ("get", named),
                        ("patch", named), ("delete", named), ("get", "/api/v1/generation-runs/"),
                        ("post", "/api/v1/generation-runs/"), ("get", f"/api/v1/generation-runs/{run.pk}/"),
                        ("post", f"/api/v1/generation-runs/{run.pk}/cancel/")):
        call = getattr(client, method)
        assert call(url, HTTP_AUTHORIZATION=f"Token {key}").status_code == 403, (method, url)
        assert call(url).status_code == 401, (method, url)
    assert counts() == before and GenerationRun.objects.get().status == GenerationRun.Status.QUEUED


def test_the_generation_api_is_listed_and_in_the_schema(staff_client, client):
    import yaml

    root = staff_client.get("/api/v1/").json()
    assert root["endpoints"] == "/api/v1/endpoints/" and root["generation_runs"] == "/api/v1/generation-runs/"
    schema = yaml.safe_load(client.get("/api/schema/").content)
    paths = schema["paths"]
    assert set(paths["/api/v1/endpoints/"]) == {"get", "post"}
    assert set(paths["/api/v1/endpoints/{name}/"]) == {"get", "patch", "delete"}
    assert set(paths["/api/v1/generation-runs/"]) == {"get", "post"}
    assert set(paths["/api/v1/generation-runs/{id}/"]) == {"get"}
    assert "409" in paths["/api/v1/generation-runs/{id}/cancel/"]["post"]["responses"]
    request = schema["components"]["schemas"]["EndpointInputRequest"]["properties"]
    assert "api_key_env" in request and "api_key" not in request
    assert "api_key" not in schema["components"]["schemas"]["Endpoint"]["properties"]
