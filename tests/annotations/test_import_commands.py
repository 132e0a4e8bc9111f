"""The import commands: real demo files import fully; every kind of bad input prints one
`FILE:LINE: field: message` line, exits non-zero and leaves the row counts exactly as they were."""
import csv
import io
import json
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db.models import Count

from annotations.models import AnnotatorProfile, Comparison, Dataset, Generation, Instance, Study, System, Vote

ROOT = Path(__file__).resolve().parents[2]
SAMSUM = ROOT / "demo/data/separability-paper/mistral-7b_vicuna-7b_samsum_pref_data.csv"
CNN = ROOT / "demo/data/separability-paper/flan-t5-xxl_gpt-3.5_turbo_instruct_cnn_dm_pref_data.csv"
MODELS = (Dataset, Instance, Generation, System, Study, Comparison, Vote, AnnotatorProfile)


def row_counts():
    return {m.__name__: m.objects.count() for m in MODELS}


def run_command(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def write(tmp_path, name, content, mode="w"):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def jsonl(*objects):
    return "\n".join(json.dumps(o) for o in objects) + "\n"


GOOD_LINE = {"instance_id": "x1", "input": "Summarise.", "system": "alpha", "generations": ["one", "two"]}


@pytest.mark.django_db
def test_pairwise_paper_file_imports_generations_and_votes():
    code, out, err = run_command("import_pairwise_csv", str(SAMSUM), "--dataset", "samsum", "--study", "samsum-study",
                                 "--systems", "mistral-7b,vicuna-7b")
    assert code == 0, err
    study = Study.objects.get(slug="samsum-study")
    assert Instance.objects.filter(dataset__slug="samsum").count() == 50
    for system in ("mistral-7b", "vicuna-7b"):
        per_instance = Generation.objects.filter(system__name=system).values("instance").distinct().count()
        assert per_instance == 50
        assert Generation.objects.filter(system__name=system).count() == 250
    assert Vote.objects.filter(study=study).count() == 750  # 150 rows x 5 judgments
    assert Comparison.objects.filter(study=study).count() == 250  # 50 instances x 5 sample pairs
    assert set(Comparison.objects.filter(study=study).annotate(n=Count("votes")).values_list("n", flat=True)) == {3}
    # Historical votes do not use up the overlap: live annotators still have every comparison to judge.
    assert set(Comparison.objects.filter(study=study).values_list("votes_count", flat=True)) == {0}


@pytest.mark.django_db
def test_pairwise_import_twice_adds_nothing():
    args = ("import_pairwise_csv", str(CNN), "--dataset", "cnn", "--study", "cnn-study",
            "--systems", "flan-t5-xxl,gpt-3.5-turbo-instruct")
    assert run_command(*args)[0] == 0
    before = row_counts()
    code, out, _ = run_command(*args)
    assert code == 0 and "nothing new" in out
    assert row_counts() == before


@pytest.mark.django_db
def test_pairwise_sign_convention_longer_summary_wins_on_cnn():
    """Under the documented reading, gpt-3.5 (the longer summaries) wins most decisive votes."""
    run_command("import_pairwise_csv", str(CNN), "--dataset", "cnn", "--study", "cnn-study",
                "--systems", "flan-t5-xxl,gpt-3.5-turbo-instruct")
    gpt = System.objects.get(name="gpt-3.5-turbo-instruct")
    wins = losses = 0
    for vote in Vote.objects.select_related("comparison"):
        if vote.winner in ("a", "b"):
            gpt_is_a = vote.comparison.system_a_id == gpt.pk
            if (vote.winner == "a") == gpt_is_a:
                wins += 1
            else:
                losses += 1
    assert wins / (wins + losses) > 0.9


@pytest.mark.django_db
def test_generations_jsonl_imports_and_input_may_be_omitted_later(tmp_path):
    path = write(tmp_path, "g.jsonl", jsonl(GOOD_LINE, {"instance_id": "x1", "system": "beta",
                                                        "generations": ["uno", "dos", "tres"]}))
    code, out, err = run_command("import_generations", str(path), "--dataset", "d1")
    assert code == 0, err
    assert Generation.objects.count() == 5
    assert Instance.objects.get().input == "Summarise."
    assert list(Generation.objects.filter(system__name="beta").values_list("sample_index", flat=True)) == [0, 1, 2]


@pytest.mark.django_db
def test_generations_csv_imports(tmp_path):
    path = write(tmp_path, "g.csv", "instance_id,input,system,sample_index,text\n"
                                    "i1,\"Line one\nline two\",alpha,0,\"hello, world\"\n"
                                    "i1,,alpha,1,second\n")
    code, _, err = run_command("import_generations", str(path), "--dataset", "d1")
    assert code == 0, err
    assert Instance.objects.get().input == "Line one\nline two"
    assert Generation.objects.get(sample_index=0).text == "hello, world"


BAD_GENERATION_FILES = [
    ("malformed-json", "g.jsonl", '{"instance_id": "x1", "input": "a", \n', 1, "json"),
    ("missing-field", "g.jsonl", jsonl({"instance_id": "x1", "input": "a", "generations": ["x"]}), 1, "system"),
    ("empty-field", "g.jsonl", jsonl({**GOOD_LINE, "system": "  "}), 1, "system"),
    ("empty-generations", "g.jsonl", jsonl(GOOD_LINE, {**GOOD_LINE, "system": "b", "generations": []}), 2,
     "generations"),
    ("empty-generation-text", "g.jsonl", jsonl({**GOOD_LINE, "generations": ["a", ""]}), 1, "generations[1]"),
    ("duplicate-instance-line", "g.jsonl", jsonl(GOOD_LINE, GOOD_LINE), 2, "system"),
    ("missing-input-first-line", "g.jsonl", jsonl({k: v for k, v in GOOD_LINE.items() if k != "input"}), 1, "input"),
    ("text-too-large", "g.jsonl", jsonl({**GOOD_LINE, "generations": ["ok", "x" * 100_001]}), 1, "generations[1]"),
    ("csv-duplicate-sample", "g.csv", "instance_id,input,system,sample_index,text\ni,in,a,0,t\ni,in,a,0,u\n", 3,
     "sample_index"),
    ("csv-missing-column", "g.csv", "instance_id,input,system,text\ni,in,a,t\n", 1, "sample_index"),
    ("csv-bad-index", "g.csv", "instance_id,input,system,sample_index,text\ni,in,a,first,t\n", 2, "sample_index"),
    ("csv-empty-text", "g.csv", "instance_id,input,system,sample_index,text\ni,in,a,0,t\ni,in,a,1,\n", 3, "text"),
    ("csv-malformed", "g.csv", "instance_id,input,system,sample_index,text\ni,in,a,0,t,extra\n", 2, "csv"),
    ("non-utf8", "g.jsonl", jsonl(GOOD_LINE).encode() + b'{"instance_id": "\xff"}\n', 2, "encoding"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("case,filename,content,line,field", BAD_GENERATION_FILES,
                         ids=[c[0] for c in BAD_GENERATION_FILES])
def test_bad_generation_file_is_rejected_with_location_and_changes_nothing(tmp_path, case, filename, content, line,
                                                                         field):
    run_command("import_generations", str(write(tmp_path, "seed.jsonl", jsonl({**GOOD_LINE, "instance_id": "seed"}))),
                "--dataset", "d1")
    before = row_counts()
    path = write(tmp_path, filename, content)
    code, out, err = run_command("import_generations", str(path), "--dataset", "d1")
    assert code != 0
    lines = [text for text in err.strip().splitlines() if text]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{path}:{line}: {field}: "), lines[0]
    assert row_counts() == before


@pytest.mark.django_db
def test_generation_differing_from_stored_text_is_rejected(tmp_path):
    path = write(tmp_path, "g.jsonl", jsonl(GOOD_LINE))
    assert run_command("import_generations", str(path), "--dataset", "d1")[0] == 0
    before = row_counts()
    changed = write(tmp_path, "g2.jsonl", jsonl({**GOOD_LINE, "generations": ["one", "TWO"]}))
    code, _, err = run_command("import_generations", str(changed), "--dataset", "d1")
    assert code != 0 and re.match(rf"{re.escape(str(changed))}:1: generations\[1\]: differs", err.strip())
    assert row_counts() == before


def pairwise_csv_text(mutate=None):
    with open(SAMSUM, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:6]
    fieldnames = list(rows[0])
    if mutate:
        mutate(rows, fieldnames)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _set(row_index, key, value):
    def mutate(rows, fieldnames):
        rows[row_index][key] = value
    return mutate


def _drop_column(key):
    def mutate(rows, fieldnames):
        fieldnames.remove(key)
        for row in rows:
            del row[key]
    return mutate


def _duplicate_row(rows, fieldnames):
    rows.append(dict(rows[0]))


BAD_PAIRWISE = [
    ("pref-out-of-range", _set(2, "Answer.pref3", "2"), 4, "Answer.pref3"),
    ("pref-not-number", _set(0, "Answer.pref1", "left"), 2, "Answer.pref1"),
    ("id-not-1-or-2", _set(1, "Input.id2", "3"), 3, "Input.id2"),
    ("empty-summary", _set(3, "Input.model2_summary4", " "), 5, "Input.model2_summary4"),
    ("empty-worker", _set(0, "WorkerId", ""), 2, "WorkerId"),
    ("missing-column", _drop_column("Answer.pref5"), 1, "Answer.pref5"),
    ("same-worker-twice", _duplicate_row, 8, "WorkerId"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("case,mutate,line,field", BAD_PAIRWISE, ids=[c[0] for c in BAD_PAIRWISE])
def test_bad_pairwise_file_is_rejected_with_location_and_changes_nothing(tmp_path, case, mutate, line, field):
    before = row_counts()
    path = write(tmp_path, "batch.csv", pairwise_csv_text(mutate))
    code, _, err = run_command("import_pairwise_csv", str(path), "--dataset", "s", "--study", "s-study",
                               "--systems", "mistral-7b,vicuna-7b")
    assert code != 0
    assert err.strip().startswith(f"{path}:{line}: {field}: "), err
    assert row_counts() == before


@pytest.fixture
def small_study(tmp_path):
    path = write(tmp_path, "g.jsonl", jsonl(GOOD_LINE, {"instance_id": "x1", "system": "beta",
                                                        "generations": ["uno", "dos"]}))
    assert run_command("import_generations", str(path), "--dataset", "d1")[0] == 0
    study = Study.objects.create(slug="st", name="st", dataset=Dataset.objects.get(slug="d1"))
    study.systems.set(System.objects.all())
    return study


VOTES_HEADER = "instance_id,system_a,system_b,sample_a,sample_b,winner,annotator,created_at\n"


@pytest.mark.django_db
def test_votes_csv_imports_and_canonicalises_the_pair(tmp_path, small_study):
    path = write(tmp_path, "v.csv", VOTES_HEADER + "x1,beta,alpha,1,0,a,ann1,2024-05-01T10:00:00Z\n"
                                                   "x1,alpha,beta,0,0,tie,ann1,\n")
    code, out, err = run_command("import_votes", str(path), "--study", "st")
    assert code == 0, err
    first = Vote.objects.order_by("submitted_at").first()
    alpha = System.objects.get(name="alpha")
    assert first.comparison.system_a == alpha  # lower id first
    assert first.winner == "b"  # beta won, beta is B
    assert first.submitted_at.year == 2024


BAD_VOTES = [
    ("unknown-instance", "nope,alpha,beta,0,0,a,ann1,\n", "instance_id"),
    ("unknown-system", "x1,alpha,gamma,0,0,a,ann1,\n", "system_b"),
    ("unknown-sample", "x1,alpha,beta,0,7,a,ann1,\n", "sample_b"),
    ("bad-winner", "x1,alpha,beta,0,0,left,ann1,\n", "winner"),
    ("empty-annotator", "x1,alpha,beta,0,0,a,,\n", "annotator"),
    ("same-system", "x1,alpha,alpha,0,1,a,ann1,\n", "system_b"),
    ("bad-date", "x1,alpha,beta,0,0,a,ann1,yesterday\n", "created_at"),
    ("duplicate-vote", "x1,alpha,beta,0,0,a,ann1,\nx1,beta,alpha,0,0,b,ann1,\n", "annotator"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("case,body,field", BAD_VOTES, ids=[c[0] for c in BAD_VOTES])
def test_bad_votes_file_is_rejected_with_location_and_changes_nothing(tmp_path, small_study, case, body, field):
    good = "x1,alpha,beta,1,1,b,ann9,\n"
    path = write(tmp_path, "v.csv", VOTES_HEADER + good + body)
    before = row_counts()
    code, _, err = run_command("import_votes", str(path), "--study", "st")
    assert code != 0
    line = 3 + body.count("\n") - 1
    assert err.strip().startswith(f"{path}:{line}: {field}: "), err
    assert row_counts() == before


@pytest.mark.django_db
def test_votes_file_with_non_utf8_bytes_is_rejected(tmp_path, small_study):
    path = write(tmp_path, "v.csv", VOTES_HEADER.encode() + b"x1,alpha,beta,0,0,a,\xe9t\xe9,\n")
    before = row_counts()
    code, _, err = run_command("import_votes", str(path), "--study", "st")
    assert code != 0 and err.strip().startswith(f"{path}:2: encoding: ")
    assert row_counts() == before


@pytest.mark.django_db
def test_admin_upload_imports_a_crowd_batch_and_rejects_a_bad_file_without_writing(staff_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    good = SimpleUploadedFile("batch.csv", pairwise_csv_text().encode())
    response = staff_client.post("/admin/annotations/import/", {
        "kind": "pairwise", "file": good, "dataset": "up", "study": "up-study", "systems": "mistral-7b,vicuna-7b"})
    assert response.status_code == 302
    assert Vote.objects.filter(study__slug="up-study").count() == 6 * 5
    before = row_counts()
    bad = SimpleUploadedFile("votes.csv", (VOTES_HEADER + "nope,mistral-7b,vicuna-7b,0,0,a,w,\n").encode())
    response = staff_client.post("/admin/annotations/import/", {"kind": "votes", "file": bad, "study": "up-study"},
                                 follow=True)
    assert "votes.csv:2: instance_id: unknown instance" in response.content.decode()
    assert row_counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("field,value", [("dataset", "d" * 101), ("study", "s" * 101),
                                         ("systems", "m" * 201 + ",vicuna-7b")])
def test_admin_upload_refuses_a_name_too_long_for_its_column(staff_client, field, value):
    """Was a 500 on PostgreSQL (value too long for type character varying); SQLite stored it."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    form = {"kind": "pairwise", "file": SimpleUploadedFile("batch.csv", pairwise_csv_text().encode()),
            "dataset": "up", "study": "up-study", "systems": "mistral-7b,vicuna-7b", field: value}
    before = row_counts()
    response = staff_client.post("/admin/annotations/import/", form)
    assert response.status_code == 200 and "characters" in response.content.decode()
    assert row_counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("option,value,message", [
    ("--dataset", "d" * 101, "--dataset: 101 characters, over the limit of 100"),
    ("--study", "s" * 101, "--study: 101 characters, over the limit of 100"),
    ("--study", "two words", "--study: 'two words' is not a slug"),
    ("--systems", "m" * 201 + ",vicuna-7b", "--systems: A system name has 201 characters, over the limit of 200."),
    ("--systems", "vicuna-7b,vicuna-7b", "--systems: Two different system names separated by a comma."),
])
def test_import_command_refuses_option_values_it_cannot_store(option, value, message):
    """Over-long names were a traceback on PostgreSQL (value too long for its column); SQLite stored them."""
    from django.core.management.base import CommandError

    options = {"--dataset": "cmd-data", "--study": "cmd-study", "--systems": "mistral-7b,vicuna-7b", option: value}
    before = row_counts()
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("import_pairwise_csv", str(SAMSUM), *[part for item in options.items() for part in item])
    assert row_counts() == before


@pytest.mark.django_db
def test_import_generations_refuses_a_dataset_slug_too_long(tmp_path):
    from django.core.management.base import CommandError

    path = write(tmp_path, "gens.jsonl", jsonl(GOOD_LINE))
    with pytest.raises(CommandError, match="--dataset: 101 characters"):
        call_command("import_generations", str(path), "--dataset", "d" * 101)
    assert not Dataset.objects.exists()
