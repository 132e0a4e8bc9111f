"""The assignment queue (annotations.queue): overlap, leases, gold items, consistency units, idempotent votes."""
from datetime import timedelta

import pytest
from django.utils import timezone

from annotations import queue
from annotations.models import (
    Assignment,
    Comparison,
    Study,
    Vote,
)
from tests.factories import answer, make_annotator, make_study

pytestmark = pytest.mark.django_db








def live_load(comparison, now):
    return comparison.votes_count + Assignment.objects.filter(
        comparison=comparison, completed_at__isnull=True, expires_at__gt=now).count()


# --------------------------------------------------------------------------------------------------


def test_overlap_is_never_exceeded_by_leases_and_votes():
    study = make_study(n_instances=3, overlap=2)
    now = timezone.now()
    annotators = [make_annotator() for _ in range(8)]
    got = [queue.next_assignment(study, user, now=now) for user in annotators]
    assert sum(a is not None for a in got) == 6  # 3 comparisons x overlap 2, the rest get nothing
    for comparison in Comparison.objects.filter(study=study):
        assert live_load(comparison, now) == 2
    for user, assignment in zip(annotators, got, strict=True):
        if assignment is not None:
            queue.submit_vote(study, user, assignment.token, "left", now=now)
    assert all(queue.next_assignment(study, u, now=now) is None for u in annotators)
    assert set(Comparison.objects.filter(study=study).values_list("votes_count", flat=True)) == {2}


def test_own_seen_items_are_never_repeated():
    study = make_study(n_instances=5, overlap=3)
    user = make_annotator()
    seen = []
    while (assignment := answer(study, user)) is not None:
        seen.append(assignment.comparison_id)
    assert len(seen) == 5 and len(set(seen)) == 5
    assert Vote.objects.filter(annotator=user).count() == 5


def test_reload_shows_the_same_item_until_answered():
    study = make_study(n_instances=3)
    user = make_annotator()
    first = queue.next_assignment(study, user)
    again = queue.next_assignment(study, user)
    assert again.token == first.token
    assert Assignment.objects.filter(annotator=user).count() == 1


def test_expired_lease_returns_to_the_pool():
    study = make_study(n_instances=1, overlap=1, lease_seconds=60)
    first, second = make_annotator(), make_annotator()
    now = timezone.now()
    held = queue.next_assignment(study, first, now=now)
    assert queue.next_assignment(study, second, now=now) is None
    later = now + timedelta(seconds=61)
    taken = queue.next_assignment(study, second, now=later)
    assert taken is not None and taken.comparison_id == held.comparison_id
    queue.submit_vote(study, second, taken.token, "right", now=later)
    with pytest.raises(queue.VoteRejected) as rejected:  # the first annotator's late answer has no slot left
        queue.submit_vote(study, first, held.token, "left", now=later)
    assert rejected.value.status == 409
    assert Comparison.objects.get(pk=held.comparison_id).votes_count == 1


def test_late_answer_is_kept_while_the_slot_is_still_free():
    study = make_study(n_instances=1, overlap=1, lease_seconds=60)
    user = make_annotator()
    now = timezone.now()
    held = queue.next_assignment(study, user, now=now)
    queue.submit_vote(study, user, held.token, "left", now=now + timedelta(seconds=300))
    assert Vote.objects.get(assignment=held).duration_seconds == pytest.approx(300)


def test_sides_are_drawn_per_assignment_and_decoded_to_canonical_winner():
    study = make_study(n_instances=30, overlap=1)
    user = make_annotator()
    sides = set()
    while (assignment := answer(study, user, choice="left")) is not None:
        sides.add(assignment.left_is_a)
    assert sides == {True, False}
    for vote in Vote.objects.filter(annotator=user).select_related("assignment"):
        assert vote.choice == "left"
        assert vote.winner == ("a" if vote.assignment.left_is_a else "b")
    assert queue.decode_choice("right", left_is_a=True) == "b"
    assert queue.decode_choice("right", left_is_a=False) == "a"
    assert queue.decode_choice("tie", left_is_a=False) == "tie"


def test_vote_twice_is_stored_once():
    study = make_study(n_instances=2)
    user = make_annotator()
    assignment = queue.next_assignment(study, user)
    first = queue.submit_vote(study, user, assignment.token, "left")
    replay = queue.submit_vote(study, user, assignment.token, "right")
    assert not first.replay and replay.replay
    assert replay.vote.pk == first.vote.pk and replay.vote.choice == "left"
    assert Vote.objects.count() == 1
    assert Comparison.objects.get(pk=assignment.comparison_id).votes_count == 1


def test_vote_on_someone_elses_token_is_rejected():
    study = make_study(n_instances=2)
    owner, other = make_annotator(), make_annotator()
    assignment = queue.next_assignment(study, owner)
    with pytest.raises(queue.VoteRejected) as rejected:
        queue.submit_vote(study, other, assignment.token, "left")
    assert rejected.value.status == 404
    assert not Vote.objects.exists()


def test_vote_on_closed_study_is_rejected():
    study = make_study(n_instances=2)
    user = make_annotator()
    assignment = queue.next_assignment(study, user)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED)
    study.refresh_from_db()
    with pytest.raises(queue.VoteRejected):
        queue.submit_vote(study, user, assignment.token, "left")
    assert not Vote.objects.exists()


def test_quality_signals_duration_too_fast_and_side():
    study = make_study(n_instances=2, too_fast=3.0)
    user = make_annotator()
    now = timezone.now()
    fast = queue.next_assignment(study, user, now=now)
    queue.submit_vote(study, user, fast.token, "right", now=now + timedelta(seconds=1))
    slow = queue.next_assignment(study, user, now=now + timedelta(seconds=2))
    queue.submit_vote(study, user, slow.token, "tie", now=now + timedelta(seconds=12))
    fast_vote, slow_vote = Vote.objects.get(assignment=fast), Vote.objects.get(assignment=slow)
    assert fast_vote.too_fast and fast_vote.duration_seconds == pytest.approx(1.0)
    assert not slow_vote.too_fast and slow_vote.duration_seconds == pytest.approx(10.0)
    assert fast_vote.side_chosen == "right" and slow_vote.side_chosen == ""
    assert fast_vote.served_at == fast.served_at and fast_vote.submitted_at == now + timedelta(seconds=1)


def test_gold_item_is_mixed_in_every_n_items_and_scored():
    study = make_study(n_instances=8, gold_every=3)
    golds = list(Comparison.objects.filter(study=study).order_by("id")[:2])
    for gold in golds:
        gold.is_gold, gold.gold_answer = True, "a"
        gold.save()
    user = make_annotator()
    served = []
    while (assignment := queue.next_assignment(study, user)) is not None:
        choice = "left" if assignment.left_is_a else "right"  # always picks canonical A
        queue.submit_vote(study, user, assignment.token, choice)
        served.append(assignment.comparison.is_gold)
    assert sum(served[0:3]) == 1 and sum(served[3:6]) == 1, served  # one gold in each block of three
    assert sum(served) == 2 and len(served) == 8
    assert set(Vote.objects.filter(comparison__is_gold=True).values_list("gold_passed", flat=True)) == {True}
    assert set(Vote.objects.filter(comparison__is_gold=False).values_list("gold_passed", flat=True)) == {None}


def test_gold_positions_are_drawn_per_annotator_at_the_same_average_rate():
    """With gold_every=3 gold used to come at items 3, 6, 9 for everyone: an annotator could count."""
    study = make_study(n_instances=2, gold_every=3)
    users = [make_annotator() for _ in range(60)]
    positions = [[queue.gold_position(study, user, block) for block in range(10)] for user in users]
    assert all(0 <= p < 3 for row in positions for p in row)
    flat = [p for row in positions for p in row]
    assert {flat.count(p) for p in range(3)} and min(flat.count(p) for p in range(3)) > 120  # 600 draws, ~200 each
    assert len({tuple(row) for row in positions}) > 50  # different annotators, different sequences
    assert positions[0] == [queue.gold_position(study, users[0], block) for block in range(10)]  # stable


def test_gold_item_failed_when_answer_differs():
    study = make_study(n_instances=3, gold_every=1)
    Comparison.objects.filter(study=study).update(is_gold=True, gold_answer="b")
    user = make_annotator()
    assignment = queue.next_assignment(study, user)
    queue.submit_vote(study, user, assignment.token, "left" if assignment.left_is_a else "right")
    assert Vote.objects.get(assignment=assignment).gold_passed is False


def test_gold_items_ignore_overlap():
    study = make_study(n_instances=2, gold_every=1, overlap=1)
    Comparison.objects.filter(study=study).update(is_gold=True, gold_answer="a")
    for _ in range(3):
        user = make_annotator()
        assert answer(study, user) is not None and answer(study, user) is not None


def test_consistency_unit_goes_to_one_annotator_interleaved():
    study = make_study(n_instances=4, k=3, pairs=3, overlap=1)
    assert Comparison.objects.filter(study=study).count() == 12
    first, second = make_annotator(), make_annotator()
    units = []
    assignment = answer(study, first)
    units.append(assignment.comparison.unit_key)
    # the first annotator now holds the whole unit: the second one gets another unit
    other = queue.next_assignment(study, second)
    assert other.comparison.unit_key != units[0]
    queue.submit_vote(study, second, other.token, "left")
    while (assignment := answer(study, first)) is not None:
        units.append(assignment.comparison.unit_key)
    assert len(set(units[:9])) == 3
    assert all(units[i] != units[i + 1] for i in range(8)), units  # never two pairs of a unit in a row
    owners = {}
    for vote in Vote.objects.filter(study=study).select_related("comparison"):
        owners.setdefault(vote.comparison.unit_key, set()).add(vote.annotator_id)
    assert all(len(annotators) == 1 for annotators in owners.values()), owners


def test_quota_limits_items_including_reserved_pairs():
    study = make_study(n_instances=4, k=3, pairs=3, overlap=1, quota=4)
    user = make_annotator()
    count = 0
    while answer(study, user) is not None:
        count += 1
    assert count == 4
    assert queue.progress(study, user).quota_met
    assert not Assignment.objects.filter(annotator=user, completed_at__isnull=True).exists()


def test_unselected_comparisons_are_not_served():
    study = make_study(n_instances=3)
    Comparison.objects.filter(study=study).update(selected=False)
    assert queue.next_assignment(study, make_annotator()) is None


def test_vote_updates_ratings_and_schedules_recompute(django_capture_on_commit_callbacks):
    from ranking.models import RatingState

    study = make_study(n_instances=2)
    user = make_annotator()
    assignment = queue.next_assignment(study, user)
    with django_capture_on_commit_callbacks() as callbacks:
        queue.submit_vote(study, user, assignment.token, "left")
    assert RatingState.objects.filter(study=study, method="elo").count() == 2
    assert sum(RatingState.objects.filter(study=study, method="elo").values_list("votes", flat=True)) == 2
    assert len(callbacks) == 1
