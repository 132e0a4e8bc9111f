"""Separability as plain records, shared by the export command, the dashboard download and the API."""
from .models import Alignment


def separability_rows(dataset, metric: str | None = None):
    """A dataset's alignments in export order: the unique (instance, system_a, system_b, metric) index's
    order, so a page of them (the API's limit/offset) is read through that index, not sorted whole."""
    rows = Alignment.objects.filter(instance__dataset=dataset).select_related("instance", "system_a", "system_b")
    if metric:
        rows = rows.filter(metric=metric)
    return rows.order_by("instance_id", "system_a_id", "system_b_id", "metric")


def separability_record(a: Alignment, dataset_slug: str) -> dict:
    return {
        "dataset": dataset_slug,
        "instance_id": a.instance.external_id,
        "system_a": a.system_a.name,
        "system_b": a.system_b.name,
        "metric": a.metric,
        "self_a": a.self_a,
        "self_b": a.self_b,
        "cross": a.cross,
        "separability": a.separability,
        "normalised": a.normalised,
        "k_a": a.k_a,
        "k_b": a.k_b,
        "undefined_reason": a.undefined_reason or None,
    }


def iter_separability_records(dataset, metric: str | None = None):
    for a in separability_rows(dataset, metric).iterator(chunk_size=2000):
        yield separability_record(a, dataset.slug)
