"""Texts and JSON values the database cannot store (NUL, lone surrogates, nesting too deep for the
parser, numbers JSON storage refuses, sizes over the limit) and texts that are not strings: every
importer refuses them with `FILE:LINE: field: message`, the command exits 1, the API answers 400 and
the admin upload shows the message, and nothing is written. Each of these was a 500 (PostgreSQL
refused the row, or json.loads raised RecursionError / ValueError) or was stored converted."""
import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotations.imports.parse import ImportFileError, parse_generations, parse_pairwise_csv, parse_votes_csv
from tests.annotations.test_import_commands import (
    VOTES_HEADER,
    pairwise_csv_text,
    row_counts,
    run_command,
    write,
)

GOOD = {"instance_id": "x1", "input": "Summarise.", "system": "alpha", "generations": ["one", "two"]}
LIMIT = 100_000  # IMPORT_MAX_TEXT_BYTES, the default


def line(**fields) -> str:
    """One JSONL line: GOOD for a second instance, with `fields` replacing its values (ASCII escapes,
    so lone surrogates and NUL travel as JSON escapes, as a real exporter writes them)."""
    return json.dumps({**GOOD, "instance_id": "x2", **fields})


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# (case, the second line of the file, the field named in the message, a piece of the message)
BAD_LINES = [
    ("reference-nul", line(reference="a\u0000b"), "reference", "NUL"),
    ("reference-surrogate", line(reference="x\ud800y"), "reference", "lone surrogate"),
    ("reference-over-the-limit", line(reference="r" * 3_000_000), "reference", "over the limit"),
    ("reference-not-a-string", line(reference=True), "reference", "must be a string, not bool"),
    ("input-surrogate", line(input="x\ud800y"), "input", "lone surrogate"),
    ("input-not-a-string", line(input=False), "input", "must be a string, not bool"),
    ("generation-surrogate", line(generations=["ok", "x\udfffy"]), "generations[1]", "lone surrogate"),
    ("generation-not-a-string", line(generations=[True]), "generations[0]", "must be a string, not bool"),
    ("system-surrogate", line(system="s\ud800"), "system", "lone surrogate"),
    ("instance-id-nul", line(instance_id="x\u00002"), "instance_id", "NUL"),
    ("metadata-key-nul", line(metadata={"a\u0000": 1}), "metadata", "NUL"),
    ("metadata-value-nul", line(metadata={"a": "b\u0000"}), "metadata", "NUL"),
    ("metadata-deep-value-nul", line(metadata={"a": [{"b": ["c", "\u0000"]}]}), "metadata", "NUL"),
    ("metadata-key-surrogate", line(metadata={"\ud800": 1}), "metadata", "lone surrogate"),
    ("metadata-deep-value-surrogate", line(metadata={"a": [[["x\ud800y"]]]}), "metadata", "lone surrogate"),
    ("metadata-100000-levels", line()[:-1] + ', "metadata": {"a": ' + nested(100_000) + "}}", "metadata",
     "deeper"),
    ("metadata-100-levels", line()[:-1] + ', "metadata": {"a": ' + nested(100) + "}}", "metadata", "deeper"),
    ("metadata-over-the-limit", line(metadata={"a": "m" * (LIMIT + 1)}), "metadata", "over the limit"),
    ("metadata-nan", line()[:-1] + ', "metadata": {"a": NaN}}', "metadata", "NaN"),
    ("metadata-infinity", line()[:-1] + ', "metadata": {"a": [1e400]}}', "metadata", "Infinity"),
    ("metadata-huge-integer", line()[:-1] + ', "metadata": {"a": ' + "9" * 5000 + "}}", "metadata", "digits"),
]
IDS = [case[0] for case in BAD_LINES]


def bad_file(second: str) -> str:
    return json.dumps(GOOD) + "\n" + second + "\n"


@pytest.mark.parametrize("case,second,field,piece", BAD_LINES, ids=IDS)
def test_generations_jsonl_refuses_what_cannot_be_stored(case, second, field, piece):
    with pytest.raises(ImportFileError) as error:
        parse_generations("gens.jsonl", LIMIT, data=bad_file(second).encode())
    message = str(error.value)
    assert message.startswith(f"gens.jsonl:2: {field}: ") and piece in message, message
    assert "\n" not in message and len(message) < 400, message
    message.encode("utf-8")  # printable and sendable: no lone surrogate of the input in the message


@pytest.mark.django_db
@pytest.mark.parametrize("case,second,field,piece", BAD_LINES, ids=IDS)
def test_import_generations_command_refuses_it_and_writes_nothing(tmp_path, case, second, field, piece):
    path = write(tmp_path, "gens.jsonl", bad_file(second))
    before = row_counts()
    code, _, err = run_command("import_generations", str(path), "--dataset", "d1")
    assert code == 1 and err.strip().startswith(f"{path}:2: {field}: "), err
    assert row_counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("case,second,field,piece", BAD_LINES, ids=IDS)
def test_api_import_answers_400_with_the_message(staff_client, case, second, field, piece):
    before = row_counts()
    upload = SimpleUploadedFile("gens.jsonl", bad_file(second).encode())
    response = staff_client.post("/api/v1/datasets/d1/import/", {"kind": "generations", "file": upload})
    assert response.status_code == 400, response.content
    assert response.json()["error"].startswith(f"gens.jsonl:2: {field}: "), response.json()
    assert row_counts() == before


ADMIN_LINES = [case for case in BAD_LINES if case[0] in (
    "reference-nul", "reference-over-the-limit", "input-surrogate", "metadata-key-nul", "metadata-100000-levels")]


@pytest.mark.django_db
@pytest.mark.parametrize("case,second,field,piece", ADMIN_LINES, ids=[case[0] for case in ADMIN_LINES])
def test_admin_upload_shows_the_message(staff_client, case, second, field, piece):
    before = row_counts()
    upload = SimpleUploadedFile("gens.jsonl", bad_file(second).encode())
    response = staff_client.post("/admin/annotations/import/", {"kind": "generations", "file": upload, "dataset": "d1"})
    assert response.status_code == 200
    assert f"gens.jsonl:2: {field}: " in response.content.decode()
    assert row_counts() == before


def test_a_line_separator_inside_a_json_string_does_not_split_the_line():
    """JSON allows U+2028 raw inside strings; str.splitlines() broke such a line in two."""
    parsed = parse_generations("gens.jsonl", LIMIT, data=json.dumps({**GOOD, "input": "a\u2028b"},
                                                                    ensure_ascii=False).encode())
    assert parsed.instances["x1"].input == "a\u2028b"


def test_csv_generations_refuse_a_nul_anywhere_and_a_text_over_the_limit():
    head = "instance_id,input,system,sample_index,text\n"
    for body, field in (("x0,Q\x00?,alpha,0,A\n", "input"), ("x0,Q?,al\x00pha,0,A\n", "system"),
                        ("x0,Q?,alpha,0,A\x00\n", "text"), ("x0,Q?,alpha,0," + "t" * 101 + "\n", "text")):
        with pytest.raises(ImportFileError) as error:
            parse_generations("gens.csv", 100, data=(head + body).encode())
        assert str(error.value).startswith(f"gens.csv:2: {field}: "), str(error.value)


def test_crowd_batch_and_votes_refuse_a_nul_in_what_they_store():
    def nul_summary(rows, fieldnames):
        rows[1]["Input.model1_summary2"] += "\x00"

    with pytest.raises(ImportFileError) as error:
        parse_pairwise_csv("batch.csv", LIMIT, data=pairwise_csv_text(nul_summary).encode())
    assert re.match(r"batch.csv:\d+: Input.model1_summary2: .*NUL", str(error.value)), str(error.value)
    with pytest.raises(ImportFileError) as error:
        parse_votes_csv("votes.csv", data=(VOTES_HEADER + "x1,alpha,beta,0,0,a,w\x00,\n").encode())
    assert str(error.value).startswith("votes.csv:2: annotator: "), str(error.value)


@pytest.mark.parametrize("pref", ["inf", "-inf", "1e400", "nan", "1.5", "2"])
def test_a_crowd_batch_preference_that_is_not_minus_one_zero_or_one_is_a_located_error(pref):
    """"inf" and "1e400" were an OverflowError (int() of an infinite float): a 500 through the API."""
    def set_pref(rows, fieldnames):
        rows[0]["Answer.pref2"] = pref

    with pytest.raises(ImportFileError) as error:
        parse_pairwise_csv("batch.csv", LIMIT, data=pairwise_csv_text(set_pref).encode())
    assert str(error.value) == f"batch.csv:2: Answer.pref2: {pref!r} is not -1, 0 or 1"


def test_a_message_quotes_a_long_cell_only_in_part():
    with pytest.raises(ImportFileError) as error:
        parse_votes_csv("votes.csv", data=(VOTES_HEADER + "x1,alpha,beta,0,0," + "w" * 100_000 + ",ann,\n").encode())
    assert str(error.value).startswith("votes.csv:2: winner: 'www") and len(str(error.value)) < 200
