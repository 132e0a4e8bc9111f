"""Which (instance, system pair) units of a dataset a study asks humans to judge.

Opening a study turns the chosen units into comparisons. The policy uses the stored normalised
separability (docs/design.md §4) of the study's metric: all units, units at or above a threshold, the top
fraction per system pair, or a seeded sample drawn in proportion to separability; or "adaptive": every
unit, served in the order of priorities that ranking refreshes from the votes (ranking.priorities).
Units whose separability is undefined (k < 2) are only eligible under "all" and "adaptive". Re-opening
is idempotent: existing comparisons (with their votes) are kept, missing ones are added.
"""
from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from .models import Comparison, Generation, Study
from .services import get_or_create_comparison, unit_key_for
from .signals import study_closed


class SelectionError(ValueError):
    """The study's policy cannot be applied to the data it has (message says why)."""


@dataclass
class Unit:
    instance_id: int
    system_a_id: int
    system_b_id: int
    separability: float | None  # normalised, None when undefined or not computed


# Where normalised separability comes from: the separability app registers its lookup when it loads
# (separability.apps), so that annotations, below it, never imports it. Without one, every unit's
# separability is unknown (only the policy "all" applies).
SeparabilityLookup = Callable[[Study, list[int]], dict[tuple[int, int, int], float | None]]
_separability_lookup: SeparabilityLookup | None = None


def use_separability_lookup(lookup: SeparabilityLookup) -> None:
    """lookup(study, system_ids) -> {(instance_id, system_a_id, system_b_id): normalised separability}."""
    global _separability_lookup
    _separability_lookup = lookup


def candidate_units(study: Study, system_ids: Iterable[int] | None = None) -> list[Unit]:
    """Every pair of the study's models on each instance of its dataset where both have an output. With
    `system_ids`, those models instead of the study's own: an unsaved study (the study form's planner) has
    none yet, and reading them is all this needs of the database (it writes nothing)."""
    system_ids = sorted(set(study.systems.values_list("id", flat=True) if system_ids is None else system_ids))
    present = defaultdict(set)
    for instance_id, system_id in (Generation.objects.filter(instance__dataset_id=study.dataset_id,
                                                             system_id__in=system_ids)
                                   .values_list("instance_id", "system_id").distinct()):
        present[instance_id].add(system_id)
    separability = _separability_lookup(study, system_ids) if _separability_lookup is not None else {}
    units = []
    for instance_id in sorted(present):
        for a, b in itertools.combinations(sorted(present[instance_id]), 2):
            units.append(Unit(instance_id, a, b, separability.get((instance_id, a, b))))
    return units


def select_units(study: Study, units: list[Unit]) -> list[Unit]:
    policy = study.policy
    if policy in (Study.Policy.ALL, Study.Policy.ADAPTIVE):  # adaptive serves every unit, in its own order
        return units
    defined = [u for u in units if u.separability is not None]
    if not defined:
        raise SelectionError(f"policy {policy!r} needs separability ({study.policy_metric}) for dataset "
                             f"{study.dataset.slug!r}; compute it first or use policy 'all'")
    if policy == Study.Policy.THRESHOLD:
        if study.threshold is None:
            raise SelectionError("policy 'threshold' needs a threshold")
        # `defined` holds only units whose separability is set (mypy cannot see through the filter).
        return [u for u in defined if u.separability >= study.threshold]  # type: ignore[operator]
    if policy == Study.Policy.TOP_FRACTION:
        if study.top_fraction is None:
            raise SelectionError("policy 'top_fraction' needs top_fraction in (0, 1]")
        by_pair: defaultdict[tuple[int, int], list[Unit]] = defaultdict(list)
        for unit in defined:
            by_pair[(unit.system_a_id, unit.system_b_id)].append(unit)
        chosen: list[Unit] = []
        for pair_units in by_pair.values():
            # Units of `defined`: separability is set.
            pair_units.sort(key=lambda u: (-u.separability, u.instance_id))  # type: ignore[operator]
            keep = max(1, round(study.top_fraction * len(pair_units)))
            chosen.extend(pair_units[:keep])
        return chosen
    if policy == Study.Policy.PROPORTIONAL:
        size = study.sample_size or max(1, len(defined) // 2)
        return weighted_sample_without_replacement(defined, min(size, len(defined)), study.selection_seed)
    raise SelectionError(f"unknown policy {policy!r}")


def weighted_sample_without_replacement(units: list[Unit], size: int, seed: int) -> list[Unit]:
    """Efraimidis-Spirakis: key u^(1/w), keep the largest; weights are clipped separability (tiny floor)."""
    rng = random.Random(seed)
    keyed = []
    for unit in units:
        # Set: select_units passes only the units with separability.
        separability: float = unit.separability  # type: ignore[assignment]
        weight = max(min(separability, 1.0), 1e-6)
        keyed.append((rng.random() ** (1.0 / weight), unit.instance_id, unit))
    keyed.sort(key=lambda t: (-t[0], t[1]))
    return [unit for _, _, unit in keyed[:size]]


def open_study(study: Study) -> int:
    """Create the comparisons of the selected units and mark the study open; returns comparisons created."""
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        units = candidate_units(study)
        chosen = select_units(study, units)
        if not chosen:  # an open study with nothing to serve only tells annotators "no items right now"
            raise SelectionError(
                f"the policy {study.get_policy_display()!r} selected none of the {len(units)} units"
                + (f" (threshold {study.threshold}: lower it)" if study.policy == Study.Policy.THRESHOLD else "")
                + ("; the dataset has no generations of two or more of the study's models" if not units else "")
                + ". Nothing changed.")
        generations: defaultdict[tuple[int, int], dict[int, Generation]] = defaultdict(dict)
        for g in Generation.objects.filter(instance_id__in={u.instance_id for u in chosen},
                                           system__in=study.systems.all()):
            generations[(g.instance_id, g.system_id)][g.sample_index] = g
        created = 0
        chosen_keys = set()
        for unit in chosen:
            samples_a = generations[(unit.instance_id, unit.system_a_id)]
            samples_b = generations[(unit.instance_id, unit.system_b_id)]
            shared = sorted(set(samples_a) & set(samples_b))[: study.sample_pairs_per_unit]
            if not shared:  # different sample indexes: pair the first of each
                shared_pairs = [(min(samples_a), min(samples_b))]
            else:
                shared_pairs = [(i, i) for i in shared]
            for index_a, index_b in shared_pairs:
                _, was_created = get_or_create_comparison(
                    study, samples_a[index_a], samples_b[index_b], separability=unit.separability,
                    priority=unit.separability if unit.separability is not None else 0.0)
                created += was_created
            chosen_keys.add(unit_key_for(unit.instance_id, unit.system_a_id, unit.system_b_id))
        comparisons = Comparison.objects.filter(study=study, is_gold=False)
        comparisons.exclude(unit_key__in=chosen_keys).update(selected=False)
        comparisons.filter(unit_key__in=chosen_keys).update(selected=True)
        # Two identical texts, or an empty one, cannot be judged: never served (their history still counts).
        unjudgeable = comparisons.filter(Q(generation_a__text=F("generation_b__text")) | Q(generation_a__text="")
                                         | Q(generation_b__text="")).filter(selected=True)
        skipped = unjudgeable.update(selected=False)
        if skipped and not comparisons.filter(selected=True).exists():
            raise SelectionError(f"every selected comparison shows two identical (or empty) texts ({skipped}). "
                                 "Nothing changed.")
        defined = sum(u.separability is not None for u in units)
        study.selection_summary = (
            f"{timezone.now():%Y-%m-%d %H:%M} UTC: policy {study.get_policy_display()!r}"
            + (f" (threshold {study.threshold})" if study.policy == Study.Policy.THRESHOLD else "")
            + (f" (top fraction {study.top_fraction})" if study.policy == Study.Policy.TOP_FRACTION else "")
            + f" chose {len(chosen)} of {len(units)} units; separability ({study.policy_metric}) known for "
            f"{defined} of them; {Comparison.objects.filter(study=study).count()} comparisons in the study"
            + (f", {skipped} of them not served (identical or empty texts)" if skipped else "") + "."
        )
        study.status = Study.Status.OPEN
        study.opened_at = study.opened_at or timezone.now()
        study.save(update_fields=["selection_summary", "status", "opened_at"])
    refresh_comparison_statistics()
    return created


def close_study(study: Study) -> bool:
    """Stop the study taking votes; returns False when it was not open. Apps above annotations learn of
    it through `signals.study_closed` (ranking releases the final public leaderboard)."""
    with transaction.atomic():
        closed = Study.objects.filter(pk=study.pk, status=Study.Status.OPEN).update(status=Study.Status.CLOSED) == 1
        if closed:
            study.status = Study.Status.CLOSED
            transaction.on_commit(lambda: study_closed.send(sender=Study, study=study))
    return closed


def refresh_comparison_statistics() -> None:
    """ANALYZE the comparison table on PostgreSQL after opening a study.

    Until autovacuum gets to it (a minute or more), the planner believes a new study has no
    comparisons and picks a bitmap scan plus a sort of the whole study for the lease query (7 ms at
    4,500 comparisons) instead of walking the serving-order index to the first open item (0.3 ms)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f'ANALYZE "{Comparison._meta.db_table}"')
