"""The dashboard on the PandaLM demo (three annotators judged each of its 999 items; the demo loads the
939 a human can judge, see JUDGED): the Krippendorff's alpha it shows equals the `krippendorff`
package's value computed here from the raw JSON file, Fleiss' kappa uses all loaded items, every export
parses, and nobody's username leaks into an export."""
import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from annotations.models import Study, Vote
from dashboard import exports
from dashboard.models import ExportJob
from demo import sources as demo_data

ROOT = Path(__file__).resolve().parents[2]
PANDALM = ROOT / "demo/data/pandalm/testset-v1.json"
STUDY = demo_data.PANDALM_STUDY
# The release has 999 items; 60 have a response that is empty (54) or the JSON value `true` (6), which
# nobody can judge: the demo reader skips them (demo/sources.py, demo/data/README.md). Was 999 / 2997
# when `true` was stored as the text "True" and "" as an empty generation.
JUDGED = 939
VOTES = 3 * JUDGED


def judgeable(item: dict) -> bool:
    """The demo's rule, restated on the raw file: both responses are non-empty strings."""
    return all(isinstance(item[key], str) and item[key].strip() for key in ("response1", "response2"))

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    """The demo, loaded once for the module (about 20 s) and removed afterwards."""
    with django_db_blocker.unblock():
        call_command("load_demo", "--skip-separability", stdout=io.StringIO(), stderr=io.StringIO())
        yield
        call_command("flush", "--noinput", verbosity=0)


def raw_alpha() -> float:
    import krippendorff

    items = [item for item in json.loads(PANDALM.read_text()) if judgeable(item)]
    assert len(items) == JUDGED
    data = np.array([[item[f"annotator{i}"] for item in items] for i in (1, 2, 3)], dtype=float)
    return krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")


def shown_value(html: str, element_id: str) -> float:
    match = re.search(rf'id="{element_id}" data-value="([^"]+)"', html)
    assert match, f"{element_id} not on the page"
    return float(match.group(1))


def test_alpha_on_the_dashboard_equals_the_package_on_the_raw_file(demo, staff_client):
    response = staff_client.get(f"/dashboard/studies/{STUDY}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert shown_value(html, "krippendorff-alpha") == pytest.approx(raw_alpha(), abs=1e-9)
    agreement = response.context["agreement"]
    assert agreement["krippendorff_alpha"]["items"] == JUDGED
    kappa = agreement["fleiss_kappa"]
    assert kappa["items"] == JUDGED and f"all {JUDGED} items, each judged by exactly 3" in kappa["note"]
    assert shown_value(html, "fleiss-kappa") == pytest.approx(kappa["value"])


def test_study_page_summaries(demo, staff_client):
    response = staff_client.get(f"/dashboard/studies/{STUDY}/")
    context = response.context
    progress = context["progress"]
    assert progress["votes"] == VOTES and progress["annotators"] == 3
    assert progress["target"] == (
        Study.objects.get(slug=STUDY).comparisons.filter(selected=True, is_gold=False).count() * 3)
    annotators = context["annotators"]
    assert [a["votes"] for a in annotators] == [JUDGED] * 3
    assert all(a["pseudonym"].startswith("ann-") for a in annotators)
    assert all(0.5 < a["majority_agreement"] <= 1 for a in annotators)
    html = response.content.decode()
    assert "annotator1" not in html  # imported worker names stay out of the page
    assert context["disagreed"] and context["disagreed"][0]["text_a"]
    # PandaLM has one generation per system and prompt: consistency cannot be measured, and it says so
    assert "sample_pairs_per_unit" in context["consistency"]["note"]
    for board in context["boards"]["comparisons"]:
        assert board["rows"], board["title"]
    for canvas in ("timeline-chart", "annotator-chart", "board-chart-1", "board-chart-2"):
        assert f'data-chart="{canvas}"' in html and f'id="{canvas}"' in html


def test_index_lists_every_demo_study_with_progress(demo, staff_client):
    response = staff_client.get("/dashboard/")
    rows = {row["study"].slug: row["progress"] for row in response.context["overview"]}
    papers = [paper.study for paper in demo_data.PAPER_DEMOS]
    assert set(rows) == {*papers, STUDY, demo_data.LLMFAO_STUDY}
    # The 750 historical votes count in the results but leave the live target (250 x 3) open to annotators.
    assert rows[papers[0]]["votes"] == rows[papers[0]]["target"] == 750 and rows[papers[0]]["counted"] == 0
    assert b"<progress" in response.content


def test_separability_page_says_why_it_is_undefined(demo, staff_client):
    from separability.models import Alignment

    response = staff_client.get(f"/dashboard/datasets/{demo_data.PANDALM_DATASET}/separability/")
    assert b"has not been computed" in response.content
    # a stored k = 1 result is explained with its count and reason
    study = Study.objects.get(slug=STUDY)
    comparison = study.comparisons.select_related("instance").first()
    Alignment.objects.create(instance=comparison.instance, system_a=comparison.system_a,
                             system_b=comparison.system_b, metric="bertscore", k_a=1, k_b=1,
                             undefined_reason=f"system {comparison.system_a_id} has 1 sample; "
                                              "self-alignment needs k >= 2")
    html = " ".join(staff_client.get(f"/dashboard/datasets/{demo_data.PANDALM_DATASET}/separability/")
                    .content.decode().split())
    assert "undefined for <strong>1 of 1</strong> units, all because at least one" in html
    assert f"system {comparison.system_a.name} has 1 sample" in html


def read(response) -> str:
    return b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()


def test_dashboard_exports_parse(demo, staff_client):
    response = staff_client.get(f"/dashboard/studies/{STUDY}/export/csv/")
    assert response["Content-Disposition"] == f'attachment; filename="{STUDY}-votes.csv"'
    rows = list(csv.DictReader(io.StringIO(read(response))))
    assert len(rows) == VOTES
    assert set(rows[0]) == set(exports.VOTE_FIELDS)
    assert {r["annotator"] for r in rows} == set(
        Vote.objects.filter(study__slug=STUDY).values_list("annotator__annotator__pseudonym", flat=True).distinct())
    assert not any("annotator1" in line
                   for line in read(staff_client.get(f"/dashboard/studies/{STUDY}/export/csv/")).splitlines())
    for row in rows[:50]:
        assert row["winner"] in ("a", "b", "tie", "both_bad") and row["source"] == "imported"
        assert {row["system_left"], row["system_right"]} == {row["system_a"], row["system_b"]}

    records = [json.loads(line)
               for line in read(staff_client.get(f"/dashboard/studies/{STUDY}/export/jsonl/")).splitlines()]
    assert len(records) == VOTES and records[0]["study"] == STUDY and isinstance(records[0]["is_gold"], bool)

    pairs = [json.loads(line)
             for line in read(staff_client.get(f"/dashboard/studies/{STUDY}/export/dpo/")).splitlines()]
    decisive = Vote.objects.filter(study__slug=STUDY, winner__in=("a", "b")).count()
    assert len(pairs) == decisive > 0
    assert all(set(p) == {"prompt", "chosen", "rejected"} and p["prompt"] and p["chosen"] != p["rejected"]
               for p in pairs)


def test_export_votes_command(demo, tmp_path):
    target = tmp_path / "votes.csv"
    call_command("export_votes", "--study", STUDY, "--format", "csv", "--output", str(target), stderr=io.StringIO())
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert len(rows) == VOTES
    out = io.StringIO()
    call_command("export_votes", "--study", STUDY, "--format", "dpo", stdout=out)
    first = json.loads(out.getvalue().splitlines()[0])
    assert set(first) == {"prompt", "chosen", "rejected"}
    out = io.StringIO()
    call_command("export_votes", "--study", STUDY, "--format", "jsonl", stdout=out)
    assert len(out.getvalue().splitlines()) == VOTES


def test_export_votes_command_rejects_bad_input(demo, tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no study 'nope'"):
        call_command("export_votes", "--study", "nope", "--format", "csv")
    with pytest.raises(CommandError):
        call_command("export_votes", "--study", STUDY, "--format", "xml")
    with pytest.raises(CommandError, match="not a directory"):
        call_command("export_votes", "--study", STUDY, "--format", "csv", "--output", str(tmp_path / "no" / "x.csv"))


def test_large_export_runs_as_a_task_and_downloads(demo, staff_client, media_root, monkeypatch):
    monkeypatch.setattr(exports, "LARGE_EXPORT_VOTES", 1000)
    url = f"/dashboard/studies/{STUDY}/export/dpo/"
    confirm = staff_client.get(url)
    assert confirm.status_code == 200 and b"prepared in the background" in confirm.content
    response = staff_client.post(url)
    job = ExportJob.objects.get()
    assert response["Location"] == f"/dashboard/exports/{job.pk}/"
    assert job.status == "done" and job.done == job.total > 1000
    assert (media_root / job.file).is_file() and job.file.startswith("exports/")
    page = staff_client.get(response["Location"]).content.decode()
    assert "Download" in page and "hx-trigger" not in page  # finished: no more polling
    download = staff_client.get(f"/dashboard/exports/{job.pk}/download/")
    lines = b"".join(download.streaming_content).decode().splitlines()
    assert len(lines) == job.total and set(json.loads(lines[0])) == {"prompt", "chosen", "rejected"}
