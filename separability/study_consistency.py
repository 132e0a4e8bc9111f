"""Per-unit rating consistency of a study's votes, joined with the units' separability."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from .consistency import Correlation, spearman, unit_consistency
from .models import Alignment


def study_consistency(study, metric: str | None = None) -> dict:
    """{"study", "metric", "units": [...], "pairs": [...], "overall": {...}} (JSON-ready)."""
    from annotations.models import Vote

    metric = metric or study.policy_metric
    # (instance, system a, system b) -> annotator -> winners, in vote order
    judgments: defaultdict[tuple[int, int, int], defaultdict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    unit_info = {}
    for instance_id, ext_id, a_id, a_name, b_id, b_name, annotator_id, winner in (
        Vote.objects.filter(study=study, excluded=False, comparison__is_gold=False)
        .exclude(source=Vote.Source.JUDGE)  # human consistency: an LLM judge's verdicts are not in it
        .order_by("submitted_at", "id")
        .values_list("comparison__instance_id", "comparison__instance__external_id", "comparison__system_a_id",
                     "comparison__system_a__name", "comparison__system_b_id", "comparison__system_b__name",
                     "annotator_id", "winner")
    ):
        key = (instance_id, a_id, b_id)
        judgments[key][annotator_id].append(winner)
        unit_info[key] = (ext_id, a_name, b_name)
    alignments = {
        (a.instance_id, a.system_a_id, a.system_b_id): a
        for a in Alignment.objects.filter(instance__dataset=study.dataset, metric=metric)
    }
    units: list[dict[str, Any]] = []
    for key, by_annotator in judgments.items():
        consistency, annotators = unit_consistency(by_annotator)
        if consistency is None:
            continue
        alignment = alignments.get(key)
        ext_id, a_name, b_name = unit_info[key]
        units.append({
            "instance_id": ext_id, "system_a": a_name, "system_b": b_name,
            "separability": alignment.separability if alignment else None,
            "normalised": alignment.normalised if alignment else None,
            "consistency": consistency, "annotators": annotators,
            "judgments": sum(len(w) for w in by_annotator.values()),
        })
    pairs: defaultdict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for unit in units:
        pairs[(unit["system_a"], unit["system_b"])].append(unit)
    pair_stats = []
    for (a_name, b_name), pair_units in sorted(pairs.items()):
        corr = spearman([u["separability"] for u in pair_units], [u["consistency"] for u in pair_units])
        pair_stats.append({"system_a": a_name, "system_b": b_name, **corr.as_dict()})
    overall: Correlation = spearman([u["separability"] for u in units], [u["consistency"] for u in units])
    note = ""
    if not units:
        note = ("no unit was judged on two or more sample pairs by the same annotator: consistency needs "
                "sample_pairs_per_unit >= 2")
    elif overall.n == 0:
        note = "separability is undefined or not computed for these units"
    return {"study": study.slug, "metric": metric, "units": units, "pairs": pair_stats,
            "overall": overall.as_dict(), "note": note}
