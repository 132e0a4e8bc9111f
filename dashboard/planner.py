"""The votes-needed planner of a study (issue 17): how many votes give a ranking whose adjacent pairs are
separated, and how fast each selection policy gets there, before or while the study runs.

The simulation is ranking.simulate.plan (pure): the study's own units (system pairs and normalised
separability) with true strengths taken from a pilot, i.e. the study's current Bradley-Terry board when it
has one, or else a prior, strengths spread evenly over 400 Elo points (ranking.simulate.evenly_spread).
The units are the study's comparisons once it is open; before that (a draft, or the study form's unsaved
settings) the comparisons that opening it would create, from annotations.selection.candidate_units and
select_units, so a researcher sees the curve before any comparison exists. Nothing here writes.
This module only gathers those inputs and shapes the curve for the chart; the page loads it with htmx
after the rest, since a few seeds of four policies take a second or two.
"""
from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from django import forms

from annotations.models import Comparison, Generation, Study, System
from annotations.selection import SelectionError, Unit, candidate_units, select_units
from ranking.models import LeaderboardSnapshot
from ranking.simulate import evenly_spread, plan

POLICIES = ("random", "top_fraction", "proportional", "adaptive")
MAX_UNITS = 2_000  # a seeded sample of a larger study's comparisons stands for all of them
MAX_BUDGET = 6_000  # votes simulated at most (the curve's x axis)
SEEDS = 4
LOG_STRENGTH_PER_ELO = math.log(10) / 400  # BT ratings are on the Elo scale (base 10, scale 400)


def study_plan(study: Study, current_votes: int) -> dict[str, Any]:
    """{"votes", "curves": {policy: expected Spearman per checkpoint}, "separate": {policy: votes or None},
    "source", "units", "basis", "sampled", "current"}; or {"error": ...} when there is nothing to simulate.
    A draft without comparisons is planned from the comparisons opening it would create."""
    units = list(Comparison.objects.filter(study=study, selected=True, is_gold=False)
                 .values_list("system_a_id", "system_b_id", "separability"))
    if units:
        return simulate_units(study, units, current_votes, "of the study's comparisons")
    if study.status != Study.Status.DRAFT:
        return {"error": "This study has no comparisons to serve: nothing to plan."}
    return draft_plan(study, current_votes=current_votes)


def draft_plan(study: Study, system_ids: list[int] | None = None, current_votes: int = 0) -> dict[str, Any]:
    """The plan of the comparisons that opening `study` (saved or not) would create: its policy applied to
    the candidate units of its dataset and models (`system_ids`, or the saved study's own). Reads only."""
    candidates = candidate_units(study, system_ids)
    if not candidates:
        return {"error": "No instance of this dataset has outputs of two or more of the chosen models: "
                         "nothing to plan."}
    try:
        chosen = select_units(study, candidates)
    except SelectionError as exc:
        return {"error": f"The selection cannot be applied: {exc}."}
    if not chosen:
        return {"error": f"The policy {study.get_policy_display()!r} selects none of the {len(candidates)} "
                         "candidate units" + (" (lower the threshold)" if study.policy == Study.Policy.THRESHOLD
                                              else "") + ": nothing to plan."}
    per_unit = _comparisons_per_unit(study, chosen)
    units = [(u.system_a_id, u.system_b_id, u.separability) for u, n in zip(chosen, per_unit, strict=True)
             for _ in range(n)]
    plural = "s" if min(len(units), MAX_UNITS) != 1 else ""
    return simulate_units(study, units, current_votes,
                          f"comparison{plural} that opening the study would create ({len(chosen)} of the dataset's "
                          f"{len(candidates)} candidate units, policy {study.get_policy_display()!r})")


def _comparisons_per_unit(study: Study, units: list[Unit]) -> list[int]:
    """How many comparisons opening the study makes of each unit (annotations.selection.open_study): the
    shared sample indexes of the two models, at most sample_pairs_per_unit, and one when none is shared."""
    if study.sample_pairs_per_unit <= 1:
        return [1] * len(units)
    samples: defaultdict[tuple[int, int], set[int]] = defaultdict(set)
    system_ids = {u.system_a_id for u in units} | {u.system_b_id for u in units}
    for instance_id, system_id, index in (Generation.objects.filter(instance_id__in={u.instance_id for u in units},
                                                                    system_id__in=system_ids)
                                          .values_list("instance_id", "system_id", "sample_index")):
        samples[(instance_id, system_id)].add(index)
    return [max(1, min(study.sample_pairs_per_unit,
                       len(samples[(u.instance_id, u.system_a_id)] & samples[(u.instance_id, u.system_b_id)])))
            for u in units]


def simulate_units(study: Study, units: list[tuple[int, int, float | None]], current_votes: int,
                   basis: str) -> dict[str, Any]:
    """The shared core: simulate the units (system a id, system b id, separability; one per comparison),
    with the study's Bradley-Terry board (a pilot) as the truth when it covers every system, else a prior."""
    total = len(units)
    sampled = total > MAX_UNITS
    if sampled:
        units = random.Random(study.selection_seed).sample(units, MAX_UNITS)
    ids = sorted({a for a, _b, _s in units} | {b for _a, b, _s in units})
    if len(ids) < 2:
        return {"error": "A plan needs at least two systems."}
    index = {system_id: i for i, system_id in enumerate(ids)}
    names = dict(System.objects.filter(pk__in=ids).values_list("id", "name"))
    snapshot = (LeaderboardSnapshot.objects.filter(study=study, method="bt", error="").first()
                if study.pk else None)
    ratings = {r["system"]: r["rating"] for r in (snapshot.payload.get("ratings", []) if snapshot else [])}
    if snapshot and all(names.get(i) in ratings for i in ids):
        theta = [(ratings[names[i]] - 1000.0) * LOG_STRENGTH_PER_ELO for i in ids]
        source = f"the study's current Bradley-Terry ratings ({snapshot.votes_used} votes)"
    else:
        theta = list(evenly_spread(len(ids)))
        source = "a prior: strengths spread evenly over 400 Elo points (no pilot board yet)"
    scale = MAX_UNITS / total if sampled else 1.0
    budget = min(MAX_BUDGET, len(units) * study.votes_per_comparison)
    result = plan(theta, [index[a] for a, _b, _s in units], [index[b] for _a, b, _s in units],
                  [s if s is not None else math.nan for _a, _b, s in units], overlap=study.votes_per_comparison,
                  budget=budget, policies=POLICIES, seeds=SEEDS)
    return {
        "votes": result.votes, "curves": result.expected_spearman, "separate": result.votes_to_separate,
        "source": source, "units": len(units), "basis": basis, "sampled": sampled, "scale": scale,
        "current": round(current_votes * scale),
    }


# ------------------------------------------------------------------------------------ the study form's planner

PLAN_FIELDS = ("dataset", "systems", "policy", "policy_metric", "threshold", "top_fraction", "sample_size",
               "selection_seed", "sample_pairs_per_unit", "votes_per_comparison")
CHOOSE = "Choose a dataset and at least two models to plan the votes."


class PlanForm(forms.ModelForm):
    """The study form's fields that the plan depends on, validated as the model validates them; the rest
    (slug, name, ...) may still be empty. Its instance is never saved."""

    class Meta:
        model = Study
        fields = list(PLAN_FIELDS)

    def clean(self) -> dict[str, Any]:
        """What the model's constraints and the study form refuse, said in words (the errors keep the
        field out of the instance, so no constraint is reported by its name)."""
        super().clean()
        data = self.cleaned_data
        for name in ("votes_per_comparison", "sample_pairs_per_unit"):
            if data.get(name) is not None and data[name] < 1:
                self.add_error(name, "At least 1.")
        policy = data.get("policy")
        if policy == Study.Policy.THRESHOLD and data.get("threshold") is None:
            self.add_error("threshold", "The policy 'threshold' needs a threshold (normalised separability).")
        if policy == Study.Policy.TOP_FRACTION and not 0 < (data.get("top_fraction") or 0) <= 1:
            self.add_error("top_fraction", "The policy 'top fraction' needs a fraction in (0, 1].")
        return data


def form_study(params: Mapping[str, Any], study: Study | None = None) -> tuple[Study, list[int]] | str:
    """An unsaved Study with the form's settings (over `study`'s own, in memory only, when editing one) and
    the chosen model ids; or the message saying what to fix. Nothing is written."""
    data = {name: params.get(name) for name in PLAN_FIELDS if name != "systems" and params.get(name) is not None}
    data["systems"] = params.getlist("systems") if hasattr(params, "getlist") else params.get("systems", [])
    base = study if study is not None else Study()
    for name in PLAN_FIELDS:  # a setting the request left out keeps its current (or default) value
        if name not in data and name != "dataset":
            data[name] = "" if getattr(base, name) is None else getattr(base, name)
    form = PlanForm(data, instance=base)
    if not form.is_valid():
        if {"dataset", "systems"} & set(form.errors):
            return CHOOSE
        said = [f"{form.fields[name].label}: {' '.join(map(str, errors))}"
                for name, errors in form.errors.items() if name in form.fields]
        return "; ".join(said) or " ".join(map(str, form.non_field_errors()))
    systems = [s.pk for s in form.cleaned_data["systems"]]
    if len(systems) < 2:
        return CHOOSE
    return form.instance, systems


def form_plan(params: Mapping[str, Any], study: Study | None = None, current_votes: int = 0
              ) -> tuple[Study | None, dict[str, Any]]:
    """The plan of the study form's settings: (the unsaved study, its plan or {"error": ...})."""
    built = form_study(params, study)
    if isinstance(built, str):
        return None, {"error": built}
    unsaved, system_ids = built
    return unsaved, draft_plan(unsaved, system_ids, current_votes)
