"""Regression tests for the bugs the fuzzers and fault tests found (all fixed), each with its smallest
input. New findings go to `known_bugs.py` (which lets the fuzzers step over them) with a strict xfail here.
"""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from annotations.imports.parse import ImportFileError, parse_generations_csv, parse_votes_csv, read_votes_csv
from annotations.imports.parse import ImportFileError as VoteFileError
from annotations.models import Generation, Instance, Vote
from tests.annotations.test_annotate_view import invited_client
from tests.factories import make_study

from . import inputs

VOTES_HEAD = "instance_id,system_a,system_b,sample_a,sample_b,winner,annotator,created_at\n"


def test_vote_file_with_a_naive_created_at_is_read_as_utc():
    votes = parse_votes_csv("votes.csv", data=(VOTES_HEAD + "x0,alpha,beta,0,0,a,w1,2024-05-01T12:30:00\n").encode())
    assert votes[0].created_at.isoformat() == "2024-05-01T12:30:00+00:00"


def test_repeated_header_name_is_reported_as_a_header_error(tmp_path):
    path = tmp_path / "votes.csv"
    path.write_bytes(b"model_a,model_b,winner,my col,my col\n")
    with pytest.raises(VoteFileError) as error:
        read_votes_csv(path)
    assert inputs.message_pattern(str(path)).match(str(error.value)), str(error.value)


def test_missing_column_message_stays_on_one_line_whatever_the_header_holds():
    with pytest.raises(ImportFileError) as error:
        parse_generations_csv("gen.csv", '"instance\nid",input\n', 1000)
    assert "\n" not in str(error.value), repr(str(error.value))


@pytest.mark.django_db
def test_sample_index_beyond_the_database_integer_is_a_located_error(tmp_path):
    path = tmp_path / "gen.csv"
    path.write_text("instance_id,input,system,sample_index,text\nx0,Question?,alpha,99999999999999999999,An answer.\n")
    stderr = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("import_generations", str(path), "--dataset", "big", stdout=io.StringIO(), stderr=stderr)
    assert inputs.message_pattern(str(path)).match(stderr.getvalue())
    assert not Instance.objects.exists() and not Generation.objects.exists()


def test_nul_character_in_a_text_is_a_located_error():
    with pytest.raises(ImportFileError) as error:
        parse_generations_csv("gen.csv", "instance_id,input,system,sample_index,text\nx0,Q?,alpha,0,A\x00B\n", 1000)
    assert inputs.message_pattern("gen.csv").match(str(error.value))


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["token", "rationale"])
def test_nul_character_in_a_vote_field_is_refused_not_a_server_error(request, settings, field):
    study = make_study(slug="nul-vote", n_instances=2, rationale="optional")
    client = invited_client(study)
    page = client.get("/s/nul-vote/").content.decode()
    token = page.split('name="token" value="')[1].split('"')[0]
    fields = {"token": token, "choice": "left", "rationale": "fine"}
    fields[field] = fields[field] + "\x00"
    response = client.post("/s/nul-vote/vote/", fields, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert not Vote.objects.exists()
