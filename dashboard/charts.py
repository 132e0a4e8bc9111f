"""Chart.js configurations for the dashboard's plots, built on the server as plain JSON.

The templates embed each one with `json_script`; static/js/dashboard.js draws every
`<canvas data-chart="ID">` from the JSON with that id. Only the things JSON cannot carry (vertical
marks on a histogram, tooltip text) are done in the script.
"""
from __future__ import annotations

from typing import Any

BLUE, ORANGE, GREEN, GREY = "#0b57d0", "#c2410c", "#0a6b2c", "#6b7280"


def _base(kind: str, data: dict, x_title: str, y_title: str, **options) -> dict:
    config: dict[str, Any] = {
        "type": kind,
        "data": data,
        "options": {
            "animation": False,
            "responsive": True,
            "maintainAspectRatio": False,
            "scales": {
                "x": {"title": {"display": True, "text": x_title}},
                "y": {"title": {"display": True, "text": y_title}},
            },
            "plugins": {"legend": {"display": len(data.get("datasets", [])) > 1}},
        },
    }
    for key, value in options.items():
        config["options"][key] = value
    return config


def progress_chart(overview: list[dict]) -> dict:
    labels = [row["study"].slug for row in overview]
    return _base("bar", {
        "labels": labels,
        "datasets": [
            {"label": "votes toward target", "data": [row["progress"]["counted"] for row in overview],
             "backgroundColor": BLUE},
            {"label": "still needed", "data": [max(0, row["progress"]["target"] - row["progress"]["counted"])
                                               for row in overview], "backgroundColor": "#d1d5db"},
        ],
    }, "votes", "study", indexAxis="y", scales={"x": {"stacked": True, "title": {"display": True, "text": "votes"}},
                                                "y": {"stacked": True}})


def timeline_chart(timeline: dict) -> dict:
    return _base("line", {
        "labels": timeline["labels"],
        "datasets": [{"label": "votes so far", "data": timeline["cumulative"], "borderColor": BLUE,
                      "backgroundColor": BLUE, "pointRadius": 3, "tension": 0}],
    }, f"time (per {timeline['bucket'] or 'bucket'}, UTC)", "votes (cumulative)")


def annotator_chart(annotators: list[dict], limit: int = 40) -> dict:
    rows = [a for a in annotators if a["majority_agreement"] is not None][:limit]
    return _base("bar", {
        "labels": [a["pseudonym"] for a in rows],
        "datasets": [{"label": "agreement with the others' majority",
                      "data": [round(a["majority_agreement"], 4) for a in rows], "backgroundColor": GREEN}],
    }, "annotator (most votes first)", "agreement with majority",
        scales={"x": {"title": {"display": True, "text": "annotator (most votes first)"}},
                "y": {"min": 0, "max": 1, "title": {"display": True, "text": "agreement with majority"}}})


def scatter_chart(pair: dict, metric: str) -> dict:
    return _base("scatter", {
        "datasets": [{"label": f"{pair['system_a']} vs {pair['system_b']}",
                      "data": [{"x": round(p["x"], 5), "y": round(p["y"], 5)} for p in pair["points"]],
                      "backgroundColor": ORANGE, "pointRadius": 4}],
    }, f"normalised separability ({metric})", "rating consistency",
        scales={"x": {"type": "linear", "title": {"display": True, "text": f"normalised separability ({metric})"}},
                "y": {"min": 0, "max": 1.05, "title": {"display": True, "text": "rating consistency"}}})


def histogram_chart(overview: dict) -> dict:
    hist = overview["histogram"]
    edges = hist["edges"]
    labels = [f"{edges[i]:.2f}–{edges[i + 1]:.2f}" for i in range(len(edges) - 1)]
    config = _base("bar", {
        "labels": labels,
        "datasets": [{"label": "units", "data": hist["counts"], "backgroundColor": BLUE,
                      "barPercentage": 1.0, "categoryPercentage": 1.0}],
    }, f"normalised separability ({overview['metric']})", "units")
    config["options"]["plugins"]["marks"] = {
        "low": edges[0] if edges else 0, "high": edges[-1] if edges else 1,
        "lines": [{"value": t["threshold"], "label": f"{t['study']} threshold {t['threshold']:g}"}
                  for t in overview["thresholds"] if t["applies"]],
    }
    return config


def board_chart(comparison: dict) -> dict:
    """Each system's rating interval (CI low to high) under the plain and the weighted method."""
    systems = [row["system"] for row in comparison["rows"]]

    def interval(row):
        if not row:
            return None
        low = row["ci_low"] if row.get("ci_low") is not None else row["rating"] - 1
        high = row["ci_high"] if row.get("ci_high") is not None else row["rating"] + 1
        return [round(low, 2), round(high, 2)]

    datasets = []
    for key, colour in (("plain", GREY), ("weighted", BLUE)):
        board = comparison[key]
        if board is None or board.get("error") or not board.get("ratings"):
            continue
        datasets.append({"label": f"{board['name']} (95% interval)",
                         "data": [interval(row[key]) for row in comparison["rows"]], "backgroundColor": colour})
    ends = [v for d in datasets for pair in d["data"] if pair for v in pair]
    x_axis = {"title": {"display": True, "text": "rating (Elo scale)"}}
    if ends:
        margin = max(10.0, 0.05 * (max(ends) - min(ends)))
        x_axis.update(min=round(min(ends) - margin), max=round(max(ends) + margin))
    return _base("bar", {"labels": systems, "datasets": datasets}, "rating (Elo scale)", "system",
                 indexAxis="y", scales={"x": x_axis})


def gain_chart(report: dict) -> dict:
    """The adaptive policy's open comparisons by expected gain of one more vote (ranking.priorities)."""
    edges = report["histogram"]["edges"]
    labels = [f"{edges[i]:.3f}–{edges[i + 1]:.3f}" for i in range(len(edges) - 1)]
    return _base("bar", {
        "labels": labels,
        "datasets": [{"label": "open comparisons", "data": report["histogram"]["counts"], "backgroundColor": GREEN,
                      "barPercentage": 1.0, "categoryPercentage": 1.0}],
    }, "expected gain of one more vote", "open comparisons")


PLAN_COLOURS = {"random": "#6b7280", "top_fraction": ORANGE, "proportional": BLUE, "adaptive": GREEN}


def plan_chart(planned: dict) -> dict:
    """The votes-needed planner's curves: expected Spearman with the true ranking against votes, one line
    per policy, and a mark at the study's votes so far (dashboard.planner)."""
    config = _base("line", {
        "labels": planned["votes"],
        "datasets": [{"label": policy, "data": [round(v, 4) for v in values],
                      "borderColor": PLAN_COLOURS.get(policy, BLUE), "backgroundColor": PLAN_COLOURS.get(policy, BLUE),
                      "pointRadius": 2, "tension": 0}
                     for policy, values in planned["curves"].items()],
    }, "votes", "expected Spearman with the true ranking")
    low, high = (planned["votes"][0], planned["votes"][-1]) if planned["votes"] else (0, 1)
    config["options"]["plugins"]["marks"] = {  # kept on the axis: past the simulated budget it sits at its end
        "low": low, "high": high,
        "lines": [{"value": min(max(planned["current"], low), high), "label": f"now: {planned['current']} votes"}],
    }
    return config

