"""Test builders, in one place: studies (open and empty, with live votes, or for ratings), accounts, votes.

Built with the real models and services (no mocks): `make_study` opens a study the annotator tests lease from;
`make_voted_study` adds live votes and an open lease for the dashboard, API and security tests;
`make_rating_study` and `add_vote` feed the leaderboard tests vote by vote.
"""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import F
from django.utils import timezone

from annotations import queue
from annotations.imports.write import store_historical_vote
from annotations.models import (
    AnnotatorProfile,
    Assignment,
    Comparison,
    Dataset,
    Generation,
    Instance,
    Study,
    System,
    Vote,
)
from annotations.selection import open_study
from annotations.services import canonical_pair, get_or_create_comparison, new_pseudonym
from ranking.services import apply_vote_to_ratings, separability_weight

SYSTEMS = ("alpha-model", "beta-model")
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)  # add_vote's votes are a minute apart from here


# ---------------------------------------------------------------------------------------------- annotators' side

def make_study(slug="queue-study", n_instances=4, k=1, systems=("alpha-model", "beta-model"), pairs=1, overlap=1,
               quota=0, texts=None, open_it=True, **fields) -> Study:
    """A dataset of `n_instances` inputs with `k` samples per system, a study over it, opened (policy all)."""
    dataset = Dataset.objects.create(slug=f"{slug}-data")
    system_objs = [System.objects.get_or_create(name=name)[0] for name in systems]
    for i in range(n_instances):
        instance = Instance.objects.create(dataset=dataset, external_id=f"x{i}", input=f"Input text number {i}.")
        for position, system in enumerate(system_objs):
            for s in range(k):
                # Different texts per model (identical pairs are never served), without naming the model.
                text = texts(i, system, s) if texts else f"Answer {i}.{s} in style {'PQRSTUVW'[position]}."
                Generation.objects.create(instance=instance, system=system, sample_index=s, text=text)
    study = Study.objects.create(slug=slug, name=slug, dataset=dataset, sample_pairs_per_unit=pairs,
                                 votes_per_comparison=overlap, quota=quota, too_fast_seconds=fields.pop("too_fast", 0),
                                 **fields)
    study.systems.set(system_objs)
    if open_it:
        open_study(study)
        study.refresh_from_db()
    return study


def make_annotator(name=None):
    user = get_user_model().objects.create_user(name or new_pseudonym())
    AnnotatorProfile.objects.create(user=user, pseudonym=user.username)
    return user


def answer(study, user, choice="left", now=None, rationale=""):
    """Lease the next item and vote on it; returns the assignment (None when nothing was left)."""
    assignment = queue.next_assignment(study, user, now=now)
    if assignment is not None:
        queue.submit_vote(study, user, assignment.token, choice, rationale, now=now)
    return assignment


# ---------------------------------------------------------------------------------------------- with live votes

def make_account(username: str, staff: bool = False):
    user = get_user_model().objects.create_user(username, password="annotator-pass-123", is_staff=staff)
    AnnotatorProfile.objects.create(user=user, pseudonym=new_pseudonym())
    return user


def make_voted_study(slug: str = "mini", n_instances: int = 4, k: int = 2, annotators: int = 3, seed: int = 1,
               leave_open: int = 1) -> Study:
    """`n_instances` inputs, two systems with `k` samples each, a study judging every sample pair, and
    `annotators` annotators who voted (live, with durations) on every comparison but the last
    `leave_open`, which has an open lease instead."""
    rng = random.Random(seed)
    dataset = Dataset.objects.create(slug=f"{slug}-data", name=f"{slug} data")
    systems = [System.objects.get_or_create(name=name)[0] for name in SYSTEMS]
    for i in range(n_instances):
        instance = Instance.objects.create(dataset=dataset, external_id=f"x{i}", input=f"Summarise text number {i}.")
        for system in systems:
            for j in range(k):
                Generation.objects.create(instance=instance, system=system, sample_index=j,
                                          text=f"{system.name} answer {j} to input {i}")
    study = Study.objects.create(slug=slug, name=f"{slug} study", dataset=dataset, sample_pairs_per_unit=k,
                                 votes_per_comparison=max(1, annotators), quota=0, too_fast_seconds=2.0)
    study.systems.set(systems)
    open_study(study)
    users = [make_account(f"{slug}-annotator-{n}") for n in range(annotators)]
    now = timezone.now()
    comparisons = list(Comparison.objects.filter(study=study).order_by("id"))
    for c_index, comparison in enumerate(comparisons):
        for u_index, user in enumerate(users):
            issued = now - timedelta(minutes=30 - c_index, seconds=u_index)
            if c_index >= len(comparisons) - leave_open:
                Assignment.objects.create(comparison=comparison, annotator=user, left_is_a=True, issued_at=issued,
                                          served_at=issued, expires_at=now + timedelta(minutes=10))
                continue
            left_is_a = rng.random() < 0.5
            winner = rng.choice(["a", "a", "b", "tie"])
            side = {"a": "left" if left_is_a else "right", "b": "right" if left_is_a else "left"}.get(winner, winner)
            assignment = Assignment.objects.create(comparison=comparison, annotator=user, left_is_a=left_is_a,
                                                   issued_at=issued, served_at=issued, expires_at=issued,
                                                   completed_at=issued + timedelta(seconds=5 + u_index))
            duration = 1.5 if u_index == 0 and c_index == 0 else 5.0 + u_index
            Vote.objects.create(assignment=assignment, study=study, comparison=comparison, annotator=user,
                                choice=side, winner=winner, served_at=issued, rationale=f"because {c_index}",
                                submitted_at=issued + timedelta(seconds=duration), duration_seconds=duration,
                                too_fast=duration < study.too_fast_seconds)
            Comparison.objects.filter(pk=comparison.pk).update(votes_count=F("votes_count") + 1)
    return study


# ---------------------------------------------------------------------------------------------- for ratings

def make_rating_study(slug="elo-study", systems=("alpha", "beta", "gamma", "delta"), n_instances=5,
               status=Study.Status.OPEN, **fields) -> Study:
    """A dataset with one output per (instance, system) and a study over it (no comparisons yet)."""
    dataset = Dataset.objects.create(slug=f"{slug}-data")
    system_objs = [System.objects.get_or_create(name=name)[0] for name in systems]
    for i in range(n_instances):
        instance = Instance.objects.create(dataset=dataset, external_id=f"x{i}", input=f"Input {i}")
        Generation.objects.bulk_create([Generation(instance=instance, system=s, sample_index=0, text=f"{s.name} {i}")
                                        for s in system_objs])
    study = Study.objects.create(slug=slug, name=f"Study {slug}", dataset=dataset, status=status, **fields)
    study.systems.set(system_objs)
    return study


def add_vote(study, x, y, outcome, instance=0, separability=None, log=None, apply=True, gold=False,
             excluded=False) -> Vote:
    """Store one vote between systems named x and y on `instance`; outcome is "x", "y", "tie" or "both_bad".

    The comparison is created (with that separability) on first use. Votes are one minute apart, in call
    order, and go through `apply_vote_to_ratings` like a live vote unless apply=False."""
    generations = {g.system.name: g for g in Generation.objects.filter(
        instance__dataset=study.dataset, instance__external_id=f"x{instance}", system__name__in=(x, y),
    ).select_related("system")}
    gen_a, gen_b, swapped = canonical_pair(generations[x], generations[y])
    comparison, _ = get_or_create_comparison(study, gen_a, gen_b, separability=separability)
    if gold and not comparison.is_gold:
        Comparison.objects.filter(pk=comparison.pk).update(is_gold=True, gold_answer="a")
        comparison.refresh_from_db()
    winner = {"x": "b" if swapped else "a", "y": "a" if swapped else "b"}.get(outcome, outcome)
    number = Vote.objects.count()
    annotator = get_user_model().objects.create(username=f"voter-{number}")
    vote = store_historical_vote(comparison, annotator, winner, START + timedelta(minutes=number))
    if excluded:
        vote.excluded = True
        vote.exclusion_reason = "test"
        vote.save(update_fields=["excluded", "exclusion_reason"])
    if apply:
        apply_vote_to_ratings(vote)
    if log is not None:
        log.system_a.append(comparison.system_a.name)
        log.system_b.append(comparison.system_b.name)
        log.winner.append(winner)
        log.weight.append(separability_weight(comparison.separability))
    return vote


# ---------------------------------------------------------------------------------------------- generation

def make_prompt_dataset(slug="prompts", n_instances=3) -> Dataset:
    """A dataset of inputs with no outputs yet (the site samples them)."""
    dataset = Dataset.objects.create(slug=slug)
    for i in range(n_instances):
        Instance.objects.create(dataset=dataset, external_id=f"p{i}", input=f"Write a line about the number {i}.")
    return dataset


def make_endpoint(name, base_url="", model="", system_name=None, **fields):
    """A ModelEndpoint for the system `system_name` (default: the endpoint's name), created if new."""
    from generation.models import ModelEndpoint

    system, _ = System.objects.get_or_create(name=system_name or name)
    kind = fields.pop("kind", ModelEndpoint.Kind.OPENAI)
    return ModelEndpoint.objects.create(name=name, system=system, kind=kind, base_url=base_url, model=str(model),
                                        **{"max_retries": 1, "timeout_seconds": 60, **fields})
