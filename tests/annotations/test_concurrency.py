"""50 annotators at once against a real server on PostgreSQL: no comparison gets more or fewer votes
than the overlap, nobody votes twice on one comparison, and no acknowledged vote is lost.

Each simulated annotator is a thread with its own HTTP session (cookies, CSRF token) that signs in
through a shared multi-use invite link, then asks for items and answers them until the study has
nothing left for it. It needs PostgreSQL: SQLite serialises writers, so it would prove nothing there.
"""
import random
import re
import threading
from collections import Counter

import pytest
import requests

from annotations.models import Assignment, Comparison, InviteLink, Vote
from tests.factories import make_study

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

ANNOTATORS = 50
OVERLAP = 3
TOKEN = re.compile(r'name="token" value="([^"]+)"')


def run_annotator(base, invite_url, slug, seed, acknowledged, failures, barrier):
    rng = random.Random(seed)
    session = requests.Session()
    try:
        session.get(invite_url, timeout=60).raise_for_status()
        barrier.wait(timeout=60)
        session.post(invite_url, data={"csrfmiddlewaretoken": session.cookies["csrftoken"]}, timeout=60)
        page = session.get(f"{base}/s/{slug}/", timeout=60)  # from the tasks page to the study
        for _ in range(100):
            if page.url.endswith("/done/"):
                return
            if page.status_code != 200:
                failures.append(f"page {page.status_code}: {page.text[:200]}")
                return
            token = TOKEN.search(page.text).group(1)
            response = session.post(
                f"{base}/s/{slug}/vote/", timeout=60, headers={"HX-Request": "true"},
                data={"token": token, "choice": rng.choice(["left", "right", "tie", "both_bad"]),
                      "csrfmiddlewaretoken": session.cookies["csrftoken"]})
            if response.status_code == 200:
                acknowledged.append(token)
            else:
                failures.append(f"vote {response.status_code}: {response.text[:200]}")
            page = session.get(f"{base}/s/{slug}/", timeout=60)
        failures.append("annotator did not finish")
    except Exception as exc:  # noqa: BLE001 - reported by the test
        failures.append(repr(exc))
    finally:
        session.close()


@pytest.mark.parametrize("policy", ["all", "adaptive"])
def test_fifty_parallel_annotators_fill_every_comparison_exactly_to_the_overlap(postgres, live_server, policy):
    """Under "adaptive" the recompute (inline: tasks are eager here) rewrites the priorities while the
    others lease and vote."""
    study = make_study(slug="conc", n_instances=10, systems=("alpha-model", "beta-model", "gamma-model"),
                       overlap=OVERLAP, quota=0, policy=policy)
    comparisons = Comparison.objects.filter(study=study).count()
    assert comparisons == 30
    invite = InviteLink.objects.create(max_uses=ANNOTATORS)
    invite.studies.add(study)
    base = live_server.url.replace("localhost", "127.0.0.1")
    invite_url = f"{base}/invite/{invite.token}/"
    acknowledged, failures = [], []
    barrier = threading.Barrier(ANNOTATORS)
    threads = [threading.Thread(target=run_annotator, args=(base, invite_url, "conc", i, acknowledged, failures,
                                                             barrier)) for i in range(ANNOTATORS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []

    votes = Vote.objects.filter(study=study)
    per_comparison = Counter(votes.values_list("comparison_id", flat=True))
    assert len(per_comparison) == comparisons and set(per_comparison.values()) == {OVERLAP}
    assert set(Comparison.objects.filter(study=study).values_list("votes_count", flat=True)) == {OVERLAP}
    pairs = list(votes.values_list("comparison_id", "annotator_id"))
    assert len(pairs) == len(set(pairs)) == comparisons * OVERLAP
    assert len(acknowledged) == len(set(acknowledged)) == comparisons * OVERLAP
    stored = set(votes.values_list("assignment__token", flat=True))
    assert set(acknowledged) == stored
    assert votes.values("annotator").distinct().count() > 10  # the work really was spread
    assert not Assignment.objects.filter(comparison__study=study, completed_at__isnull=True).exists()
