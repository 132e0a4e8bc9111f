"""The separability page counts its histogram, units and undefined reasons in the database
(dashboard.queries.separability_overview): the counts must be those of numpy's histogram over the same
values (dashboard.agreement.histogram), for all pairs and for one pair, with a threshold mark outside the
values, and with undefined and single-sample units among them."""
import random

import pytest

from annotations.models import Dataset, Instance, Study, System
from dashboard import agreement, queries
from separability.models import Alignment

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset():
    rng = random.Random(7)
    dataset = Dataset.objects.create(slug="hist-data", name="hist")
    systems = [System.objects.get_or_create(name=f"hist-{n}")[0] for n in range(3)]
    instances = Instance.objects.bulk_create([Instance(dataset=dataset, external_id=f"h{i}", input=f"in {i}")
                                              for i in range(120)])
    rows = []
    for instance in instances:
        for a, b in ((0, 1), (0, 2), (1, 2)):
            draw = rng.random()
            if draw < 0.08:
                rows.append(Alignment(instance=instance, system_a=systems[a], system_b=systems[b], metric="bertscore",
                                      k_a=1, k_b=2, undefined_reason="system has 1 sample"))
            elif draw < 0.12:
                rows.append(Alignment(instance=instance, system_a=systems[a], system_b=systems[b], metric="bertscore",
                                      k_a=2, k_b=2, undefined_reason="identical samples"))
            else:
                value = rng.uniform(-0.2, 0.9) if draw < 0.9 else 0.5  # a heap of equal values too
                rows.append(Alignment(instance=instance, system_a=systems[a], system_b=systems[b], metric="bertscore",
                                      k_a=2, k_b=2, self_a=0.9, self_b=0.8, cross=0.7, separability=value,
                                      normalised=value))
            rows.append(Alignment(instance=instance, system_a=systems[a], system_b=systems[b], metric="rouge1",
                                  k_a=2, k_b=2, separability=0.1, normalised=0.1))
    Alignment.objects.bulk_create(rows)
    return dataset


def _expected(dataset, pair, marks=()):
    rows = Alignment.objects.filter(instance__dataset=dataset, metric="bertscore")
    if pair:
        rows = rows.filter(system_a_id=pair["system_a_id"], system_b_id=pair["system_b_id"])
    values = list(rows.filter(normalised__isnull=False).values_list("normalised", flat=True))
    return rows, agreement.histogram(values, bins=20, marks=marks)


@pytest.mark.parametrize("which", ["all", "one pair"])
def test_database_histogram_counts_match_numpys(dataset, which):
    pairs = queries.separability_pairs(dataset, "bertscore")
    pair = pairs[1] if which == "one pair" else None
    overview = queries.separability_overview(dataset, "bertscore", pair)
    rows, expected = _expected(dataset, pair)
    assert overview["histogram"]["counts"] == expected["counts"]
    assert overview["histogram"]["edges"] == pytest.approx(expected["edges"])
    assert overview["units"] == rows.count()
    assert overview["defined"] == expected["n"] == rows.filter(normalised__isnull=False).count()
    undefined = {u["reason"]: u["n"] for u in overview["undefined"]}
    assert sum(undefined.values()) == overview["undefined_total"] == rows.filter(separability__isnull=True).count()
    assert overview["undefined_single_sample"] == rows.filter(separability__isnull=True, k_a__lt=2).count() > 0


def test_a_threshold_outside_the_values_widens_the_range(dataset):
    Study.objects.create(slug="hist-study", name="hist", dataset=dataset, policy=Study.Policy.THRESHOLD,
                         threshold=1.5, policy_metric="bertscore")
    overview = queries.separability_overview(dataset, "bertscore", None)
    _, expected = _expected(dataset, None, marks=[1.5])
    assert overview["marks"] == [1.5]
    assert overview["histogram"]["edges"][-1] == pytest.approx(1.5)
    assert overview["histogram"]["counts"] == expected["counts"]
    assert overview["histogram"]["counts"][-1] == 0  # nothing above 0.9


def test_one_aggregate_feeds_metrics_pairs_and_summary(dataset):
    counts = queries.separability_pair_counts(dataset)
    assert queries.separability_metrics(dataset, counts) == ["bertscore", "rouge1"]
    pairs = queries.separability_pairs(dataset, "bertscore", counts)
    assert [(p["system_a"], p["system_b"]) for p in pairs] == [("hist-0", "hist-1"), ("hist-0", "hist-2"),
                                                                ("hist-1", "hist-2")]
    summary = queries.dataset_summary(dataset)["separability"]
    assert summary["rouge1"] == {"units": 360, "defined": 360}
    assert summary["bertscore"]["units"] == 360 == sum(p["units"] for p in pairs)
    assert summary["bertscore"]["defined"] == sum(p["defined"] for p in pairs) < 360


def test_a_metric_without_defined_units_has_an_empty_histogram(dataset):
    Alignment.objects.filter(metric="rouge1").update(separability=None, normalised=None, undefined_reason="none")
    overview = queries.separability_overview(dataset, "rouge1", None)
    assert overview["histogram"] == {"edges": [], "counts": [], "n": 0}
    assert overview["units"] == 360 and overview["undefined_total"] == 360


def test_pair_choices_escape_system_names_and_keep_the_chosen_pair(dataset, staff_client):
    System.objects.filter(name="hist-1").update(name='<b>"bold"</b> & co')
    pairs = queries.separability_pairs(dataset, "bertscore")
    chosen = next(p for p in pairs if p["system_a"].startswith("<b>"))
    html = staff_client.get(f"/dashboard/datasets/{dataset.slug}/separability/",
                            {"metric": "bertscore", "pair": chosen["key"]}).content.decode()
    assert "<b>&quot;bold" not in html and '<b>"bold"' not in html
    assert f'<option value="{chosen["key"]}" selected>&lt;b&gt;&quot;bold&quot;&lt;/b&gt; &amp; co vs' in html
    assert html.count(" selected>") == 2  # the metric's and the pair's
    assert f'({chosen["defined"]}/{chosen["units"]} defined)</option>' in html
