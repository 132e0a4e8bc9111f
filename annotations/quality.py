"""Quality control: staff leave votes, or whole annotators, out of a study's results, with the reason
kept, and can restore them. Leaderboards, agreement, consistency and the DPO export read only votes
that are not excluded; the other exports carry the `excluded` flag and reason.

An excluded annotator keeps being served items (telling a spammer they were caught only teaches them
when to stop); what they vote from then on is excluded as it arrives (`queue.submit_vote`).
"""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .models import AnnotatorExclusion, Study, Vote
from .signals import votes_changed_on_commit

REASON_MAX_CHARS = Vote._meta.get_field("exclusion_reason").max_length


class QualityError(ValueError):
    """The request cannot be carried out (message shown to staff)."""


def clean_reason(reason: str) -> str:
    reason = " ".join((reason or "").split())
    if not reason:
        raise QualityError("Give a reason (it is kept with the votes and shown in exports).")
    if "\x00" in reason:
        raise QualityError("The reason contains a character that cannot be stored.")
    if len(reason) > REASON_MAX_CHARS:  # type: ignore[operator]  # a CharField's max_length; stubs say int | None
        raise QualityError(f"Keep the reason under {REASON_MAX_CHARS} characters.")
    return reason


def _changed(study_id: int) -> None:
    votes_changed_on_commit(study_id)


def exclude_votes(study: Study, vote_ids, reason: str, by=None) -> int:
    """Exclude these votes of the study; returns how many changed."""
    reason = clean_reason(reason)
    with transaction.atomic():
        changed = Vote.objects.filter(study=study, pk__in=list(vote_ids), excluded=False).update(
            excluded=True, exclusion_reason=reason, excluded_at=timezone.now(), excluded_by=by,
            excluded_with_annotator=False)
        if changed:
            _changed(study.pk)
    return changed


def restore_votes(study: Study, vote_ids) -> int:
    with transaction.atomic():
        changed = Vote.objects.filter(study=study, pk__in=list(vote_ids), excluded=True).update(
            excluded=False, exclusion_reason="", excluded_at=None, excluded_by=None, excluded_with_annotator=False)
        if changed:
            _changed(study.pk)
    return changed


def exclude_annotator(study: Study, annotator, reason: str, by=None) -> int:
    """Leave the annotator out of the study: their votes so far and from now on. Returns votes excluded."""
    reason = clean_reason(reason)
    with transaction.atomic():
        exclusion, created = AnnotatorExclusion.objects.get_or_create(
            study=study, annotator=annotator, defaults={"reason": reason, "created_by": by})
        if not created:
            raise QualityError("This annotator is already excluded from the study.")
        changed = Vote.objects.filter(study=study, annotator=annotator, excluded=False).update(
            excluded=True, exclusion_reason=f"annotator excluded: {reason}", excluded_at=timezone.now(),
            excluded_by=by, excluded_with_annotator=True)
        _changed(study.pk)
    return changed


def restore_annotator(study: Study, annotator) -> int:
    """Undo `exclude_annotator`: votes excluded with the annotator come back (votes excluded one by one stay)."""
    with transaction.atomic():
        deleted, _ = AnnotatorExclusion.objects.filter(study=study, annotator=annotator).delete()
        if not deleted:
            raise QualityError("This annotator is not excluded from the study.")
        changed = Vote.objects.filter(study=study, annotator=annotator, excluded_with_annotator=True).update(
            excluded=False, exclusion_reason="", excluded_at=None, excluded_by=None, excluded_with_annotator=False)
        _changed(study.pk)
    return changed
