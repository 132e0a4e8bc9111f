"""Storing parsed imports: instances, systems and generations; studies, imported annotators, comparisons and
historical votes. The one writer of what a file brings in, whichever path brought it (a command, the admin
upload, the API, the demo loader).

Each writer expects to run inside one `transaction.atomic()` block opened by the caller (`import_file` opens
its own), so that a failure anywhere leaves nothing. Writers read what is already stored once, up front, and
write in bulk (a few statements per 500 rows, not one per row). Writers that store votes announce them
(`signals.votes_changed`, after commit): whichever path imported them, the leaderboards are refreshed by the
one owner of that, ranking, debounced and off the request.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import AnnotatorProfile, Assignment, Comparison, Generation, Instance, Study, System, Vote
from ..services import (
    canonical_pair,
    get_or_create_comparison,
    get_or_create_dataset,
    new_pseudonym,
    unit_key_for,
)
from ..signals import votes_changed_on_commit
from .parse import (
    ImportFileError,
    ParsedGenerations,
    ParsedPairwise,
    ParsedVote,
    flip_winner,
    pairwise_as_generations,
    parse_generations,
    parse_pairwise_csv,
    parse_votes_csv,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

Progress = Callable[[int], None]
Preference = Literal["first", "second", "tie"]


def no_progress(_n: int) -> None:
    """The default progress callback: report nothing."""
    return None


@dataclass
class ImportSummary:
    instances_created: int = 0
    generations_created: int = 0
    systems_created: int = 0
    votes_created: int = 0
    comparisons_created: int = 0
    annotators_created: int = 0

    def as_text(self) -> str:
        parts = [f"{value} {key.replace('_', ' ')}" for key, value in vars(self).items() if value]
        return ", ".join(parts) or "nothing new (everything was already there)"


def write_generations(dataset, parsed: ParsedGenerations, progress: Progress = no_progress,
                      summary: ImportSummary | None = None) -> ImportSummary:
    """Upsert instances, systems and generations. Call inside `transaction.atomic()`.

    A stored generation whose text differs from the file's is an error, not an overwrite: votes may
    already refer to it. An empty text is refused whichever reader produced it: nobody can judge it.
    """
    summary = summary or ImportSummary()
    systems = {}
    for system_name in parsed.systems:
        systems[system_name], created = System.objects.get_or_create(name=system_name)
        summary.systems_created += created
    existing = {i.external_id: i for i in Instance.objects.filter(dataset=dataset,
                                                                  external_id__in=list(parsed.instances))}
    new_instances = [
        Instance(dataset=dataset, external_id=p.external_id, input=p.input or "", reference=p.reference or "",
                 metadata=p.metadata)
        for key, p in parsed.instances.items() if key not in existing
    ]
    for p in parsed.instances.values():
        stored = existing.get(p.external_id)
        if stored is not None and p.input is not None and stored.input and p.input != stored.input:
            raise ImportFileError(parsed.filename, p.line, "input", f"differs from the stored input of instance "
                                  f"{p.external_id!r} in dataset {dataset.slug!r}")
    Instance.objects.bulk_create(new_instances, batch_size=500)
    summary.instances_created += len(new_instances)
    instances = {i.external_id: i for i in Instance.objects.filter(dataset=dataset,
                                                                   external_id__in=list(parsed.instances))}
    stored_generations = {
        (g.instance_id, g.system_id, g.sample_index): g.text
        for g in Generation.objects.filter(instance__in=instances.values()).only(
            "instance_id", "system_id", "sample_index", "text")
    }
    to_create = []
    for number, g in enumerate(parsed.generations, start=1):
        if not g.text.strip():
            raise ImportFileError(parsed.filename, g.line, g.field, "is empty")
        instance = instances[g.external_id]
        key = (instance.pk, systems[g.system].pk, g.sample_index)
        stored_text = stored_generations.get(key)
        if stored_text is None:
            to_create.append(Generation(instance=instance, system=systems[g.system], sample_index=g.sample_index,
                                        text=g.text))
            stored_generations[key] = g.text
        elif stored_text != g.text:
            raise ImportFileError(parsed.filename, g.line, g.field, f"differs from the stored sample "
                                  f"{g.sample_index} of instance {g.external_id!r}, system {g.system!r}")
        if number % 500 == 0:
            progress(500)
    progress(len(parsed.generations) % 500)
    Generation.objects.bulk_create(to_create, batch_size=500)
    summary.generations_created += len(to_create)
    return summary


IMPORTED_USERNAME_PREFIX = "imported~"  # "~" is outside Django's username validator: no sign-up can take it
JUDGE_USERNAME_PREFIX = "judge~"  # an LLM judge's account (the judges app keeps its endpoint and prompt)
CREATE_ATTEMPTS = 5


def get_or_create_judge_account(name: str):
    """The account an LLM judge's votes are stored under, site-wide, found again by its name (no usable
    password: nobody signs in as a judge). The name is the judge's, shown to staff only."""
    User = get_user_model()
    username = JUDGE_USERNAME_PREFIX + name
    if len(username) > (User._meta.get_field("username").max_length or 150):
        raise ValueError(f"judge name {name!r} is too long")
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User(username=username)
        user.set_unusable_password()
        user.save()
        AnnotatorProfile.objects.create(user=user, pseudonym=new_pseudonym())
    return user


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


class HistoricalVotes:
    """Historical votes collected while a file is written, stored in bulk by `write()`: two INSERTs per 500
    votes instead of two per vote (the PandaLM demo's 2,817 votes were 5,634 statements). Each vote is what
    `store_historical_vote` stores."""

    def __init__(self, source: str = Vote.Source.IMPORTED) -> None:
        self.source = source
        self.rows: list[tuple[Comparison, User, str, datetime, bool]] = []

    def add(self, comparison: Comparison, annotator: User, winner: str, submitted_at: datetime,
            left_is_a: bool = True) -> None:
        """left_is_a: the order the votes were cast in when the file knows it (a judge's); else A by convention."""
        self.rows.append((comparison, annotator, winner, submitted_at, left_is_a))

    def write(self) -> list[Vote]:
        assignments = [Assignment(comparison=c, annotator=a, left_is_a=left, issued_at=t, expires_at=t,
                                  served_at=None, completed_at=t) for c, a, _, t, left in self.rows]
        Assignment.objects.bulk_create(assignments, batch_size=500)
        stored = Vote.objects.bulk_create([
            Vote(assignment=assignment, study_id=c.study_id, comparison=c, annotator=a,
                 choice={"a": Vote.Choice.LEFT if left else Vote.Choice.RIGHT,
                         "b": Vote.Choice.RIGHT if left else Vote.Choice.LEFT}.get(w, w), winner=w, submitted_at=t,
                 source=self.source, gold_passed=(w == c.gold_answer) if c.is_gold else None)
            for assignment, (c, a, w, t, left) in zip(assignments, self.rows, strict=True)], batch_size=500)
        self.rows = []
        return stored


class StudyComparisons:
    """The study's comparisons by their two generations, read once; missing ones are created on first use."""

    def __init__(self, study: Study):
        self.study = study
        self.known = {(c.generation_a_id, c.generation_b_id): c for c in Comparison.objects.filter(study=study)}
        self.fresh: set[tuple[int, int]] = set()  # bulk-created, not yet reported as created by `get`

    def create_missing(self, pairs: Iterable[tuple[Generation, Generation]]) -> None:
        """Create the comparisons of these canonical pairs that do not exist yet, in bulk (the LLMFAO demo's
        1,850 were 7,400 statements one by one); `get` then reports each as created on its first use."""
        missing: dict[tuple[int, int], Comparison] = {}
        for a, b in pairs:
            key = (a.pk, b.pk)
            if key not in self.known and key not in missing:
                missing[key] = Comparison(
                    study=self.study, generation_a=a, generation_b=b, instance_id=a.instance_id,
                    system_a_id=a.system_id, system_b_id=b.system_id,
                    unit_key=unit_key_for(a.instance_id, a.system_id, b.system_id))
        if not missing:
            return
        Comparison.objects.bulk_create(list(missing.values()), batch_size=500)
        stored = {(c.generation_a_id, c.generation_b_id): c for c in Comparison.objects.filter(
            study=self.study, generation_a_id__in={a for a, _ in missing})}
        for key in missing:
            self.known[key] = stored[key]
            self.fresh.add(key)

    def get(self, generation_a: Generation, generation_b: Generation) -> tuple[Comparison, bool]:
        key = (generation_a.pk, generation_b.pk)
        if key in self.fresh:
            self.fresh.discard(key)
            return self.known[key], True
        if key in self.known:
            return self.known[key], False
        comparison, created = get_or_create_comparison(self.study, generation_a, generation_b)
        self.known[key] = comparison
        return comparison, created


def store_historical_vote(comparison: Comparison, annotator, winner: str, submitted_at: datetime) -> Vote:
    """One historical vote, stored as `HistoricalVotes` stores every imported vote (a completed assignment,
    left = A by convention, plus its vote); returns the vote.

    Historical votes count in their own right (ratings, agreement, consistency) but do not use up the
    study's overlap: `Comparison.votes_count` counts votes collected here, so a study imported with its
    full history still has work for its live annotators."""
    votes = HistoricalVotes()
    votes.add(comparison, annotator, winner, submitted_at)
    return votes.write()[0]


@dataclass(frozen=True)
class Judgment:
    """A judgment made elsewhere between two generations of one instance, by a worker named in the file."""

    first: Generation
    second: Generation
    worker: str
    preferred: Preference


def store_judgments(study: Study, judgments: Iterable[Judgment], summary: ImportSummary,
                    submitted_at: datetime | None = None, progress: Progress = no_progress) -> None:
    """Comparisons (created as needed), one imported annotator per worker and one historical vote per
    judgment, in bulk. A judgment whose worker already has a vote on that comparison is skipped: importing
    the same file again adds nothing."""
    submitted_at = submitted_at or timezone.now()
    annotators: dict[str, User] = {}
    already = set(Vote.objects.filter(study=study).values_list("comparison_id", "annotator_id"))
    comparisons, votes = StudyComparisons(study), HistoricalVotes()
    judgments = list(judgments)
    comparisons.create_missing(canonical_pair(j.first, j.second)[:2] for j in judgments)
    for judgment in judgments:
        gen_a, gen_b, swapped = canonical_pair(judgment.first, judgment.second)
        comparison, created = comparisons.get(gen_a, gen_b)
        summary.comparisons_created += created
        if judgment.worker not in annotators:
            annotators[judgment.worker] = get_or_create_imported_annotator(study, judgment.worker, summary)
        annotator = annotators[judgment.worker]
        progress(1)
        if (comparison.pk, annotator.pk) in already:
            continue
        if judgment.preferred == "tie":
            winner = "tie"
        else:
            winner = "a" if (judgment.preferred == "first") != swapped else "b"
        votes.add(comparison, annotator, winner, submitted_at)
        already.add((comparison.pk, annotator.pk))
        summary.votes_created += 1
    votes.write()
    if summary.votes_created:
        votes_changed_on_commit(study.pk)


def write_pairwise(parsed: ParsedPairwise, dataset_slug: str, study_slug: str, system_names: tuple[str, str],
                   progress: Progress = no_progress) -> tuple[Study, ImportSummary]:
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
    instances = {i.external_id: i
                 for i in Instance.objects.filter(dataset=dataset, external_id__in=list(parsed.instances))}
    generations = {
        (g.instance_id, g.system_id, g.sample_index): g
        for g in Generation.objects.filter(instance__in=instances.values(), system__in=systems)
    }
    def judgments() -> Iterable[Judgment]:
        for judgment in parsed.judgments:
            instance = instances[judgment.instance_key]
            first = generations[(instance.pk, systems[0].pk, judgment.sample_index)]
            second = generations[(instance.pk, systems[1].pk, judgment.sample_index)]
            preferred: Preference = (
                "tie" if judgment.winner_system is None else "first" if judgment.winner_system == 1 else "second")
            yield Judgment(first, second, judgment.worker, preferred)

    store_judgments(study, judgments(), summary, progress=progress)
    return study, summary


def write_votes(parsed_votes: list[ParsedVote], study: Study, filename: str,
                progress: Progress = no_progress, judge: str | None = None) -> ImportSummary:
    """Historical votes for an existing study; every name must resolve, or nothing is written.

    With `judge`, every vote is that LLM judge's (source `judge`, the file's annotator column ignored), and
    the file's order is the order the judge saw: system_a was shown first."""
    summary = ImportSummary()
    judge_account = get_or_create_judge_account(judge) if judge else None
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
    comparisons = StudyComparisons(study)
    stored = HistoricalVotes(Vote.Source.JUDGE if judge_account else Vote.Source.IMPORTED)
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
        voter = f"judge {judge!r}" if judge else f"annotator {vote.annotator!r}"
        if judge_account is not None:
            annotator = judge_account
        else:
            if vote.annotator not in annotators:
                annotators[vote.annotator] = get_or_create_imported_annotator(study, vote.annotator, summary)
            annotator = annotators[vote.annotator]
        key = (comparison.pk, judge if judge else vote.annotator)
        if key in in_file:
            raise ImportFileError(filename, vote.line, "annotator", f"{voter} already voted "
                                  f"on this comparison on line {in_file[key]}")
        in_file[key] = vote.line
        if (comparison.pk, annotator.pk) in already:
            raise ImportFileError(filename, vote.line, "annotator", f"{voter} already has a "
                                  f"stored vote on this comparison in study {study.slug!r}")
        winner = flip_winner(vote.winner) if swapped else vote.winner
        stored.add(comparison, annotator, winner, vote.created_at or now, left_is_a=not swapped)
        summary.votes_created += 1
        progress(1)
    stored.write()
    if summary.votes_created:
        votes_changed_on_commit(study.pk)
    return summary


def import_file(kind: str, name: str, raw: bytes, dataset_slug: str, study_slug: str = "",
                system_names: tuple[str, str] | tuple[()] = (),
                fmt: str | None = None) -> tuple[Study | None, ImportSummary]:
    """One uploaded file (admin form, API) in one transaction; raises ImportFileError, writing nothing.

    kind: "generations" (JSONL/CSV into the dataset), "pairwise" (the paper's crowd batch; creates the
    study if new) or "votes" (CSV for the existing study `study_slug`). Returns (study or None, summary).
    """
    with transaction.atomic():
        if kind == "generations":
            parsed = parse_generations(name, settings.IMPORT_MAX_TEXT_BYTES, data=raw, fmt=fmt)
            return None, write_generations(get_or_create_dataset(dataset_slug), parsed)
        if kind == "pairwise":
            batch = parse_pairwise_csv(name, settings.IMPORT_MAX_TEXT_BYTES, data=raw)
            # A pairwise import always comes with two names: both forms require them (parse_system_names).
            return write_pairwise(batch, dataset_slug, study_slug, system_names)  # type: ignore[arg-type]
        study = Study.objects.get(slug=study_slug)
        return study, write_votes(parse_votes_csv(name, data=raw), study, name)
