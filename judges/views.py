"""The study's judges page (staff only): the human leaderboard beside each judge's, and the judge table
(agreement with the human majority, Cohen's kappa, position consistency, position bias, length bias,
self-preference; each with its n and 95% bootstrap interval). Reads only: a GET never writes."""
from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404, render

from annotations.models import Study
from lib.decorators import staff_required
from ranking.presenters import method_payload, study_snapshots

from .metrics import Estimate, SideBias
from .services import study_judge_tables


def _figure(estimate: Estimate, scale: float = 1.0, lower: float = 0.0) -> dict[str, Any]:
    """An estimate for the template, with the positions (percent of a [lower, lower + scale] axis) of its
    point and interval for the bar that draws it."""
    def at(value: float | None) -> float | None:
        return None if value is None else max(0.0, min(100.0, 100.0 * (value - lower) / scale))

    low, high, point = at(estimate.low), at(estimate.high), at(estimate.value)
    return {"value": estimate.value, "n": estimate.n, "low": estimate.low, "high": estimate.high,
            "bar_left": low, "bar_width": None if low is None or high is None else high - low, "point": point}


def _side(bias: SideBias | None) -> dict[str, Any] | None:
    if bias is None:
        return None
    return {"judge": _figure(bias.judge), "human": _figure(bias.human),
            "difference": _figure(bias.difference, scale=2.0, lower=-1.0)}


@staff_required
def study_judges(request, slug):
    study = get_object_or_404(Study.objects.select_related("dataset"), slug=slug)
    human = method_payload(study_snapshots(study)["bt"])
    human_rows = {row["system"]: row for row in human.get("ratings", [])}
    judges = []
    for table in study_judge_tables(study):
        report = table.report
        judge_rows = {row["system"]: row for row in (table.board or {}).get("ratings", [])}
        boards = [{"system": system, "human": human_rows.get(system), "judge": judge_rows.get(system)}
                  for system in sorted(set(human_rows) | set(judge_rows),
                                       key=lambda s: (human_rows.get(s, {}).get("rank", 10**6), s))]
        judges.append({
            "name": table.name, "judge": table.judge, "comparisons": table.comparisons,
            "answers": report.answers, "unparseable": report.unparseable,
            "agreement": _figure(report.agreement), "kappa": _figure(report.cohen_kappa, scale=2.0, lower=-1.0),
            "position_consistency": _figure(report.position_consistency),
            "position_bias": _figure(report.position_bias),
            "length_bias": _side(report.length_bias), "self_preference": _side(report.self_preference),
            "confusion": report.confusion, "board_error": table.board_error, "boards": boards,
        })
    return render(request, "judges/study.html", {"study": study, "human": human, "judges": judges})
