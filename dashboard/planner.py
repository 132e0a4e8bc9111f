"""The votes-needed planner of a study (issue 17): how many votes give a ranking whose adjacent pairs are
separated, and how fast each selection policy gets there, before or while the study runs.

The simulation is ranking.simulate.plan (pure): the study's own units (system pairs and normalised
separability) with true strengths taken from a pilot, i.e. the study's current Bradley-Terry board when it
has one, or else a prior, strengths spread evenly over 400 Elo points (ranking.simulate.evenly_spread).
This module only gathers those inputs and shapes the curve for the chart; the page loads it with htmx
after the rest, since a few seeds of four policies take a second or two.
"""
from __future__ import annotations

import math
import random
from typing import Any

from annotations.models import Comparison, Study
from ranking.models import LeaderboardSnapshot
from ranking.simulate import evenly_spread, plan

POLICIES = ("random", "top_fraction", "proportional", "adaptive")
MAX_UNITS = 2_000  # a seeded sample of a larger study's comparisons stands for all of them
MAX_BUDGET = 6_000  # votes simulated at most (the curve's x axis)
SEEDS = 4
LOG_STRENGTH_PER_ELO = math.log(10) / 400  # BT ratings are on the Elo scale (base 10, scale 400)


def study_plan(study: Study, current_votes: int) -> dict[str, Any]:
    """{"votes", "curves": {policy: expected Spearman per checkpoint}, "separate": {policy: votes or None},
    "source", "units", "sampled", "current"}; or {"error": ...} when there is nothing to simulate."""
    units = list(Comparison.objects.filter(study=study, selected=True, is_gold=False)
                 .values_list("system_a__name", "system_b__name", "separability"))
    if not units:
        return {"error": "This study has no comparisons yet: open it to plan its votes."}
    sampled = len(units) > MAX_UNITS
    if sampled:
        units = random.Random(study.selection_seed).sample(units, MAX_UNITS)
    names = sorted({a for a, _b, _s in units} | {b for _a, b, _s in units})
    index = {name: i for i, name in enumerate(names)}
    if len(names) < 2:
        return {"error": "A plan needs at least two systems."}
    snapshot = LeaderboardSnapshot.objects.filter(study=study, method="bt", error="").first()
    ratings = {r["system"]: r["rating"] for r in (snapshot.payload.get("ratings", []) if snapshot else [])}
    if all(name in ratings for name in names):
        theta = [(ratings[name] - 1000.0) * LOG_STRENGTH_PER_ELO for name in names]
        source = f"the study's current Bradley-Terry ratings ({snapshot.votes_used} votes)" if snapshot else ""
    else:
        theta = list(evenly_spread(len(names)))
        source = "a prior: strengths spread evenly over 400 Elo points (no pilot board yet)"
    scale = 1.0 if not sampled else MAX_UNITS / study.comparisons.filter(selected=True, is_gold=False).count()
    budget = min(MAX_BUDGET, len(units) * study.votes_per_comparison)
    result = plan(theta, [index[a] for a, _b, _s in units], [index[b] for _a, b, _s in units],
                  [s if s is not None else math.nan for _a, _b, s in units], overlap=study.votes_per_comparison,
                  budget=budget, policies=POLICIES, seeds=SEEDS)
    return {
        "votes": result.votes, "curves": result.expected_spearman, "separate": result.votes_to_separate,
        "source": source, "units": len(units), "sampled": sampled, "scale": scale,
        "current": round(current_votes * scale),
    }
