"""An annotator is sent to the done page only when nothing is left, not when the items left are held for
an instant by someone else (a vote, a lease, the adaptive recompute writing priorities). Real PostgreSQL:
the lease query skips locked rows (SKIP LOCKED), which is what made this happen."""
from __future__ import annotations

import threading
import time

import pytest
from django.db import connections, transaction

from annotations import queue
from annotations.models import Comparison
from ranking.priorities import write_priorities
from tests.factories import make_annotator, make_study

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def hold_rows(ids, seconds, held):
    try:
        with transaction.atomic():
            list(Comparison.objects.select_for_update().filter(pk__in=ids))
            held.set()
            time.sleep(seconds)
    finally:
        connections.close_all()


def test_an_item_held_for_an_instant_is_still_served_not_the_done_page(postgres):
    study = make_study(slug="held", n_instances=1)
    (only,) = Comparison.objects.filter(study=study).values_list("pk", flat=True)
    held = threading.Event()
    holder = threading.Thread(target=hold_rows, args=([only], 0.3, held))
    holder.start()
    held.wait(5)
    assignment = queue.next_assignment(study, make_annotator())
    holder.join()
    assert assignment is not None and assignment.comparison_id == only


def test_the_priority_write_skips_held_rows_instead_of_waiting_for_them(postgres):
    study = make_study(slug="prio", n_instances=3)
    ids = sorted(Comparison.objects.filter(study=study).values_list("pk", flat=True))
    held = threading.Event()
    holder = threading.Thread(target=hold_rows, args=([ids[0]], 1.0, held))
    holder.start()
    held.wait(5)
    written = write_priorities(ids, [5.0, 6.0, 7.0])  # returns at once: the held row is left as it was
    still_held = holder.is_alive()
    holder.join()
    assert written == 2 and still_held
    assert dict(Comparison.objects.filter(pk__in=ids).values_list("pk", "priority")) == {
        ids[0]: Comparison.objects.get(pk=ids[0]).priority, ids[1]: 6.0, ids[2]: 7.0}
    assert Comparison.objects.get(pk=ids[0]).priority != 5.0
