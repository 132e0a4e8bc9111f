"""Writing parsed imports into the database: studies, annotators, comparisons and historical votes.

The functions here expect to run inside one `transaction.atomic()` block opened by the caller (a
command, the admin upload form, an API view or a task), so that a failure anywhere leaves nothing.
Writers that store votes announce them (`signals.votes_changed`, after commit): whichever path imported
them, the leaderboards are refreshed by the one owner of that, ranking, debounced and off the request.
"""
from __future__ import annotations

import secrets
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from .importers import (
    ImportFileError,
    ImportSummary,
    ParsedPairwise,
    ParsedVote,
    Progress,
    _noop,
    flip_winner,
    pairwise_as_generations,
    write_generations,
)
from .signals import votes_changed_on_commit
from .models import AnnotatorProfile, Assignment, Comparison, Dataset, Generation, Instance, Study, System, Vote


def parse_system_names(text: str) -> tuple[str, str]:
    """A crowd batch's "NAME1,NAME2" (system 1 first), as the admin upload, the API and the import command
    take it. Raises ValueError with the message to show unless it is two different names, each short
    enough for its column."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    if len(names) != 2 or names[0] == names[1]:
        raise ValueError("Two different system names separated by a comma.")
    limit = System._meta.get_field("name").max_length
    for name in names:
        if len(name) > limit:
            raise ValueError(f"A system name has {len(name)} characters, over the limit of {limit}.")
    return names[0], names[1]


def get_or_create_dataset(slug: str, name: str = "", source: str = "") -> Dataset:
    dataset, created = Dataset.objects.get_or_create(slug=slug, defaults={"name": name or slug, "source": source})
    return dataset


def new_pseudonym() -> str:
    return "ann-" + secrets.token_hex(5)


IMPORTED_USERNAME_PREFIX = "imported~"  # "~" is outside Django's username validator: no sign-up can take it
CREATE_ATTEMPTS = 5


def get_or_create_imported_annotator(study: Study, external_id: str, summary: ImportSummary | None = None):
    """The account standing for a worker named in a file imported into `study` (no usable password).

    A worker is found again by (study, worker id), the profile's natural key, never by a name derived
    from the id: worker ids may be 200 characters and usernames hold 150, so a cut-down id merged
    distinct workers. A new account is named after its random pseudonym, which says nothing about the
    worker and cannot collide with a person's username."""
    User = get_user_model()
    for _ in range(CREATE_ATTEMPTS):
        profile = (AnnotatorProfile.objects.filter(imported_for=study, external_id=external_id)
                   .select_related("user").first())
        if profile is not None:
            return profile.user
        pseudonym = new_pseudonym()
        username = IMPORTED_USERNAME_PREFIX + pseudonym
        taken = (User.objects.filter(username=username).exists()
                 or AnnotatorProfile.objects.filter(pseudonym=pseudonym).exists())
        if taken:
            continue  # a pseudonym already drawn: draw again
        try:
            # a savepoint: a concurrent import of the same worker (unique key) must not spoil the caller's
            # transaction; the next round then finds the profile it created
            with transaction.atomic():
                user = User(username=username)
                user.set_unusable_password()
                user.save()
                AnnotatorProfile.objects.create(user=user, pseudonym=pseudonym, external_id=external_id,
                                                imported_for=study)
        except IntegrityError:
            continue
        if summary is not None:
            summary.annotators_created += 1
        return user
    raise RuntimeError(f"could not create an account for worker {external_id!r} in {CREATE_ATTEMPTS} attempts")


def canonical_pair(generation_x: Generation, generation_y: Generation) -> tuple[Generation, Generation, bool]:
    """(A, B, swapped): A is the generation of the system with the lower id."""
    if generation_x.system_id < generation_y.system_id:
        return generation_x, generation_y, False
    return generation_y, generation_x, True


def unit_key_for(instance_id: int, system_a_id: int, system_b_id: int) -> str:
    return f"{instance_id}:{system_a_id}:{system_b_id}"


def get_or_create_comparison(study: Study, generation_a: Generation, generation_b: Generation,
                             separability: float | None = None, priority: float = 0.0) -> tuple[Comparison, bool]:
    assert generation_a.system_id < generation_b.system_id, "pass the canonical order (see canonical_pair)"
    return Comparison.objects.get_or_create(
        study=study, generation_a=generation_a, generation_b=generation_b,
        defaults={
            "instance_id": generation_a.instance_id,
            "system_a_id": generation_a.system_id,
            "system_b_id": generation_b.system_id,
            "unit_key": unit_key_for(generation_a.instance_id, generation_a.system_id, generation_b.system_id),
            "separability": separability,
            "priority": priority,
        },
    )


class HistoricalVotes:
    """Historical votes collected while a file is written, stored in bulk by `write()`: two INSERTs per 500
    votes instead of two per vote (the PandaLM demo's 2,817 votes were 5,634 statements). Each vote is what
    `store_historical_vote` stores."""

    def __init__(self):
        self.rows: list[tuple[Comparison, object, str, datetime]] = []

    def add(self, comparison: Comparison, annotator, winner: str, submitted_at: datetime) -> None:
        self.rows.append((comparison, annotator, winner, submitted_at))

    def write(self) -> int:
        assignments = [Assignment(comparison=c, annotator=a, left_is_a=True, issued_at=t, expires_at=t,
                                  served_at=None, completed_at=t) for c, a, _, t in self.rows]
        Assignment.objects.bulk_create(assignments, batch_size=500)
        Vote.objects.bulk_create([
            Vote(assignment=assignment, study_id=c.study_id, comparison=c, annotator=a,
                 choice={"a": Vote.Choice.LEFT, "b": Vote.Choice.RIGHT}.get(w, w), winner=w, submitted_at=t,
                 source=Vote.Source.IMPORTED, gold_passed=(w == c.gold_answer) if c.is_gold else None)
            for assignment, (c, a, w, t) in zip(assignments, self.rows)], batch_size=500)
        written, self.rows = len(self.rows), []
        return written


class StudyComparisons:
    """The study's comparisons by their two generations, read once; missing ones are created on first use."""

    def __init__(self, study: Study):
        self.study = study
        self.known = {(c.generation_a_id, c.generation_b_id): c for c in Comparison.objects.filter(study=study)}

    def get(self, generation_a: Generation, generation_b: Generation) -> tuple[Comparison, bool]:
        key = (generation_a.pk, generation_b.pk)
        if key in self.known:
            return self.known[key], False
        comparison, created = get_or_create_comparison(self.study, generation_a, generation_b)
        self.known[key] = comparison
        return comparison, created


def store_historical_vote(comparison: Comparison, annotator, winner: str, submitted_at: datetime) -> Vote:
    """A completed assignment plus its vote, for a judgment made elsewhere (left = A by convention).

    Historical votes count in their own right (ratings, agreement, consistency) but do not use up the
    study's overlap: `Comparison.votes_count` counts votes collected here, so a study imported with its
    full history still has work for its live annotators."""
    assignment = Assignment.objects.create(
        comparison=comparison, annotator=annotator, left_is_a=True, issued_at=submitted_at,
        expires_at=submitted_at, served_at=None, completed_at=submitted_at,
    )
    choice = {"a": Vote.Choice.LEFT, "b": Vote.Choice.RIGHT}.get(winner, winner)
    vote = Vote.objects.create(
        assignment=assignment, study_id=comparison.study_id, comparison=comparison, annotator=annotator,
        choice=choice, winner=winner, submitted_at=submitted_at, source=Vote.Source.IMPORTED,
        gold_passed=(winner == comparison.gold_answer) if comparison.is_gold else None,
    )
    return vote


def write_pairwise(parsed: ParsedPairwise, dataset_slug: str, study_slug: str, system_names: tuple[str, str],
                   progress: Progress = _noop) -> tuple[Study, ImportSummary]:
    """Generations of both systems, the study (created if new) and every historical judgment."""
    summary = ImportSummary()
    dataset = get_or_create_dataset(dataset_slug)
    write_generations(dataset, pairwise_as_generations(parsed, system_names), summary=summary)
    systems = [System.objects.get(name=name) for name in system_names]
    study = Study.objects.filter(slug=study_slug).first()
    if study is None:
        workers_per_instance = max(
            sum(1 for j in parsed.judgments if j.instance_key == key and j.sample_index == 0)
            for key in parsed.instances)
        study = Study.objects.create(
            slug=study_slug, name=study_slug.replace("-", " "), dataset=dataset,
            sample_pairs_per_unit=len(next(iter(parsed.instances.values()))[0]),
            votes_per_comparison=workers_per_instance, quota=0, leaderboard_public=True,
        )
        study.systems.set(systems)
    elif study.dataset_id != dataset.pk:
        raise ImportFileError(parsed.filename, 1, "study", f"study {study_slug!r} belongs to dataset "
                              f"{study.dataset.slug!r}, not {dataset_slug!r}")
    else:
        study.systems.add(*systems)
    instances = {i.external_id: i for i in Instance.objects.filter(dataset=dataset, external_id__in=list(parsed.instances))}
    generations = {
        (g.instance_id, g.system_id, g.sample_index): g
        for g in Generation.objects.filter(instance__in=instances.values(), system__in=systems)
    }
    submitted_at = timezone.now()
    annotators = {}
    already = set(Vote.objects.filter(study=study).values_list("comparison_id", "annotator_id"))
    comparisons, votes = StudyComparisons(study), HistoricalVotes()
    for judgment in parsed.judgments:
        instance = instances[judgment.instance_key]
        gen1 = generations[(instance.pk, systems[0].pk, judgment.sample_index)]
        gen2 = generations[(instance.pk, systems[1].pk, judgment.sample_index)]
        gen_a, gen_b, swapped = canonical_pair(gen1, gen2)
        comparison, created = comparisons.get(gen_a, gen_b)
        summary.comparisons_created += created
        if judgment.worker not in annotators:
            annotators[judgment.worker] = get_or_create_imported_annotator(study, judgment.worker, summary)
        annotator = annotators[judgment.worker]
        if (comparison.pk, annotator.pk) in already:
            progress(1)
            continue  # re-import of the same file: the vote is already stored
        if judgment.winner_system is None:
            winner = "tie"
        else:
            winner = "a" if (judgment.winner_system == 1) != swapped else "b"
        votes.add(comparison, annotator, winner, submitted_at)
        already.add((comparison.pk, annotator.pk))
        summary.votes_created += 1
        progress(1)
    votes.write()
    if summary.votes_created:
        votes_changed_on_commit(study.pk)
    return study, summary


def write_votes(parsed_votes: list[ParsedVote], study: Study, filename: str,
                progress: Progress = _noop) -> ImportSummary:
    """Historical votes for an existing study; every name must resolve, or nothing is written."""
    summary = ImportSummary()
    study_systems = {s.name: s for s in study.systems.all()}
    all_systems = {s.name: s for s in System.objects.filter(name__in={v.system_a for v in parsed_votes}
                                                             | {v.system_b for v in parsed_votes})}
    instances = {i.external_id: i for i in Instance.objects.filter(
        dataset=study.dataset, external_id__in={v.instance_id for v in parsed_votes})}
    already = set(Vote.objects.filter(study=study).values_list("comparison_id", "annotator_id"))
    generations = {(g.instance_id, g.system_id, g.sample_index): g
                   for g in Generation.objects.filter(instance__in=instances.values(),
                                                      system__in=list(all_systems.values()))}
    in_file: dict[tuple[int, str], int] = {}
    annotators = {}
    comparisons, stored = StudyComparisons(study), HistoricalVotes()
    now = timezone.now()
    for vote in parsed_votes:
        instance = instances.get(vote.instance_id)
        if instance is None:
            raise ImportFileError(filename, vote.line, "instance_id", f"unknown instance {vote.instance_id!r} "
                                  f"in dataset {study.dataset.slug!r}")
        pair = []
        for field_name, system_name, sample in (("system_a", vote.system_a, vote.sample_a),
                                                ("system_b", vote.system_b, vote.sample_b)):
            if system_name not in all_systems:
                raise ImportFileError(filename, vote.line, field_name, f"unknown system {system_name!r}")
            if system_name not in study_systems:
                raise ImportFileError(filename, vote.line, field_name, f"system {system_name!r} is not part of "
                                      f"study {study.slug!r}")
            generation = generations.get((instance.pk, all_systems[system_name].pk, sample))
            if generation is None:
                sample_field = "sample_a" if field_name == "system_a" else "sample_b"
                raise ImportFileError(filename, vote.line, sample_field, f"unknown sample {sample} of system "
                                      f"{system_name!r} for instance {vote.instance_id!r}")
            pair.append(generation)
        gen_a, gen_b, swapped = canonical_pair(*pair)
        comparison, created = comparisons.get(gen_a, gen_b)
        summary.comparisons_created += created
        if vote.annotator not in annotators:
            annotators[vote.annotator] = get_or_create_imported_annotator(study, vote.annotator, summary)
        annotator = annotators[vote.annotator]
        key = (comparison.pk, vote.annotator)
        if key in in_file:
            raise ImportFileError(filename, vote.line, "annotator", f"annotator {vote.annotator!r} already voted "
                                  f"on this comparison on line {in_file[key]}")
        in_file[key] = vote.line
        if (comparison.pk, annotator.pk) in already:
            raise ImportFileError(filename, vote.line, "annotator", f"annotator {vote.annotator!r} already has a "
                                  f"stored vote on this comparison in study {study.slug!r}")
        winner = flip_winner(vote.winner) if swapped else vote.winner
        stored.add(comparison, annotator, winner, vote.created_at or now)
        summary.votes_created += 1
        progress(1)
    stored.write()
    if summary.votes_created:
        votes_changed_on_commit(study.pk)
    return summary


def import_file(kind: str, name: str, raw: bytes, dataset_slug: str, study_slug: str = "",
                system_names: tuple[str, str] = (), fmt: str | None = None) -> tuple[Study | None, ImportSummary]:
    """One uploaded file (admin form, API) in one transaction; raises ImportFileError, writing nothing.

    kind: "generations" (JSONL/CSV into the dataset), "pairwise" (the paper's crowd batch; creates the
    study if new) or "votes" (CSV for the existing study `study_slug`). Returns (study or None, summary).
    """
    from django.conf import settings

    from .importers import parse_generations, parse_pairwise_csv, parse_votes_csv

    with transaction.atomic():
        if kind == "generations":
            parsed = parse_generations(name, settings.IMPORT_MAX_TEXT_BYTES, data=raw, fmt=fmt)
            return None, write_generations(get_or_create_dataset(dataset_slug), parsed)
        if kind == "pairwise":
            parsed = parse_pairwise_csv(name, settings.IMPORT_MAX_TEXT_BYTES, data=raw)
            return write_pairwise(parsed, dataset_slug, study_slug, system_names)
        study = Study.objects.get(slug=study_slug)
        return study, write_votes(parse_votes_csv(name, data=raw), study, name)
