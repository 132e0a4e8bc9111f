"""Imported workers stay distinct: two worker ids that share their first 150 characters (the old
username `f"{study.slug}~{worker id}"[:150]` cut them to one account) are two annotators, every
judgment of each is stored, whether the file comes through the command, the API or the admin upload,
and a second import of the same file creates nothing."""
import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from annotations.imports.write import get_or_create_imported_annotator
from annotations.models import AnnotatorProfile, Study, Vote
from tests.annotations.test_import_commands import (
    SAMSUM,
    VOTES_HEADER,
    row_counts,
    run_command,
    write,
)
from tests.factories import make_study

pytestmark = pytest.mark.django_db

# 161 characters each (worker ids may have 200): equal in their first 160
LONG_1, LONG_2 = "Q" * 160 + "1", "Q" * 160 + "2"


def crowd_batch_with_two_long_workers() -> str:
    """The first record of the SAMSum batch three times, as judged by LONG_1, LONG_2 and a third worker:
    one instance, so one account for the two long ids would drop the second one's five judgments."""
    with open(SAMSUM, encoding="utf-8") as handle:
        first = next(csv.DictReader(handle))
    rows = [{**first, "WorkerId": worker} for worker in (LONG_1, LONG_2, "W3")]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def votes_by_two_long_workers() -> str:
    """Both workers vote on the same comparison: one account for both made this an IntegrityError."""
    return VOTES_HEADER + f"x0,alpha-model,beta-model,0,0,a,{LONG_1},\nx0,alpha-model,beta-model,0,0,b,{LONG_2},\n"


def imported_workers(study) -> set[str]:
    return set(AnnotatorProfile.objects.filter(imported_for=study).values_list("external_id", flat=True))


def test_pairwise_import_keeps_two_long_worker_ids_apart_and_is_idempotent(tmp_path):
    path = write(tmp_path, "batch.csv", crowd_batch_with_two_long_workers())
    args = ("import_pairwise_csv", str(path), "--dataset", "s", "--study", "s-study",
            "--systems", "mistral-7b,vicuna-7b")
    code, _, err = run_command(*args)
    assert code == 0, err
    study = Study.objects.get(slug="s-study")
    assert {LONG_1, LONG_2} <= imported_workers(study) and len(imported_workers(study)) == 3
    assert Vote.objects.filter(study=study).count() == 3 * 5  # three workers, five sample pairs each
    before = row_counts()
    code, out, err = run_command(*args)
    assert code == 0 and "nothing new" in out, err
    assert row_counts() == before


def test_votes_import_of_two_long_worker_ids_on_one_comparison_stores_both(tmp_path):
    study = make_study(slug="long-workers", n_instances=1)
    path = write(tmp_path, "votes.csv", votes_by_two_long_workers())
    code, _, err = run_command("import_votes", str(path), "--study", study.slug)
    assert code == 0, err
    assert imported_workers(study) == {LONG_1, LONG_2}
    assert sorted(Vote.objects.filter(study=study).values_list("winner", flat=True)) == ["a", "b"]


def test_api_imports_of_two_long_worker_ids_are_not_a_server_error(staff_client):
    batch = SimpleUploadedFile("batch.csv", crowd_batch_with_two_long_workers().encode())
    response = staff_client.post("/api/v1/datasets/api-long/import/", {
        "kind": "pairwise", "file": batch, "study": "api-long", "systems": "mistral-7b,vicuna-7b"})
    assert response.status_code == 201, response.content
    assert response.json()["summary"]["annotators_created"] == 3 and response.json()["summary"]["votes_created"] == 15

    study = make_study(slug="api-long-votes", n_instances=1)
    votes = SimpleUploadedFile("votes.csv", votes_by_two_long_workers().encode())
    response = staff_client.post(f"/api/v1/datasets/{study.dataset.slug}/import/",
                                 {"kind": "votes", "study": study.slug, "file": votes})
    assert response.status_code == 201, response.content
    assert response.json()["summary"]["votes_created"] == 2 and imported_workers(study) == {LONG_1, LONG_2}


def test_admin_uploads_of_two_long_worker_ids_are_not_a_server_error(staff_client):
    batch = SimpleUploadedFile("batch.csv", crowd_batch_with_two_long_workers().encode())
    response = staff_client.post("/admin/annotations/import/", {
        "kind": "pairwise", "file": batch, "dataset": "up-long", "study": "up-long", "systems": "mistral-7b,vicuna-7b"})
    assert response.status_code == 302
    assert Vote.objects.filter(study__slug="up-long").count() == 15

    study = make_study(slug="up-long-votes", n_instances=1)
    votes = SimpleUploadedFile("votes.csv", votes_by_two_long_workers().encode())
    response = staff_client.post("/admin/annotations/import/", {"kind": "votes", "file": votes, "study": study.slug})
    assert response.status_code == 302
    assert Vote.objects.filter(study=study).count() == 2


def test_a_worker_is_found_again_by_study_and_id_not_by_username():
    """A profile migrated from the old `slug~id` username is found by (imported_for, external_id); the
    same worker id in another study is another annotator; new accounts do not carry the worker id."""
    study, other = make_study(slug="found", n_instances=1), make_study(slug="found-other", n_instances=1)
    legacy = get_user_model().objects.create(username="found~w1")
    AnnotatorProfile.objects.create(user=legacy, pseudonym="ann-legacy", external_id="w1", imported_for=study)
    assert get_or_create_imported_annotator(study, "w1") == legacy
    fresh = get_or_create_imported_annotator(other, "w1")
    assert fresh != legacy and get_or_create_imported_annotator(other, "w1") == fresh
    assert "w1" not in fresh.username and not fresh.has_usable_password()
    assert fresh.annotator.imported_for == other and fresh.annotator.external_id == "w1"
