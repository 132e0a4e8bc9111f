"""Tests of the vote-file reader: both layouts, and one `FILE:LINE: field: problem` line per kind of bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from annotations.imports.parse import ImportFileError as VoteFileError
from annotations.imports.parse import read_votes_csv

HEADER = "instance_id,system_a,system_b,sample_a,sample_b,winner,annotator"


def write(tmp_path, text, name="votes.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_reads_the_project_layout(tmp_path):
    path = write(tmp_path, "\ufeff" + HEADER + ",created_at,weight\n"
                 "q1,llama-7b,opt-7b,0,2,a,ann1,2024-05-01T12:30:00+00:00,0.5\n"
                 "\n"
                 'q2, opt-7b ,bloom-7b,1,1,tie,ann2,,1\n'
                 '"q,3",bloom-7b,llama-7b,4,0,both_bad,ann1,2024-05-02,0\n')
    table = read_votes_csv(path)
    assert table.layout == "votes"
    assert len(table) == 3
    assert table.instance_id == ["q1", "q2", "q,3"]
    assert table.system_a == ["llama-7b", "opt-7b", "bloom-7b"]
    assert table.winner == ["a", "tie", "both_bad"]
    assert table.sample_a == [0, 1, 4] and table.sample_b == [2, 1, 0]
    assert table.created_at == [datetime(2024, 5, 1, 12, 30, tzinfo=UTC), None,
                                datetime(2024, 5, 2, tzinfo=UTC)]
    assert table.weight == [0.5, 1.0, 0.0]
    assert table.line == [2, 4, 5]
    assert table.systems == ["llama-7b", "opt-7b", "bloom-7b"]


def test_reads_chatbot_arena_battles(tmp_path):
    path = write(tmp_path, "question_id,model_a,model_b,winner,judge,tstamp,language\n"
                 "abc,gpt-4,claude-1,model_a,u1,1682351591.1,English\n"
                 "def,claude-1,vicuna-13b,tie (bothbad),u2,1682351600,English\n"
                 "ghi,vicuna-13b,gpt-4,model_b,u3,,English\n"
                 "jkl,gpt-4,vicuna-13b,tie,u3,,English\n")
    table = read_votes_csv(path)
    assert table.layout == "arena"
    assert table.winner == ["a", "both_bad", "b", "tie"]
    assert table.instance_id == ["abc", "def", "ghi", "jkl"]
    assert table.annotator == ["u1", "u2", "u3", "u3"]
    assert table.sample_a == [None] * 4
    assert table.created_at[0] == datetime.fromtimestamp(1682351591.1, tz=UTC)
    assert table.weight is None


def test_empty_body_gives_an_empty_table(tmp_path):
    assert len(read_votes_csv(write(tmp_path, HEADER + "\n"))) == 0


def error_of(path) -> str:
    with pytest.raises(VoteFileError) as caught:
        read_votes_csv(path)
    text = str(caught.value)
    assert "\n" not in text
    assert isinstance(caught.value, ValueError)
    return text


GOOD = "1,x,y,0,0,a,ann"


@pytest.mark.parametrize(
    "content, line, field, problem",
    [
        ("instance_id,system_a,system_b,sample_a,sample_b,annotator\n" + "1,x,y,0,0,ann\n",
         1, "winner", "missing column"),
        ("", 1, "header", "the file is empty"),
        (HEADER + ",winner\n", 1, "header", "column 'winner' appears twice"),
        (HEADER + "\n" + GOOD + "\n1,,y,0,0,a,ann\n", 3, "system_a", "is empty"),
        (HEADER + "\n" + GOOD + "\n1,x,y,0,0,a,\n", 3, "annotator", "is empty"),
        (HEADER + "\n1,x,y,0,0,left,ann\n", 2, "winner", "'left' is not one of a, b, tie, both_bad"),
        (HEADER + "\n1,x,y,0,0,TIE,ann\n", 2, "winner", "'TIE' is not one of a, b, tie, both_bad"),
        (HEADER + "\n1,x,x,0,0,a,ann\n", 2, "system_b", "'x' is the same system as system_a"),
        (HEADER + "\n1,x,y,first,0,a,ann\n", 2, "sample_a", "'first' is not a whole number"),
        (HEADER + "\n1,x,y,0,-1,a,ann\n", 2, "sample_b", "-1 is not between 0 and"),
        (HEADER + "\n" + GOOD + "\n" + GOOD + ",extra\n", 3, "row", "expected 7 fields as in the header, found 8"),
        (HEADER + "\n" + GOOD + '\n2,"x,y,0,0,a,ann\n' + GOOD + "\n", 3, "row", "malformed CSV"),
        (HEADER + ",created_at\n" + GOOD + ",yesterday\n", 2, "created_at", "'yesterday' is not an ISO 8601 time"),
        (HEADER + ",weight\n" + GOOD + ",1.5\n", 2, "weight", "'1.5' is not in [0, 1]"),
        (HEADER + ",weight\n" + GOOD + ",\n", 2, "weight", "empty"),
        ("model_a,model_b,winner\ngpt-4,claude-1,model_c\n", 2, "winner",
         "'model_c' is not one of model_a, model_b, tie, tie (bothbad)"),
        ("model_a,winner\ngpt-4,model_a\n", 1, "model_b", "missing column (Chatbot Arena layout"),
        ("question_id,model_a,model_b,winner,tstamp\nq,gpt-4,claude-1,model_a,noon\n", 2, "tstamp",
         "'noon' is not a Unix time"),
    ],
)
def test_bad_input_gives_file_line_field(tmp_path, content, line, field, problem):
    path = write(tmp_path, content)
    text = error_of(path)
    assert text.startswith(f"{path}:{line}: {field}: "), text
    assert problem in text


def test_non_utf8_bytes_name_the_line_and_the_byte(tmp_path):
    """The one reader decodes as every importer does: the first undecodable byte, with its line."""
    path = write(tmp_path, (HEADER + "\n" + GOOD + "\n2,x,caf").encode() + b"\xe9" + b",0,0,a,ann\n")
    assert error_of(path) == f"{path}:3: encoding: byte 0xe9 is not valid UTF-8"
    path = write(tmp_path, b"instance_id,syst\xffem_a\n", name="header.csv")
    assert error_of(path) == f"{path}:1: encoding: byte 0xff is not valid UTF-8"


def test_multiline_quoted_field_keeps_line_numbers_right(tmp_path):
    path = write(tmp_path, HEADER + '\n"q\n1",x,y,0,0,a,ann\n1,x,y,0,0,nope,ann\n')
    assert error_of(path).startswith(f"{path}:4: winner: ")


def test_missing_file(tmp_path):
    path = tmp_path / "absent.csv"
    assert error_of(path).startswith(f"{path}:0: file: cannot be read")


def test_error_attributes(tmp_path):
    path = write(tmp_path, HEADER + "\n1,x,y,0,0,win,ann\n")
    with pytest.raises(VoteFileError) as caught:
        read_votes_csv(path)
    assert (caught.value.filename, caught.value.line, caught.value.field) == (str(path), 2, "winner")
