"""Selection policies on real data: a study opened with policy "threshold" on the separability paper's
SAMSum batch serves only units whose normalised separability is at or above the threshold.

Separability here is a real computation: `separability.services.compute_dataset_separability` over the
imported generations, run eagerly in-process, for metric ROUGE-1. ROUGE needs no language model, so the
test swaps the service's model loader for one that returns nothing (it would otherwise load MiniLM,
which the ROUGE path never uses, and spend ~20 s doing so).
"""
from pathlib import Path

import pytest
from django.core.management import call_command

from annotations import queue
from annotations.models import Comparison, Study
from annotations.selection import open_study
from tests.factories import make_annotator

pytestmark = pytest.mark.django_db
SAMSUM = Path(__file__).resolve().parents[2] / "demo/data/separability-paper/mistral-7b_vicuna-7b_samsum_pref_data.csv"


@pytest.fixture
def samsum_units(tmp_path):
    """{instance id: normalised ROUGE-1 separability} of the 50 SAMSum instances."""
    from separability.models import Alignment
    from separability.services import compute_dataset_separability

    with open(tmp_path / "out", "w") as out:
        call_command("import_pairwise_csv", str(SAMSUM), "--dataset", "samsum-sel", "--study", "samsum-history",
                     "--systems", "mistral-7b,vicuna-7b", stdout=out, stderr=out)
    run = compute_dataset_separability("samsum-sel", metrics=["rouge1"])
    assert run.status == "done", run.errors
    values = dict(Alignment.objects.filter(instance__dataset__slug="samsum-sel", metric="rouge1")
                  .values_list("instance_id", "normalised"))
    assert len(values) == 50 and all(v is not None for v in values.values())
    return values


def new_study(slug, **fields):
    history = Study.objects.get(slug="samsum-history")
    study = Study.objects.create(slug=slug, name=slug, dataset=history.dataset, policy_metric="rouge1",
                                 votes_per_comparison=1, quota=0, too_fast_seconds=0, **fields)
    study.systems.set(history.systems.all())
    return study


def test_threshold_study_serves_only_units_at_or_above_the_threshold(samsum_units):
    threshold = sorted(samsum_units.values())[len(samsum_units) * 2 // 3]  # keeps about the top third
    above = {instance for instance, value in samsum_units.items() if value >= threshold}
    assert 0 < len(above) < 50
    study = new_study("sel-threshold", policy=Study.Policy.THRESHOLD, threshold=threshold)
    open_study(study)
    study.refresh_from_db()
    assert set(Comparison.objects.filter(study=study, selected=True).values_list("instance_id", flat=True)) == above
    assert f"threshold {threshold}" in study.selection_summary
    assert f"chose {len(above)} of 50 units" in study.selection_summary
    user = make_annotator()
    served = []
    while (assignment := queue.next_assignment(study, user)) is not None:
        queue.submit_vote(study, user, assignment.token, "left")
        served.append(assignment.comparison)
    assert {c.instance_id for c in served} == above
    assert all(c.separability >= threshold for c in served)
    priorities = [c.priority for c in served]
    assert priorities == sorted(priorities, reverse=True)  # higher separability is served first

    # the same data under "top fraction": the most separable quarter, nothing below its cut-off
    top = new_study("sel-top", policy=Study.Policy.TOP_FRACTION, top_fraction=0.25)
    open_study(top)
    chosen = set(Comparison.objects.filter(study=top, selected=True).values_list("instance_id", flat=True))
    assert len(chosen) == round(0.25 * 50)
    cutoff = min(samsum_units[i] for i in chosen)
    assert all(samsum_units[i] <= cutoff for i in set(samsum_units) - chosen)


def test_identical_or_empty_pairs_are_never_served():
    """PandaLM's demo compared identical texts 95 times: nothing for a human to judge."""
    from annotations.models import Comparison
    from tests.factories import make_study

    study = make_study(slug="same-texts", n_instances=3,
                       texts=lambda i, system, s: "Same answer." if i == 0 else f"{system.name} answer {i}")
    identical = Comparison.objects.get(study=study, instance__external_id="x0")
    assert not identical.selected
    assert Comparison.objects.filter(study=study, selected=True).count() == 2
    assert "1 of them not served (identical or empty texts)" in study.selection_summary
