"""Separability as plain records, shared by the export command, the dashboard download and the API."""
from .models import Alignment


def iter_separability_records(dataset, metric: str | None = None):
    rows = Alignment.objects.filter(instance__dataset=dataset).select_related("instance", "system_a", "system_b")
    if metric:
        rows = rows.filter(metric=metric)
    for a in rows.order_by("instance_id", "system_a_id", "system_b_id", "metric").iterator(chunk_size=2000):
        yield {
            "dataset": dataset.slug,
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
