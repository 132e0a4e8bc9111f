"""Exports read the votes in keyset batches (dashboard.exports.in_vote_order) so that the first row of a
million-vote export comes at once: every vote must still come exactly once, in vote order, across batch
boundaries, including votes that share a submitted_at."""
import pytest
from django.utils import timezone

from annotations.models import Vote
from dashboard import exports
from tests.factories import make_voted_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    return make_voted_study(slug="batches", n_instances=4, k=2, annotators=3)


def test_batched_export_yields_every_vote_once_in_vote_order(study):
    # Three votes at one instant, so a batch boundary falls inside a run of equal timestamps.
    same = timezone.now()
    Vote.objects.filter(pk__in=list(Vote.objects.filter(study=study).order_by("id")
                                    .values_list("id", flat=True)[:3])).update(submitted_at=same)
    expected = list(Vote.objects.filter(study=study).order_by("submitted_at", "id").values_list("id", flat=True))
    assert len(expected) > 7

    for first, batch in ((1, 1), (1, 2), (2, 3), (3, 5), (4, len(expected)), (len(expected), len(expected) + 1),
                         (len(expected) + 1, 2)):
        rows = list(exports.in_vote_order(exports.vote_queryset(study), batch=batch, first=first))
        assert [r["id"] for r in rows] == expected, f"first {first}, batch {batch}"


def test_csv_and_dpo_exports_hold_every_vote_across_batches(study, monkeypatch):
    votes = Vote.objects.filter(study=study)
    decisive = votes.filter(winner__in=("a", "b"), excluded=False).count()
    full = list(exports.records_for(study, "csv"))
    full_dpo = list(exports.records_for(study, "dpo"))
    # Batches of two: the same records as one batch holding everything.
    original = exports.in_vote_order
    monkeypatch.setattr(exports, "in_vote_order", lambda qs, batch=2, first=1: original(qs, batch=2, first=1))
    assert list(exports.records_for(study, "csv")) == full
    assert list(exports.records_for(study, "dpo")) == full_dpo
    assert len(full) == votes.count() and len(full_dpo) == decisive
    csv_text = "".join(exports.iter_export_text(study, "csv"))
    assert csv_text.count("\n") == votes.count() + 1  # header + one line per vote (rationales have no newline)
