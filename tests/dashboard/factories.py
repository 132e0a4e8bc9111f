"""A small study with live votes, built directly (no demo file), for the dashboard and API tests."""
from __future__ import annotations

import random
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db.models import F
from django.utils import timezone

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
from annotations.services import new_pseudonym

SYSTEMS = ("alpha-model", "beta-model")


def make_annotator(username: str, staff: bool = False):
    user = get_user_model().objects.create_user(username, password="annotator-pass-123", is_staff=staff)
    AnnotatorProfile.objects.create(user=user, pseudonym=new_pseudonym())
    return user


def make_study(slug: str = "mini", n_instances: int = 4, k: int = 2, annotators: int = 3, seed: int = 1,
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
    users = [make_annotator(f"{slug}-annotator-{n}") for n in range(annotators)]
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
