"""The generation staff pages: a run started from the form against a real `transformers serve` completes,
bad forms and runs that cannot start write nothing, cancelling, the polled progress fragment, endpoint
forms (and no key value ever on a page), and who may open them."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from annotations.models import Generation, System
from generation import services
from generation.models import GenerationFailure, GenerationRun, ModelEndpoint
from separability.models import SeparabilityRun
from tests.factories import make_endpoint, make_prompt_dataset


@pytest.fixture(autouse=True)
def inline(monkeypatch):
    monkeypatch.setattr(services, "BACKGROUND_WHEN_EAGER", False)


def run_form(dataset, *systems, **fields):
    data = {"dataset": dataset.slug, "systems": list(systems), "k": 2, "temperature": 1.0, "top_p": 1.0,
            "max_tokens": 6, "seed_policy": "per_sample", "seed": 0, "system_prompt": "",
            "prompt_template": "$input"}
    data.update(fields)
    return data


def counts():
    return (GenerationRun.objects.count(), Generation.objects.count(), GenerationFailure.objects.count())


@pytest.mark.django_db(transaction=True)
def test_staff_start_a_run_from_the_form_and_it_completes(model_server, staff_client):
    dataset = make_prompt_dataset("view-prompts", n_instances=2)
    make_endpoint("tiny-view", model_server.base_url, model_server.model_dir)
    page = staff_client.get("/generation/new/").content.decode()
    assert 'value="tiny-view"' in page and 'value="view-prompts"' in page
    response = staff_client.post("/generation/new/", run_form(dataset, "tiny-view"))
    run = GenerationRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/generation/runs/{run.pk}/"
    assert run.status == GenerationRun.Status.DONE, (run.error, list(run.failures.values("kind", "message")))
    assert run.done == run.total == 4 and Generation.objects.filter(instance__dataset=dataset).count() == 4
    assert run.created_by.is_staff and run.chain_separability is False  # an unticked box is False
    page = staff_client.get(response["Location"]).content.decode()
    assert "Done" in page and "4 / 4" in page and "hx-trigger" not in page and 'id="cancel-run"' not in page
    assert 'id="report"' in page and "<td>tiny-view</td>" in page and 'id="report-clean"' in page
    listing = staff_client.get("/generation/").content.decode()
    assert f'href="/generation/runs/{run.pk}/"' in listing and "view-prompts" in listing and "tiny-view" in listing


@pytest.mark.django_db
@pytest.mark.parametrize("change,message", [
    ({"systems": []}, "This field is required."),
    ({"prompt_template": "$nope"}, "unknown placeholder $nope"),
    ({"k": 0}, "greater than or equal to 1"),
])
def test_a_bad_form_shows_the_message_and_writes_nothing(staff_client, change, message):
    dataset = make_prompt_dataset("bad-form", n_instances=1)
    make_endpoint("tiny-bad", "http://127.0.0.1:9/v1", "tiny")
    before = counts()
    response = staff_client.post("/generation/new/", run_form(dataset, "tiny-bad", **change))
    assert response.status_code == 200 and message in response.content.decode()
    assert counts() == before


@pytest.mark.django_db
def test_a_run_that_cannot_start_shows_why_and_writes_no_run(staff_client, monkeypatch):
    monkeypatch.delenv("SEPEVAL_VIEW_NO_SUCH_KEY", raising=False)
    dataset = make_prompt_dataset("keyless", n_instances=2)
    make_endpoint("keyed-view", "http://127.0.0.1:9/v1", "tiny", api_key_env="SEPEVAL_VIEW_NO_SUCH_KEY")
    response = staff_client.post("/generation/new/", run_form(dataset, "keyed-view"))
    html = response.content.decode()
    assert response.status_code == 200 and 'id="run-form-error"' in html
    assert "SEPEVAL_VIEW_NO_SUCH_KEY that should hold its API key is not set" in html
    assert "Nothing was written" in html and counts() == (0, 0, 0)


@pytest.mark.django_db
def test_cancel_stops_a_run_and_a_finished_run_is_refused_politely(staff_client):
    dataset = make_prompt_dataset("cancel-me", n_instances=1)
    run = GenerationRun.objects.create(dataset=dataset, total=2, status=GenerationRun.Status.RUNNING)
    page = staff_client.get(f"/generation/runs/{run.pk}/").content.decode()
    assert 'id="cancel-run"' in page and 'hx-trigger="every 2s"' in page
    response = staff_client.post(f"/generation/runs/{run.pk}/cancel/", follow=True)
    run.refresh_from_db()
    assert run.status == GenerationRun.Status.CANCELLED and run.finished_at is not None
    html = response.content.decode()
    assert f"Run {run.pk} cancelled" in html and 'id="cancel-run"' not in html and "hx-trigger" not in html
    again = staff_client.post(f"/generation/runs/{run.pk}/cancel/", follow=True).content.decode()
    assert "had already finished (cancelled): there is nothing to cancel" in again
    assert GenerationRun.objects.get(pk=run.pk).status == GenerationRun.Status.CANCELLED
    assert staff_client.get(f"/generation/runs/{run.pk}/cancel/").status_code == 405


@pytest.mark.django_db
def test_the_progress_fragment_polls_while_running_then_shows_the_outcome(staff_client):
    dataset = make_prompt_dataset("fragment", n_instances=2)
    alpha = System.objects.create(name="alpha-sys")
    run = GenerationRun.objects.create(dataset=dataset, total=4, done=1, existing=0, usage_missing=1,
                                       status=GenerationRun.Status.RUNNING, chunks_total=2,
                                       blocked={str(alpha.pk): "endpoint a: wrong model name 'x'"})
    run.systems.set([alpha])
    GenerationFailure.objects.create(run=run, chunk_index=0, system=alpha, kind="timeout", sample_index=0,
                                     instance=dataset.instances.first(), message="endpoint a: timed out after 5 s")
    url = f"/generation/runs/{run.pk}/progress/"
    html = staff_client.get(url).content.decode()
    assert 'hx-trigger="every 2s"' in html and f'hx-get="{url}"' in html and "1 / 4" in html
    assert "not reported by the server" in html
    assert "alpha-sys</strong>: endpoint a: wrong model name" in html
    assert "<code>timeout</code>" in html and "timed out after 5 s" in html
    separability = SeparabilityRun.objects.create(dataset=dataset, total=2, done=2, status="done")
    GenerationRun.objects.filter(pk=run.pk).update(
        status=GenerationRun.Status.INCOMPLETE, done=3, tokens_in=30, tokens_out=12, usage_missing=0,
        separability_run=separability, chain_separability=True,
        report={"alpha-sys": {"identical": 1, "identical_examples": ["p1"], "empty": 0, "missing": 1}})
    html = staff_client.get(url).content.decode()
    assert "hx-trigger" not in html and "Finished with failures" in html and "30 / 12" in html
    assert "<code>p1</code>" in html and "make separability meaningless" in html
    assert f"Separability run {separability.pk}: <strong>Done</strong>" in html
    assert reverse("dashboard:separability", args=[dataset.slug]) in html
    assert staff_client.get("/generation/runs/999999/progress/").status_code == 404


@pytest.mark.django_db
def test_a_finished_run_keeps_polling_until_its_separability_is_linked(staff_client):
    dataset = make_prompt_dataset("chain", n_instances=1)
    run = GenerationRun.objects.create(dataset=dataset, total=1, done=1, status=GenerationRun.Status.DONE,
                                       chain_separability=True)
    html = staff_client.get(f"/generation/runs/{run.pk}/progress/").content.decode()
    assert 'hx-trigger="every 2s"' in html and "is being queued" in html
    GenerationRun.objects.filter(pk=run.pk).update(error="separability could not start: no metric")
    html = staff_client.get(f"/generation/runs/{run.pk}/progress/").content.decode()
    assert "hx-trigger" not in html and "separability could not start: no metric" in html


@pytest.mark.django_db
def test_endpoint_create_and_edit_validate(staff_client):
    refused = staff_client.post("/generation/endpoints/new/", {
        "name": "no-url", "kind": "openai", "base_url": "", "model": "m", "mode": "chat", "api_key_env": "",
        "max_concurrency": 2, "requests_per_minute": 0, "tokens_per_minute": 0, "timeout_seconds": 30,
        "max_retries": 1, "system_name": "no-url-sys"})
    assert refused.status_code == 200 and "needs its base URL" in refused.content.decode()
    assert not ModelEndpoint.objects.exists() and not System.objects.filter(name="no-url-sys").exists()
    fields = {"name": "served", "kind": "openai", "base_url": "http://127.0.0.1:8000/v1", "model": "m",
              "mode": "chat", "api_key_env": "SERVED_KEY", "max_concurrency": 2, "requests_per_minute": 0,
              "tokens_per_minute": 0, "timeout_seconds": 30, "max_retries": 1, "system_name": "served-sys"}
    created = staff_client.post("/generation/endpoints/new/", fields)
    assert created.status_code == 302 and created["Location"] == "/generation/endpoints/#endpoint-served"
    endpoint = ModelEndpoint.objects.get(name="served")
    assert endpoint.system.name == "served-sys" and endpoint.api_key_env == "SERVED_KEY"
    bad_key = staff_client.post("/generation/endpoints/served/edit/", {**fields, "api_key_env": "sk-live 123"})
    assert bad_key.status_code == 200 and "not the key itself" in bad_key.content.decode()
    edited = staff_client.post("/generation/endpoints/served/edit/", {**fields, "max_concurrency": 7})
    assert edited.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.max_concurrency == 7 and endpoint.api_key_env == "SERVED_KEY"
    assert staff_client.get("/generation/endpoints/nope/edit/").status_code == 404


@pytest.mark.django_db
def test_the_endpoint_list_names_the_key_variable_never_its_value(staff_client, monkeypatch):
    monkeypatch.setenv("SEPEVAL_VIEW_SECRET_KEY", "sk-very-secret-value-42")
    make_endpoint("hosted", "https://api.example.com/v1", "gpt-x", api_key_env="SEPEVAL_VIEW_SECRET_KEY")
    for path in ("/generation/endpoints/", "/generation/endpoints/hosted/edit/"):
        html = staff_client.get(path).content.decode()
        assert "SEPEVAL_VIEW_SECRET_KEY" in html and "sk-very-secret-value-42" not in html
        assert "environment variable of the workers" in html


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/generation/", "/generation/new/", "/generation/endpoints/",
                                  "/generation/endpoints/new/"])
def test_non_staff_are_sent_to_login_or_refused(annotator_client, path):
    anonymous = Client().get(path)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert annotator_client.get(path).status_code == 403


@pytest.mark.django_db
def test_an_annotator_cannot_start_or_cancel_a_run(annotator_client):
    dataset = make_prompt_dataset("guarded", n_instances=1)
    make_endpoint("tiny-guard", "http://127.0.0.1:9/v1", "tiny")
    run = GenerationRun.objects.create(dataset=dataset, total=1, status=GenerationRun.Status.RUNNING)
    assert annotator_client.post("/generation/new/", run_form(dataset, "tiny-guard")).status_code == 403
    assert annotator_client.post(f"/generation/runs/{run.pk}/cancel/").status_code == 403
    assert GenerationRun.objects.get().status == GenerationRun.Status.RUNNING
