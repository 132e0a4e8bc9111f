"""One annotator racing themselves: a vote POST and a page GET at the same moment (a double-click, a
reload during the htmx vote) on a real server and PostgreSQL. Neither may fail or lose the vote.

Before the lock order was fixed, the lease took the annotator's user row FOR UPDATE while the vote,
holding its assignment's lock, needed a KEY SHARE lock on that user row for its foreign key: a
deadlock in 7 of 9 rounds, answered with HTTP 500 and the vote gone.
"""
import re
import threading

import pytest
import requests

from annotations.models import InviteLink, Vote
from tests.factories import make_study

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

ROUNDS = 200
TOKEN = re.compile(r'name="token" value="([^"]+)"')


def test_concurrent_vote_and_reload_of_one_annotator_never_fail_or_lose_a_vote(postgres, live_server, settings):
    settings.VOTE_RATE_LIMIT = "100000/m"  # 200 votes in well under a minute: not what this test is about
    study = make_study(slug="race", n_instances=ROUNDS // 3 + 2, systems=("alpha-model", "beta-model", "gamma-model"),
                       quota=0)
    invite = InviteLink.objects.create(max_uses=1)
    invite.studies.add(study)
    base = live_server.url.replace("localhost", "127.0.0.1")
    voter = requests.Session()
    voter.get(f"{base}/invite/{invite.token}/", timeout=30).raise_for_status()
    voter.post(f"{base}/invite/{invite.token}/", data={"csrfmiddlewaretoken": voter.cookies["csrftoken"]},
               timeout=30).raise_for_status()
    reloader = requests.Session()  # the same browser: the same cookies, a second connection
    reloader.cookies.update(voter.cookies)

    acknowledged, failures = [], []
    page = voter.get(f"{base}/s/race/", timeout=30)
    for _ in range(ROUNDS):
        assert page.status_code == 200, page.text[:300]
        token = TOKEN.search(page.text).group(1)
        start = threading.Barrier(2)
        results = {}

        # Bound as defaults: a thread that outlives join(timeout=60) must not see the next round's values.
        def post_vote(start=start, results=results, token=token):
            start.wait(timeout=10)
            results["vote"] = voter.post(
                f"{base}/s/race/vote/", headers={"HX-Request": "true"}, timeout=30,
                data={"token": token, "choice": "left", "csrfmiddlewaretoken": voter.cookies["csrftoken"]})

        def reload_page(start=start, results=results):
            start.wait(timeout=10)
            results["reload"] = reloader.get(f"{base}/s/race/", timeout=30)

        threads = [threading.Thread(target=post_vote), threading.Thread(target=reload_page)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        for name, response in results.items():
            if response.status_code >= 500:
                failures.append(f"{name}: {response.status_code} {response.text[:200]}")
        if results["vote"].status_code == 200:
            acknowledged.append(token)
        else:
            failures.append(f"vote refused: {results['vote'].status_code} {results['vote'].text[:200]}")
        page = results["vote"]  # the htmx answer is the next item

    assert failures == []
    stored = list(Vote.objects.filter(study=study).values_list("assignment__token", flat=True))
    assert len(acknowledged) == ROUNDS
    assert sorted(stored) == sorted(acknowledged)  # every acknowledged vote stored, none twice
