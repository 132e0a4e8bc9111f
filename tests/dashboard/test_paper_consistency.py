"""The paper's check, live, on the separability paper's two crowd batches with real separability
(BERTScore with the shipped MiniLM model, about a minute per dataset on a CPU, computed once here):
per-unit rating consistency rises with separability (Spearman rho > 0, p < 0.05) in both studies, and
the dashboard's separability page, consistency scatter, leaderboards and exports show the results."""
import io
import json

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import transaction

from annotations.imports.parse import parse_pairwise_csv
from annotations.imports.write import write_pairwise
from annotations.models import Study
from dashboard import queries
from demo import sources as demo

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def paper(django_db_setup, django_db_blocker):
    from ranking.services import rebuild_study_ratings
    from separability.services import compute_dataset_separability

    with django_db_blocker.unblock():
        for item in demo.PAPER_DEMOS:
            with transaction.atomic():
                parsed = parse_pairwise_csv(demo.DEMO_DIR / item.file, settings.IMPORT_MAX_TEXT_BYTES)
                write_pairwise(parsed, item.dataset, item.study, item.systems)
        runs = {item.dataset: compute_dataset_separability(item.dataset) for item in demo.PAPER_DEMOS}
        for item in demo.PAPER_DEMOS:
            rebuild_study_ratings(Study.objects.get(slug=item.study), rounds=20)
        yield runs
        call_command("flush", "--noinput", verbosity=0)


@pytest.mark.parametrize("item", demo.PAPER_DEMOS, ids=[p.study for p in demo.PAPER_DEMOS])
def test_consistency_rises_with_separability(paper, item):
    run = paper[item.dataset]
    assert run.status == "done" and not run.errors and run.done == run.total == 50
    scatter = queries.consistency_scatter(Study.objects.get(slug=item.study))
    assert scatter["note"] == ""
    [pair] = scatter["pairs"]
    assert {pair["system_a"], pair["system_b"]} == set(item.systems)
    assert pair["n"] == 50 and len(pair["points"]) == 50
    assert pair["rho"] > 0 and pair["p"] < 0.05, pair


@pytest.mark.parametrize("item", demo.PAPER_DEMOS, ids=[p.study for p in demo.PAPER_DEMOS])
def test_study_page_shows_the_scatter_and_both_leaderboards(paper, staff_client, item):
    response = staff_client.get(f"/dashboard/studies/{item.study}/")
    html = response.content.decode()
    [pair] = response.context["consistency"]["pairs"]
    assert 'data-chart="scatter-1"' in html and f'<span class="rho">{pair["rho"]:.3f}</span>' in html
    chart = json.loads(html.split('<script id="scatter-1" type="application/json">')[1].split("</script>")[0])
    assert len(chart["data"]["datasets"][0]["data"]) == 50
    for board in response.context["boards"]["comparisons"]:
        assert board["plain"]["ratings"] and board["weighted"]["ratings"], board["title"]
        assert all(row["rank_change"] is not None for row in board["rows"])


def test_separability_page_histogram_extremes_and_runs(paper, staff_client):
    item = demo.PAPER_DEMOS[0]
    response = staff_client.get(f"/dashboard/datasets/{item.dataset}/separability/")
    context = response.context
    overview = context["overview"]
    assert context["metric"] == "bertscore" and set(context["metrics"]) == {"bertscore", "bertscore_length", "rouge1"}
    assert overview["defined"] == 50 and sum(overview["histogram"]["counts"]) == 50
    assert overview["lowest"][0]["normalised"] <= overview["highest"][0]["normalised"]
    # all k samples, two columns
    assert all(len(unit["rows"]) == 5 for unit in overview["lowest"] + overview["highest"])
    run = context["runs"][0]
    assert run["status"] == "done" and run["done"] == run["total"] == 50
    fragment = staff_client.get(f"/dashboard/runs/{run['id']}/progress/").content.decode()
    assert "50 / 50 instances" in fragment and "hx-trigger" not in fragment
    other = staff_client.get(f"/dashboard/datasets/{item.dataset}/separability/"
                             f"?metric=rouge1&pair={context['pairs'][0]['key']}")
    assert other.context["metric"] == "rouge1" and other.context["pair"]["system_a"] in item.systems
    bad = staff_client.get(f"/dashboard/datasets/{item.dataset}/separability/?metric=nope&pair=9-9")
    assert bad.status_code == 200 and bad.context["metric"] in context["metrics"] and bad.context["pair"] is None


def test_threshold_of_a_study_is_marked_on_the_histogram(paper, staff_client):
    item = demo.PAPER_DEMOS[1]
    Study.objects.filter(slug=item.study).update(policy="threshold", threshold=0.3)
    response = staff_client.get(f"/dashboard/datasets/{item.dataset}/separability/")
    marks = response.context["histogram_chart"]["options"]["plugins"]["marks"]
    assert marks["lines"] == [{"value": 0.3, "label": f"{item.study} threshold 0.3"}]
    assert marks["low"] <= 0.3 <= marks["high"]


def test_separability_exports(paper, staff_client):
    item = demo.PAPER_DEMOS[1]
    response = staff_client.get(f"/dashboard/datasets/{item.dataset}/separability/export/?metric=bertscore")
    records = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert len(records) == 50 and all(r["metric"] == "bertscore" and r["separability"] is not None for r in records)
    api = staff_client.get(f"/api/v1/datasets/{item.dataset}/separability/?metric=rouge1&limit=10&offset=45")
    data = api.json()
    assert data["count"] == 50 and len(data["results"]) == 5 and data["summary"]["bertscore"]["defined"] == 50
    out = io.StringIO()
    call_command("export_votes", "--study", item.study, "--format", "dpo", stdout=out)
    assert all(set(json.loads(line)) == {"prompt", "chosen", "rejected"} for line in out.getvalue().splitlines())
