"""Every importer's parse function, fed arbitrary bytes, arbitrary text, mutated valid files and
structured-but-wrong files: it either returns or raises its one documented error type, whose message
is one line `FILE:LINE: field: what is wrong`. Never any other exception. And what it returns can be
stored: every string passes `text_problem` (no NUL, no lone surrogate) and every JSON value passes
`json_problem` (depth, numbers, keys), so the write step cannot fail on PostgreSQL with a server error.

Parsers: `annotations.imports.parse.parse_generations_jsonl / parse_generations_csv / parse_generations
/ parse_pairwise_csv / parse_votes_csv`, the PandaLM demo reader `demo.sources.parse_pandalm`
(ImportFileError) and `annotations.imports.parse.read_votes_csv` (VoteFileError). No database is touched, so
these run everywhere, SQLite or not.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotations.imports.parse import (
    ImportFileError,
    ParsedGenerations,
    ParsedPairwise,
    json_problem,
    parse_generations,
    parse_generations_csv,
    parse_generations_jsonl,
    parse_pairwise_csv,
    parse_votes_csv,
    read_votes_csv,
    text_problem,
)
from annotations.imports.parse import ImportFileError as VoteFileError
from demo.sources import PandaLMData, parse_pandalm

from . import inputs
from .known_bugs import tolerated

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_TEXT = 2000  # small, so the size limit is reachable by the fuzzer too

GENERATION_COLUMNS = ["instance_id", "input", "system", "sample_index", "text"]
PAIRWISE_COLUMNS = (["WorkerId"] + [f"Input.model{m}_summary{i}" for i in range(1, 6) for m in (1, 2)]
                    + [f"Input.id{i}" for i in range(1, 6)] + [f"Answer.pref{i}" for i in range(1, 6)])
ARENA_COLUMNS = ["model_a", "model_b", "winner", "question_id", "judge", "tstamp"]


def assert_located(error: Exception, filename: str) -> None:
    message = str(error)
    if tolerated(message):
        return
    assert inputs.message_pattern(filename).match(message), f"not FILE:LINE: field: problem -> {message!r}"
    assert "\n" not in message and "\r" not in message, f"the message is not one line: {message!r}"


def stored_strings(parsed) -> list[str]:
    """Every string a parse result would have written to the database."""
    if isinstance(parsed, PandaLMData):
        return stored_strings(parsed.generations)
    if isinstance(parsed, ParsedGenerations):
        return ([i.external_id for i in parsed.instances.values()]
                + [i.input for i in parsed.instances.values() if i.input is not None]
                + [i.reference for i in parsed.instances.values() if i.reference is not None]
                + [text for g in parsed.generations for text in (g.system, g.text)])
    if isinstance(parsed, ParsedPairwise):
        return [text for texts in parsed.instances.values() for side in texts for text in side] + [
            j.worker for j in parsed.judgments]
    return [text for v in parsed for text in (v.instance_id, v.system_a, v.system_b, v.annotator)]


def assert_storable(parsed) -> None:
    for text in stored_strings(parsed):
        assert isinstance(text, str) and text_problem(text) is None, f"accepted an unstorable text: {text!r}"
    generations = parsed.generations if isinstance(parsed, PandaLMData) else parsed
    if isinstance(generations, ParsedGenerations):
        assert all(g.text.strip() for g in generations.generations), "accepted an empty generation"
        for instance in generations.instances.values():
            assert json_problem(instance.metadata) is None, f"accepted unstorable metadata: {instance.metadata!r}"


def check_import_parser(parse, filename: str, *args, **kwargs):
    try:
        parsed = parse(*args, **kwargs)
    except ImportFileError as error:
        assert_located(error, filename)
    except Exception as error:  # noqa: BLE001 - only the known, reported bugs pass here
        if not tolerated(error):
            raise
    else:
        assert_storable(parsed)


def check_bytes_parsers(data: bytes) -> None:
    """All byte-level entry points of annotations.imports.parse on one file."""
    check_import_parser(parse_generations, "gen.jsonl", "gen.jsonl", MAX_TEXT, data=data)
    check_import_parser(parse_generations, "gen.csv", "gen.csv", MAX_TEXT, data=data)
    check_import_parser(parse_pairwise_csv, "pairs.csv", "pairs.csv", MAX_TEXT, data=data)
    check_import_parser(parse_votes_csv, "votes.csv", "votes.csv", data=data)
    check_import_parser(parse_pandalm, "t.json", "t.json", data=data, max_text_bytes=MAX_TEXT)


@pytest.fixture(scope="module")
def vote_file():
    """One scratch path for read_votes_csv, which reads from disk (module-scoped: Hypothesis reuses it)."""
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder) / "votes.csv"


def check_read_votes_csv(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        read_votes_csv(path)
    except VoteFileError as error:
        assert_located(error, str(path))


# --------------------------------------------------------------------------------------------------
# anything at all


@FUZZ
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_are_parsed_or_rejected_with_a_located_error(data):
    check_bytes_parsers(data)


@FUZZ
@given(st.text(max_size=2000))
def test_arbitrary_text_is_parsed_or_rejected_with_a_located_error(text):
    check_import_parser(parse_generations_jsonl, "gen.jsonl", "gen.jsonl", text, MAX_TEXT)
    check_import_parser(parse_generations_csv, "gen.csv", "gen.csv", text, MAX_TEXT)
    check_bytes_parsers(text.encode("utf-8", errors="surrogatepass"))


@FUZZ
@given(data=st.binary(max_size=3000))
def test_read_votes_csv_on_arbitrary_bytes_returns_or_raises_vote_file_error(vote_file, data):
    check_read_votes_csv(vote_file, data)


# --------------------------------------------------------------------------------------------------
# valid files, damaged


@FUZZ
@given(inputs.mutated(inputs.generations_jsonl_seed()))
def test_damaged_generations_jsonl_is_parsed_or_rejected_with_a_located_error(data):
    check_import_parser(parse_generations, "gen.jsonl", "gen.jsonl", MAX_TEXT, data=data)


@FUZZ
@given(inputs.mutated(inputs.generations_csv_seed()))
def test_damaged_generations_csv_is_parsed_or_rejected_with_a_located_error(data):
    check_import_parser(parse_generations, "gen.csv", "gen.csv", MAX_TEXT, data=data)


@FUZZ
@given(inputs.mutated(inputs.pairwise_seed()))
def test_damaged_crowd_batch_is_parsed_or_rejected_with_a_located_error(data):
    check_import_parser(parse_pairwise_csv, "pairs.csv", "pairs.csv", MAX_TEXT, data=data)


@FUZZ
@given(inputs.mutated(inputs.votes_seed()))
def test_damaged_votes_csv_is_parsed_or_rejected_with_a_located_error(vote_file, data):
    check_import_parser(parse_votes_csv, "votes.csv", "votes.csv", data=data)
    check_read_votes_csv(vote_file, data)


@FUZZ
@given(inputs.mutated(inputs.pandalm_seed()))
def test_damaged_pandalm_file_is_read_or_rejected_with_a_located_error(data):
    check_import_parser(parse_pandalm, "t.json", "t.json", data=data, max_text_bytes=MAX_TEXT)


@FUZZ
@given(inputs.mutated(inputs.arena_seed()))
def test_damaged_arena_battles_are_read_or_rejected_with_a_located_error(vote_file, data):
    check_read_votes_csv(vote_file, data)


# --------------------------------------------------------------------------------------------------
# the right shape, the wrong values


@FUZZ
@given(inputs.structured_jsonl())
def test_generation_lines_with_wrong_values_are_rejected_with_a_located_error(data):
    check_import_parser(parse_generations, "gen.jsonl", "gen.jsonl", MAX_TEXT, data=data)


@FUZZ
@given(inputs.structured_pandalm())
def test_pandalm_items_with_wrong_values_are_skipped_or_rejected_with_a_located_error(data):
    check_import_parser(parse_pandalm, "t.json", "t.json", data=data, max_text_bytes=MAX_TEXT)


@FUZZ
@given(inputs.structured_csv(GENERATION_COLUMNS))
def test_generation_rows_with_wrong_values_are_rejected_with_a_located_error(data):
    check_import_parser(parse_generations, "gen.csv", "gen.csv", MAX_TEXT, data=data)


@FUZZ
@given(inputs.structured_csv(PAIRWISE_COLUMNS, max_rows=3))
def test_crowd_batch_rows_with_wrong_values_are_rejected_with_a_located_error(data):
    check_import_parser(parse_pairwise_csv, "pairs.csv", "pairs.csv", MAX_TEXT, data=data)


@FUZZ
@given(inputs.structured_csv(inputs.VOTES_HEADER + ["weight"]))
def test_vote_rows_with_wrong_values_are_rejected_with_a_located_error(vote_file, data):
    check_import_parser(parse_votes_csv, "votes.csv", "votes.csv", data=data)
    check_read_votes_csv(vote_file, data)


@FUZZ
@given(inputs.structured_csv(ARENA_COLUMNS))
def test_arena_rows_with_wrong_values_are_rejected_with_a_located_error(vote_file, data):
    check_read_votes_csv(vote_file, data)


def test_the_seeds_are_valid_files(vote_file):
    """The mutations start from files the parsers accept (else the fuzzing proves little)."""
    assert len(parse_generations("gen.jsonl", MAX_TEXT, data=inputs.generations_jsonl_seed()).generations) == 12
    assert len(parse_generations("gen.csv", MAX_TEXT, data=inputs.generations_csv_seed()).generations) == 12
    assert len(parse_pairwise_csv("pairs.csv", MAX_TEXT, data=inputs.pairwise_seed()).judgments) == 20
    assert len(parse_votes_csv("votes.csv", data=inputs.votes_seed())) == 6
    vote_file.write_bytes(inputs.votes_seed())
    assert len(read_votes_csv(vote_file)) == 6
    vote_file.write_bytes(inputs.arena_seed())
    assert read_votes_csv(vote_file).winner == ["a", "both_bad", "tie"]
    assert len(parse_pandalm("t.json", data=inputs.pandalm_seed()).items) == 6


@pytest.mark.parametrize("raw", inputs.RAW_JSON_VALUES, ids=range(len(inputs.RAW_JSON_VALUES)))
def test_every_raw_json_value_is_refused_in_metadata(raw):
    """Each verbatim JSON shape the fuzzers splice in is refused where it lands in a stored value."""
    line = f'{{"instance_id": "x0", "input": "Q?", "system": "s", "generations": ["A"], "metadata": {{"m": {raw}}}}}'
    with pytest.raises(ImportFileError) as error:
        parse_generations_jsonl("gen.jsonl", line, MAX_TEXT)
    assert str(error.value).startswith("gen.jsonl:1: metadata: "), str(error.value)
