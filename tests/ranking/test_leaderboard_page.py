"""The public leaderboard page, its JSON twin and the index: visibility, every column, the rank-change
marker, method errors shown as messages, escaping."""
import json
import random
import re

import pytest

from annotations.models import Study
from ranking.models import LeaderboardSnapshot
from ranking.presenters import leaderboard_payload
from ranking.services import refresh_snapshots, release_leaderboard
from tests.factories import add_vote, make_rating_study

pytestmark = pytest.mark.django_db

ROW_KEYS = {"system", "rating", "ci_low", "ci_high", "rank", "votes", "win_rate"}


def weighting_flips_study(slug="flips", names=("alpha", "beta", "gamma"), **fields) -> Study:
    """alpha beats beta on separable instances, beta beats alpha more often on inseparable ones, and gamma
    loses to both: the plain methods put beta first, the weighted ones alpha."""
    alpha, beta, gamma = names
    study = make_rating_study(slug, systems=names, n_instances=4, **fields)
    plan = ([(alpha, beta, "x", 0, 0.9)] * 25 + [(alpha, beta, "y", 1, 0.0)] * 45
            + [(alpha, gamma, "x", 2, 0.5)] * 15 + [(beta, gamma, "x", 3, 0.5)] * 15)
    random.Random(7).shuffle(plan)
    for x, y, outcome, instance, separability in plan:
        add_vote(study, x, y, outcome, instance=instance, separability=separability, apply=False)
    return study


def table_rows(html: str) -> list[str]:
    """The <tr> blocks of the leaderboard table (not the heatmap), best first."""
    table = re.search(r'<table class="leaderboard">(.*?)</table>', html, re.S).group(1)
    return re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)


def row_of(html: str, system: str) -> str:
    return next(r for r in table_rows(html) if f'<th scope="row" class="system">{system}</th>' in r)


def test_page_shows_every_column_and_marks_rank_changes(staff_client):
    study = weighting_flips_study()
    assert not LeaderboardSnapshot.objects.filter(study=study).exists()  # computed on the spot, in memory
    response = staff_client.get(f"/leaderboard/{study.slug}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert not LeaderboardSnapshot.objects.filter(study=study).exists()  # a GET never writes
    refresh_snapshots(study)  # the stored recompute gives the same numbers (seeded bootstrap)

    for header in ("Rank", "Model", ">Elo<", "Weighted Elo", "Bradley-Terry (95% CI)",
                   "Weighted Bradley-Terry (95% CI)", "Votes", "Win rate"):
        assert header in html
    assert [re.search(r'class="system">(.*?)</th>', r).group(1) for r in table_rows(html)] == ["beta", "alpha", "gamma"]

    # Numbers: ratings, intervals, votes, win rates from the stored snapshots.
    bt = {r["system"]: r for r in LeaderboardSnapshot.objects.get(study=study, method="bt").payload["ratings"]}
    beta_row = row_of(html, "beta")
    assert f'{bt["beta"]["rating"]:.1f}' in beta_row
    assert f'[{bt["beta"]["ci_low"]:.1f}, {bt["beta"]["ci_high"]:.1f}]' in beta_row
    assert f'>{bt["beta"]["votes"]}<' in beta_row and f'{100 * bt["beta"]["win_rate"]:.1f}%' in beta_row

    # The weighted methods move alpha up and beta down, with an arrow and words for screen readers.
    weighted_bt = {r["system"]: r["rank"] for r in
                   LeaderboardSnapshot.objects.get(study=study, method="weighted_bt").payload["ratings"]}
    assert weighted_bt["alpha"] == 1 and bt["alpha"]["rank"] == 2
    alpha_row = row_of(html, "alpha")
    assert 'class="badge up rank-shift"' in alpha_row and "▲1" in alpha_row
    assert '<span class="visually-hidden">ranked 1 place higher when weighted (rank 1 instead of 2)</span>' in alpha_row
    assert 'class="badge down rank-shift"' in beta_row and "▼1" in beta_row
    assert "lower when weighted" in beta_row

    # Plots: vendored Chart.js, our script, the data as json_script, labelled canvases, the heatmap table.
    assert "/static/vendor/chartjs/chart.umd.min.js" in html and "/static/js/leaderboard.js" in html
    assert "cdn" not in html.lower()
    assert 'id="bt-chart" role="img"' in html and 'id="elo-chart" role="img"' in html
    data = json.loads(re.search(r'<script id="leaderboard-data" type="application/json">(.*?)</script>', html,
                                re.S).group(1))
    assert data["systems"] == ["beta", "alpha", "gamma"]
    assert data["ratings"]["bt"][0] == pytest.approx(bt["beta"]["rating"])
    assert data["ci_low"]["bt"][0] == pytest.approx(bt["beta"]["ci_low"])
    assert '<table class="heatmap">' in html and "n=70" in html  # alpha and beta met 70 times

    # How the numbers were made.
    assert "100 bootstrap rounds" in html and "100 votes" in html and "computed" in html


def test_without_separability_the_weighted_boards_are_the_plain_ones_and_say_so(staff_client):
    """Weighted boards used to vanish ("every vote has weight 0") without separability; with the weight
    floor they rank every system and say they equal the plain boards (docs/leaderboards.md)."""
    study = make_rating_study("no-separability", systems=("alpha", "beta"))
    for i in range(6):
        add_vote(study, "alpha", "beta", "x" if i % 3 else "y", instance=i % 5, separability=None, apply=False)
    html = staff_client.get(f"/leaderboard/{study.slug}/").content.decode()
    assert "not available" not in html
    assert "weights are all the floor, the weighted board is the plain one" in html
    assert ">Elo</th>" in html and "Weighted Elo</th>" in html

    payload = staff_client.get(f"/leaderboard/{study.slug}.json").json()
    assert payload["methods"]["weighted_elo"]["ratings"] == payload["methods"]["elo"]["ratings"]


def test_disconnected_votes_give_a_message_and_no_table(staff_client):
    study = make_rating_study("islands")
    add_vote(study, "alpha", "beta", "x", separability=0.5, apply=False)
    add_vote(study, "gamma", "delta", "x", separability=0.5, apply=False)
    html = staff_client.get(f"/leaderboard/{study.slug}/").content.decode()
    assert "disconnected groups" in html
    assert '<table class="leaderboard">' not in html and "bt-chart" not in html
    assert "No ranking can be computed" in html
    payload = staff_client.get(f"/leaderboard/{study.slug}.json").json()
    assert all(set(method) == {"error"} for method in payload["methods"].values())


def test_json_endpoint_shape(staff_client):
    study = weighting_flips_study()
    refresh_snapshots(study, rounds=20)
    response = staff_client.get(f"/leaderboard/{study.slug}.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    payload = response.json()
    assert payload["study"] == study.slug
    assert set(payload["methods"]) == {"elo", "weighted_elo", "bt", "weighted_bt"}
    for method, body in payload["methods"].items():
        assert body["method"] == method
        assert body["rounds"] == 20 and body["votes_used"] == 100 and "computed_at" in body
        assert [set(row) for row in body["ratings"]] == [ROW_KEYS] * 3
        assert [row["rank"] for row in body["ratings"]] == sorted(row["rank"] for row in body["ratings"])
        assert body["systems"] == [row["system"] for row in body["ratings"]]
    assert payload["methods"]["bt"]["ratings"][0]["system"] == "beta"
    assert payload["methods"]["weighted_bt"]["ratings"][0]["system"] == "alpha"
    assert leaderboard_payload(study) == payload  # the function the REST API reuses


@pytest.mark.parametrize("fields", [{"leaderboard_public": False}, {"status": Study.Status.DRAFT}])
def test_unpublished_leaderboards_are_404_except_for_staff(client, django_user_model, fields):
    study = weighting_flips_study("hidden", **fields)
    assert client.get(f"/leaderboard/{study.slug}/").status_code == 404
    assert client.get(f"/leaderboard/{study.slug}.json").status_code == 404
    assert client.get("/leaderboard/nope/").status_code == 404
    assert study.name not in client.get("/leaderboard/").content.decode()

    annotator = django_user_model.objects.create_user("someone", password="x-pass-123")
    client.force_login(annotator)
    assert client.get(f"/leaderboard/{study.slug}/").status_code == 404

    staff = django_user_model.objects.create_user("boss", password="x-pass-123", is_staff=True)
    client.force_login(staff)
    response = client.get(f"/leaderboard/{study.slug}/")
    assert response.status_code == 200 and "This leaderboard is not public" in response.content.decode()
    assert client.get(f"/leaderboard/{study.slug}.json").status_code == 200
    assert study.name in client.get("/leaderboard/").content.decode()


def test_released_studies_are_public_and_the_index_lists_them(client):
    open_study = weighting_flips_study("open-one")
    closed = make_rating_study("closed-one", systems=("alpha", "beta"), status=Study.Status.CLOSED)
    add_vote(closed, "alpha", "beta", "x", apply=False)
    unreleased = weighting_flips_study("not-yet")
    for study in (open_study, closed):
        release_leaderboard(study, "staff", refresh_snapshots(study, rounds=10))
    index = client.get("/leaderboard/").content.decode()
    assert f'href="/leaderboard/{open_study.slug}/"' in index and f'href="/leaderboard/{closed.slug}/"' in index
    assert f'href="/leaderboard/{unreleased.slug}/"' not in index
    assert client.get(f"/leaderboard/{closed.slug}/").status_code == 200
    assert client.get(f"/leaderboard/{unreleased.slug}/").status_code == 404

    payload = client.get(f"/leaderboard/{open_study.slug}.json").json()
    assert set(payload) == {"study", "released_at", "reason", "votes_counted", "methods"}
    assert payload["votes_counted"] == 100 and payload["methods"]["bt"]["ratings"][0]["system"] == "beta"


def test_system_names_are_escaped(staff_client):
    evil = '<script>alert("x")</script>'
    study = weighting_flips_study("escaping", names=(evil, "beta & co", "gamma"))
    html = staff_client.get(f"/leaderboard/{study.slug}/").content.decode()
    assert evil not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "beta &amp; co" in html
    assert "\\u003Cscript\\u003E" in html  # inside the json_script data


def test_page_says_the_rating_is_the_bootstrap_median_and_ranks_weighted_boards_without_separability(
        client, django_user_model):
    """Every rating on the page lies inside its interval (it is the bootstrap median, as the caption says),
    and with no separability at all the weighted methods are the plain boards, saying so, not an error.
    (Seen as staff: the live standings, whatever the public release policy.)"""
    client.force_login(django_user_model.objects.create_user("median-staff", password="x-pass-123", is_staff=True))
    study = make_rating_study("no-separability-floor", systems=("alpha", "beta", "gamma"))
    for i in range(12):
        x, y = [("alpha", "beta"), ("beta", "gamma"), ("alpha", "gamma")][i % 3]
        add_vote(study, x, y, "x" if i % 4 else "y", instance=i % 5, separability=None, apply=False)
    html = client.get(f"/leaderboard/{study.slug}/").content.decode()
    assert "Each rating is the median of its method's bootstrap ratings (100 resamples of the votes)" in html
    assert "max(separability clipped to [0, 1], 0.05)" in html
    assert "not available" not in html
    assert "weights are all the floor, the weighted board is the plain one" in html

    payload = client.get(f"/leaderboard/{study.slug}.json").json()["methods"]
    for method, body in payload.items():
        assert body["point"] == "bootstrap median of 100 rounds", method
        for row in body["ratings"]:
            assert row["ci_low"] <= row["rating"] <= row["ci_high"], (method, row)
    assert payload["weighted_elo"]["ratings"] == payload["elo"]["ratings"]
    assert payload["weighted_bt"]["ratings"] == payload["bt"]["ratings"]


def test_head_to_head_table_has_a_cell_per_pair_with_escaped_names(staff_client):
    """The table is built in one string (ranking.templatetags.leaderboard_tags): one row per model, a cell
    per opponent with its share and count, a 'same model' cell on the diagonal, 'never compared' where two
    models never met, and names escaped."""
    names = ("<i>alpha</i>", "beta & co", "gamma", "delta")
    study = make_rating_study("heat", systems=names, n_instances=2)
    plan = ([(names[0], names[1], "x")] * 3 + [(names[0], names[1], "y")] + [(names[1], names[2], "x")] * 2
            + [(names[2], names[3], "tie")] * 2)
    for x, y, outcome in plan:
        add_vote(study, x, y, outcome, apply=False)
    html = staff_client.get(f"/leaderboard/{study.slug}/").content.decode()
    table = re.search(r'<table class="heatmap">(.*?)</table>', html, re.S).group(1)
    body = table.split("<tbody>")[1]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    assert len(rows) == 4 and all(r.count("<td") == 4 for r in rows)
    assert "<i>alpha</i>" not in table and "&lt;i&gt;alpha&lt;/i&gt;" in table and "beta &amp; co" in table
    assert body.count('<td class="self">') == 4
    assert body.count("never compared") == 6  # alpha-gamma, alpha-delta, beta-delta, both ways
    alpha = next(r for r in rows if "&lt;i&gt;alpha" in r.split("</th>")[0])
    assert "75%<span" in alpha and "n=4</span>" in alpha  # 3 wins of 4 against beta
    assert re.search(r'<td class="rate" style="background-color: #[0-9a-f]{6}; color: #(000|fff)">50%', body)
