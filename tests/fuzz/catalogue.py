"""The catalogue of bad inputs in docs/bad-input.md, produced by running the real importers on small
bad files: each row is (command, what is wrong, the message the user gets).

`tests/fuzz/test_bad_input_catalogue.py` regenerates it and fails when the doc is out of date; to
rewrite the doc, run that test with UPDATE_BAD_INPUT_DOC=1:

    UPDATE_BAD_INPUT_DOC=1 .venv/bin/pytest tests/fuzz/test_bad_input_catalogue.py

The write-step rows (names that do not resolve, clashes with stored rows) need the database, so the
whole catalogue is built inside a test; the parse-step rows need none.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass

from annotations.imports.parse import (
    ImportFileError,
    parse_generations,
    parse_pairwise_csv,
    parse_votes_csv,
    read_votes_csv,
)
from annotations.imports.parse import ImportFileError as VoteFileError
from demo.sources import parse_pandalm

from . import inputs
from .known_bugs import KNOWN_BUGS

MAX_TEXT = 100  # bytes; the catalogue's size limit (the default, IMPORT_MAX_TEXT_BYTES, is 100000)
GEN_CSV_HEAD = "instance_id,input,system,sample_index,text\n"
VOTES_HEAD = "instance_id,system_a,system_b,sample_a,sample_b,winner,annotator,created_at\n"
GOOD_VOTE = "x0,alpha-model,beta-model,0,0,a,w1,2024-05-01T12:30:00+00:00\n"


@dataclass
class Row:
    command: str
    problem: str
    message: str


def _message(call) -> str:
    try:
        call()
    except (ImportFileError, VoteFileError) as error:
        return str(error)
    except Exception as error:  # noqa: BLE001 - shown as what it is: a crash
        return f"CRASH {type(error).__name__}: {error}"
    return "(accepted)"


def _pairwise(mutate) -> bytes:
    """The first two records of the paper's SAMSum batch with one change applied to record 1."""
    import csv
    import io

    records = list(csv.reader(io.StringIO(inputs.pairwise_seed(2).decode(), newline="")))
    header, row = records[0], dict(zip(records[0], records[1], strict=True))
    mutate(row)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([h for h in header if h in row])
    writer.writerow([row[h] for h in header if h in row])
    writer.writerows(records[2:])
    return out.getvalue().encode()


def parse_rows() -> list[Row]:
    rows: list[Row] = []
    gen = "import_generations (JSONL)"

    def jsonl(problem, text, name="gen.jsonl"):
        data = text if isinstance(text, bytes) else text.encode()
        rows.append(Row(gen, problem, _message(lambda: parse_generations(name, MAX_TEXT, data=data))))

    ok = '{"instance_id": "x0", "input": "Q?", "system": "alpha", "generations": ["A"]}'
    jsonl("not UTF-8", b'{"instance_id": "x0", "input": "caf\xe9"}\n')
    jsonl("a line is not JSON", ok + '\n{"instance_id": "x1", "input": "Q?",}\n')
    jsonl("a line is JSON but not an object", '["x0", "alpha", ["A"]]\n')
    jsonl("instance_id missing", '{"input": "Q?", "system": "alpha", "generations": ["A"]}\n')
    jsonl("instance_id not a string", '{"instance_id": 7, "input": "Q?", "system": "alpha", "generations": ["A"]}\n')
    jsonl("instance_id empty", '{"instance_id": " ", "input": "Q?", "system": "alpha", "generations": ["A"]}\n')
    jsonl("system missing", '{"instance_id": "x0", "input": "Q?", "generations": ["A"]}\n')
    jsonl("system longer than a name column holds",
          '{"instance_id": "x0", "input": "Q?", "system": "' + "m" * 201 + '", "generations": ["A"]}\n')
    jsonl("the same (instance, system) on two lines", ok + "\n" + ok + "\n")
    jsonl("input missing on the instance's first line",
          '{"instance_id": "x0", "system": "alpha", "generations": ["A"]}\n')
    jsonl("input not a string", '{"instance_id": "x0", "input": ["Q?"], "system": "alpha", "generations": ["A"]}\n')
    jsonl("input differs between lines of one instance",
          ok + '\n{"instance_id": "x0", "input": "Other?", "system": "beta", "generations": ["B"]}\n')
    jsonl("input true, not a string (never converted)",
          '{"instance_id": "x0", "input": true, "system": "alpha", "generations": ["A"]}\n')
    jsonl("input with a lone surrogate (the JSON escape \\ud800)",
          '{"instance_id": "x0", "input": "x\\ud800y", "system": "alpha", "generations": ["A"]}\n')
    jsonl("reference not a string",
          '{"instance_id": "x0", "input": "Q?", "reference": 1, "system": "alpha", "generations": ["A"]}\n')
    jsonl("reference with a NUL character (the JSON escape \\u0000)",
          '{"instance_id": "x0", "input": "Q?", "reference": "a\\u0000b", "system": "alpha", "generations": ["A"]}\n')
    jsonl(f"reference over the size limit (here {MAX_TEXT} bytes)",
          '{"instance_id": "x0", "input": "Q?", "reference": "' + "r" * 101
          + '", "system": "alpha", "generations": ["A"]}\n')
    meta = '{"instance_id": "x0", "input": "Q?", "system": "alpha", "generations": ["A"], "metadata": %s}\n'
    jsonl("metadata not an object", meta % "[1]")
    jsonl("metadata with a NUL character in a key", meta % '{"a\\u0000": 1}')
    jsonl("metadata with a NUL character in a nested value", meta % '{"a": [{"b": "\\u0000"}]}')
    jsonl("metadata with a lone surrogate in a value", meta % '{"a": "\\udfff"}')
    jsonl("metadata nested 100,000 levels deep", meta % ("[" * 100_000 + "]" * 100_000))
    jsonl("metadata nested deeper than 32 levels", meta % ('{"a": ' + "[" * 40 + "]" * 40 + "}"))
    jsonl("metadata holding NaN", meta % '{"a": NaN}')
    jsonl("metadata holding a number that overflows to Infinity", meta % '{"a": 1e400}')
    jsonl("metadata holding an integer of 5,000 digits", meta % ('{"a": ' + "9" * 5000 + "}"))
    jsonl(f"metadata over the size limit as JSON (here {MAX_TEXT} bytes)", meta % ('{"a": "' + "m" * 100 + '"}'))
    jsonl("generations missing", '{"instance_id": "x0", "input": "Q?", "system": "alpha"}\n')
    jsonl("generations not a list", '{"instance_id": "x0", "input": "Q?", "system": "alpha", "generations": "A"}\n')
    jsonl("generations an empty list", '{"instance_id": "x0", "input": "Q?", "system": "alpha", "generations": []}\n')
    jsonl("a generation not a string",
          '{"instance_id": "x0", "input": "Q?", "system": "alpha", "generations": ["A", 2]}\n')
    jsonl("a generation empty", '{"instance_id": "x0", "input": "Q?", "system": "alpha", "generations": ["A", " "]}\n')
    jsonl("a generation with a lone surrogate",
          '{"instance_id": "x0", "input": "Q?", "system": "alpha", "generations": ["A", "\\ud83d"]}\n')
    jsonl("a second JSON value after the object", ok + " []\n")
    jsonl(f"a text over the size limit (here {MAX_TEXT} bytes)",
          '{"instance_id": "x0", "input": "Q?", "system": "alpha", "generations": ["' + "é" * 60 + '"]}\n')
    jsonl("no generations at all (empty file)", "\n\n")

    gen = "import_generations (CSV)"

    def gcsv(problem, text):
        data = text.encode() if isinstance(text, str) else text
        rows.append(Row(gen, problem, _message(lambda: parse_generations("gen.csv", MAX_TEXT, data=data))))

    gcsv("empty file", "")
    gcsv("a required column missing", "instance_id,input,system,text\nx0,Q?,alpha,A\n")
    gcsv("a quoted field never closed", GEN_CSV_HEAD + 'x0,"Q?,alpha,0,A\n')
    gcsv("a row with the wrong number of fields", GEN_CSV_HEAD + "x0,Q?,alpha,0,A,extra\n")
    gcsv("instance_id longer than a name column holds", GEN_CSV_HEAD + "x" * 201 + ",Q?,alpha,0,A\n")
    gcsv("sample_index not a whole number", GEN_CSV_HEAD + "x0,Q?,alpha,first,A\n")
    gcsv("sample_index negative", GEN_CSV_HEAD + "x0,Q?,alpha,-1,A\n")
    gcsv("the same sample twice", GEN_CSV_HEAD + "x0,Q?,alpha,0,A\nx0,Q?,alpha,0,B\n")
    gcsv("text empty", GEN_CSV_HEAD + 'x0,Q?,alpha,0,""\n')
    gcsv("a NUL character in a text", GEN_CSV_HEAD + "x0,Q?,alpha,0,A\x00B\n")
    gcsv("input empty on the instance's first row", GEN_CSV_HEAD + "x0,,alpha,0,A\n")
    gcsv("input differs between rows of one instance", GEN_CSV_HEAD + "x0,Q?,alpha,0,A\nx0,Other?,beta,0,B\n")
    gcsv("header only, no rows", GEN_CSV_HEAD)

    pair = "import_pairwise_csv"

    def pcsv(problem, mutate=None, data=None):
        data = data if data is not None else _pairwise(mutate)
        rows.append(Row(pair, problem, _message(lambda: parse_pairwise_csv("pairs.csv", 100_000, data=data))))

    pcsv("a required column missing", lambda r: r.pop("Answer.pref5"))
    pcsv("Input.id not 1 or 2", lambda r: r.update({"Input.id3": "3"}))
    pcsv("Answer.pref not -1, 0 or 1", lambda r: r.update({"Answer.pref2": "0.5"}))
    pcsv("Answer.pref infinite", lambda r: r.update({"Answer.pref1": "inf"}))
    pcsv("a summary empty", lambda r: r.update({"Input.model2_summary4": " "}))
    pcsv("a NUL character in a summary", lambda r: r.update({"Input.model1_summary1": "A\x00B"}))
    pcsv("WorkerId empty", lambda r: r.update({"WorkerId": ""}))
    pcsv("WorkerId longer than a name column holds", lambda r: r.update({"WorkerId": "W" * 201}))
    pcsv("one worker judged one instance twice",
         data=inputs.pairwise_seed(1) + inputs.pairwise_seed(1).split(b"\n", 1)[1])
    pcsv("header only, no rows", data=inputs.pairwise_seed(0))

    votes = "import_votes"

    def vcsv(problem, text):
        rows.append(Row(votes, problem, _message(lambda: parse_votes_csv("votes.csv", data=text.encode()))))

    vcsv("a required column missing", "instance_id,system_a,system_b,sample_a,sample_b,winner\nx0,a,b,0,0,a\n")
    vcsv("a required value empty", VOTES_HEAD + "x0,alpha-model,beta-model,0,0,a,,\n")
    vcsv("winner not one of a, b, tie, both_bad", VOTES_HEAD + "x0,alpha-model,beta-model,0,0,left,w1,\n")
    vcsv("sample_a not a whole number", VOTES_HEAD + "x0,alpha-model,beta-model,one,0,a,w1,\n")
    vcsv("sample_b negative", VOTES_HEAD + "x0,alpha-model,beta-model,0,-2,a,w1,\n")
    vcsv("annotator longer than a name column holds",
         VOTES_HEAD + "x0,alpha-model,beta-model,0,0,a," + "w" * 201 + ",\n")
    vcsv("a NUL character in a name", VOTES_HEAD + "x0,alpha-model,beta-model,0,0,a,w\x001,\n")
    vcsv("system_b the same as system_a", VOTES_HEAD + "x0,alpha-model,alpha-model,0,0,a,w1,\n")
    vcsv("created_at not an ISO 8601 date-time", VOTES_HEAD + "x0,alpha-model,beta-model,0,0,a,w1,yesterday\n")
    vcsv("header only, no votes", VOTES_HEAD)

    panda = "load_demo (PandaLM reader)"
    item = {"idx": 0, "motivation_app": "chat", "cmp_key": "alpha_beta", "instruction": "Say hi.", "input": "",
            "response1": "Hi.", "response2": "Hello.", "annotator1": 1, "annotator2": 2, "annotator3": 0}

    def pandalm(problem, data):
        data = data if isinstance(data, bytes) else json.dumps(data, indent=1).encode()
        rows.append(Row(panda, problem, _message(lambda: parse_pandalm("pandalm.json", data, max_text_bytes=MAX_TEXT))))

    pandalm("not a JSON array", b'{"idx": 0}')
    pandalm("malformed JSON", b'[{"idx": 0,}]')
    pandalm("an item not an object", [item, 7])
    pandalm("a required key missing", [{k: v for k, v in item.items() if k != "response2"}])
    pandalm("idx not a whole number", [{**item, "idx": "0"}])
    pandalm("the same idx twice", [item, item])
    pandalm("cmp_key not two names joined by '_'", [{**item, "cmp_key": "alpha"}])
    pandalm("an annotator label true, not 0, 1 or 2", [{**item, "annotator2": True}])
    pandalm("instruction and input empty", [{**item, "instruction": " "}])
    pandalm("a response with a NUL character", [{**item, "response1": "Hi\x00."}])
    pandalm(f"a response over the size limit (here {MAX_TEXT} bytes)", [{**item, "response2": "h" * 101}])
    pandalm("an item nested 100,000 levels deep", b'[{"idx": 0, "input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]")
    return rows


def write_rows() -> list[Row]:
    """Errors found while writing (names resolved against the database); needs a test database."""
    from django.db import transaction

    from annotations.imports.parse import parse_generations
    from annotations.imports.write import write_generations, write_pairwise, write_votes
    from annotations.services import get_or_create_dataset
    from tests.factories import make_study

    rows: list[Row] = []
    study = make_study(slug="catalogue", n_instances=2, k=1, systems=("alpha-model", "beta-model"))
    make_study(slug="other-study", n_instances=1, systems=("alpha-model", "gamma-model"))

    def attempt(call):
        def atomic():
            with transaction.atomic():
                call()
        return _message(atomic)

    def vote_file(problem, text):
        parsed = parse_votes_csv("votes.csv", data=(VOTES_HEAD + text).encode())
        rows.append(Row("import_votes", problem, attempt(lambda: write_votes(parsed, study, "votes.csv"))))

    vote_file("an instance the study's dataset does not have", "x9,alpha-model,beta-model,0,0,a,w1,\n")
    vote_file("a system nobody imported", "x0,alpha-model,delta-model,0,0,a,w1,\n")
    vote_file("a system that is not in the study", "x0,alpha-model,gamma-model,0,0,a,w1,\n")
    vote_file("a sample the system does not have", "x0,alpha-model,beta-model,0,3,a,w1,\n")
    vote_file("one annotator twice on one comparison in the file", GOOD_VOTE + GOOD_VOTE.replace(",a,", ",b,"))
    with transaction.atomic():
        write_votes(parse_votes_csv("votes.csv", data=(VOTES_HEAD + GOOD_VOTE).encode()), study, "votes.csv")
    vote_file("a vote the study already has (same annotator, same comparison)", GOOD_VOTE)

    dataset = study.dataset
    changed = GEN_CSV_HEAD + "x0,Input text number 0.,alpha-model,0,A different answer.\n"
    parsed = parse_generations("gen.csv", 100_000, data=changed.encode())
    rows.append(Row("import_generations (CSV)", "a sample already stored with another text",
                    attempt(lambda: write_generations(dataset, parsed))))
    changed = GEN_CSV_HEAD + "x0,Another input.,alpha-model,0,Answer 0.0 from one of the models.\n"
    parsed = parse_generations("gen.csv", 100_000, data=changed.encode())
    rows.append(Row("import_generations (CSV)", "an instance already stored with another input",
                    attempt(lambda: write_generations(dataset, parsed))))

    get_or_create_dataset("elsewhere")
    parsed = parse_pairwise_csv("pairs.csv", 100_000, data=inputs.pairwise_seed(1))
    rows.append(Row("import_pairwise_csv", "--study names a study of another dataset",
                    attempt(lambda: write_pairwise(parsed, "elsewhere", "catalogue", ("mistral-7b", "vicuna-7b")))))
    return rows


def leaderboard_rows(folder) -> list[Row]:
    """`leaderboard --from-csv` (ranking.votes_csv), which reads vote files without any database."""
    rows: list[Row] = []

    def board(problem, data: bytes):
        (folder / "votes.csv").write_bytes(data)
        with contextlib.chdir(folder):
            rows.append(Row("leaderboard --from-csv", problem, _message(lambda: read_votes_csv("votes.csv"))))

    head = b"instance_id,system_a,system_b,sample_a,sample_b,winner,annotator\n"
    arena = b"model_a,model_b,winner,tstamp\n"
    board("empty file", b"")
    board("a required column missing", b"instance_id,system_a,system_b,winner\nx0,a,b,a\n")
    board("a column named twice", head.rstrip(b"\n") + b",winner\n")
    board("not UTF-8", head + b"x0,caf\xe9,b,0,0,a,w1\n")
    board("a quoted field never closed", head + b'x0,"alpha,b,0,0,a,w1\n')
    board("a row with the wrong number of fields", head + b"x0,a,b,0,0,a\n")
    board("a required value empty", head + b"x0,a,,0,0,a,w1\n")
    board("winner not one of a, b, tie, both_bad", head + b"x0,a,b,0,0,A,w1\n")
    board("sample_a not a whole number", head + b"x0,a,b,1.5,0,a,w1\n")
    board("sample_b negative", head + b"x0,a,b,0,-1,a,w1\n")
    board("system_b the same as system_a", head + b"x0,a,a,0,0,a,w1\n")
    board("created_at not ISO 8601", head.rstrip(b"\n") + b",created_at\nx0,a,b,0,0,a,w1,01/05/2024\n")
    board("weight not a number", head.rstrip(b"\n") + b",weight\nx0,a,b,0,0,a,w1,high\n")
    board("weight outside [0, 1]", head.rstrip(b"\n") + b",weight\nx0,a,b,0,0,a,w1,1.5\n")
    board("weight missing where the file has the column", head.rstrip(b"\n") + b",weight\nx0,a,b,0,0,a,w1,\n")
    board("Arena layout: winner not model_a, model_b, tie, tie (bothbad)", arena + b"gpt,claude,gpt,\n")
    board("Arena layout: tstamp not a Unix time", arena + b"gpt,claude,model_a,yesterday\n")
    (folder / "missing.csv").unlink(missing_ok=True)
    with contextlib.chdir(folder):
        rows.append(Row("leaderboard --from-csv", "the file does not exist",
                        _message(lambda: read_votes_csv("missing.csv"))))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "\\n")


def render(rows: list[Row]) -> str:
    lines = ["| command | input problem | message |", "|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.command} | {_cell(row.problem)} | `{_cell(row.message)}` |")
    if KNOWN_BUGS:
        lines += ["", "Known gaps (found by the fuzzers, pinned as strict xfails in `tests/fuzz/test_known_bugs.py`):",
                  ""]
        lines += ["| where | problem | fix |", "|---|---|---|"]
        for bug in KNOWN_BUGS:
            lines.append(f"| `{bug.where}` | {_cell(bug.name)} | {_cell(bug.fix)} |")
    return "\n".join(lines) + "\n"
