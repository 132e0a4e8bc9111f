"""`generate` against a real OpenAI-compatible server (`transformers serve` with a tiny random model):
every (instance, system, sample) is filled exactly once, with provenance, and separability follows."""
from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from annotations.models import Generation
from generation import services
from generation.models import GenerationRun, SampleProvenance
from separability.models import Alignment, SeparabilityRun
from tests.factories import make_endpoint, make_prompt_dataset

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def inline(monkeypatch):
    monkeypatch.setattr(services, "BACKGROUND_WHEN_EAGER", False)


def two_endpoints(server, **fields):
    return [make_endpoint(name, server.base_url, server.model_dir, **fields) for name in ("tiny-one", "tiny-two")]


def run_generate(*args):
    call_command("generate", *args)
    return GenerationRun.objects.order_by("-id").first()


def test_generate_fills_every_sample_once_then_separability_exists(model_server, capsys):
    dataset = make_prompt_dataset(n_instances=3)
    two_endpoints(model_server)
    run = run_generate("--dataset", dataset.slug, "--systems", "tiny-one,tiny-two", "--k", "3",
                       "--max-tokens", "8", "--wait")
    assert run.status == GenerationRun.Status.DONE, (run.error, list(run.failures.values("kind", "message")))
    keys = list(Generation.objects.filter(instance__dataset=dataset).values_list("instance__external_id",
                                                                                 "system__name", "sample_index"))
    assert sorted(keys) == sorted((f"p{i}", s, k) for i in range(3) for s in ("tiny-one", "tiny-two")
                                  for k in range(3))
    assert run.done == run.total == 18 and run.failed == 0
    provenance = SampleProvenance.objects.filter(run=run)
    assert provenance.count() == 18
    first = provenance.select_related("generation").first()
    assert first.request["model"] == str(model_server.model_dir) and first.request["max_tokens"] == 8
    assert first.request["messages"][-1]["content"].startswith("Write a line about the number")
    assert first.request["seed"] == first.generation.sample_index  # per-sample seeds: seed 0 + index
    assert first.latency_ms > 0 and first.finish_reason
    # seeds differ per sample, so the k samples of an instance differ (the report counts none identical)
    assert all(figures["identical"] == 0 and figures["missing"] == 0 for figures in run.report.values())
    assert run.separability_run is not None
    assert SeparabilityRun.objects.get(pk=run.separability_run_id).status == SeparabilityRun.Status.DONE
    assert Alignment.objects.filter(instance__dataset=dataset, metric="bertscore").count() == 3
    out = capsys.readouterr().out
    assert "18/18 samples stored" in out and "separability run" in out

    # A second run finds everything stored: it asks for nothing and duplicates nothing.
    again = run_generate("--dataset", dataset.slug, "--systems", "tiny-one,tiny-two", "--k", "3",
                         "--no-separability", "--wait")
    assert again.existing == 18 and again.chunks_total == 0 and again.status == GenerationRun.Status.DONE
    assert Generation.objects.filter(instance__dataset=dataset).count() == 18


def test_a_larger_k_asks_only_for_the_new_samples(model_server):
    dataset = make_prompt_dataset(n_instances=2)
    two_endpoints(model_server)
    run_generate("--dataset", dataset.slug, "--systems", "tiny-one", "--k", "2", "--max-tokens", "4",
                 "--no-separability", "--wait")
    before = dict(Generation.objects.filter(instance__dataset=dataset).values_list("id", "text"))
    run = run_generate("--dataset", dataset.slug, "--systems", "tiny-one", "--k", "3", "--max-tokens", "4",
                       "--no-separability", "--wait")
    assert run.existing == 4 and run.done == 6 and SampleProvenance.objects.filter(run=run).count() == 2
    after = dict(Generation.objects.filter(instance__dataset=dataset).values_list("id", "text"))
    assert {k: v for k, v in after.items() if k in before} == before  # stored samples untouched


def test_a_fixed_seed_gives_identical_samples_and_the_report_says_so(model_server):
    dataset = make_prompt_dataset(n_instances=2)
    # One request at a time: `transformers serve` seeds torch's global generator per request, so requests
    # in flight together would draw from each other's seeds.
    two_endpoints(model_server, max_concurrency=1)
    run = run_generate("--dataset", dataset.slug, "--systems", "tiny-one", "--k", "3", "--max-tokens", "6",
                       "--temperature", "1.0", "--seed-policy", "fixed", "--seed", "7", "--no-separability",
                       "--wait")
    assert run.report["tiny-one"]["identical"] == 2
    assert run.report["tiny-one"]["identical_examples"] == ["p0", "p1"]


def test_a_missing_api_key_variable_stops_the_run_before_anything_is_written(model_server, monkeypatch):
    monkeypatch.delenv("SEPEVAL_TEST_NO_SUCH_KEY", raising=False)
    dataset = make_prompt_dataset(n_instances=2)
    make_endpoint("keyed", model_server.base_url, model_server.model_dir, api_key_env="SEPEVAL_TEST_NO_SUCH_KEY")
    with pytest.raises(CommandError, match="SEPEVAL_TEST_NO_SUCH_KEY that should hold its API key is not set"):
        call_command("generate", "--dataset", dataset.slug, "--systems", "keyed", "--k", "2", "--wait")
    assert not GenerationRun.objects.exists() and not Generation.objects.exists()


def test_a_system_without_an_endpoint_is_refused_by_name(model_server):
    dataset = make_prompt_dataset(n_instances=1)
    two_endpoints(model_server)
    from annotations.models import System

    System.objects.create(name="no-endpoint")
    with pytest.raises(CommandError, match="no endpoint for system 'no-endpoint'"):
        call_command("generate", "--dataset", dataset.slug, "--systems", "tiny-one,no-endpoint", "--wait")
    assert not GenerationRun.objects.exists()
