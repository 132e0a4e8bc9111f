"""docs/bad-input.md is generated from reality: the catalogue of bad inputs is rebuilt by running the
importers (tests/fuzz/catalogue.py) and must match the doc; every message in it names its file, line
and field. UPDATE_BAD_INPUT_DOC=1 rewrites the doc's generated part instead of comparing."""
from __future__ import annotations

import os
import re

import pytest

from tests.conftest import ROOT

from . import catalogue
from .inputs import MESSAGE

pytestmark = pytest.mark.django_db

DOC = ROOT / "docs" / "bad-input.md"
BEGIN, END = "<!-- catalogue: begin -->", "<!-- catalogue: end -->"


def test_every_catalogued_bad_input_gets_a_located_message_and_the_doc_is_current(tmp_path):
    rows = catalogue.parse_rows() + catalogue.write_rows() + catalogue.leaderboard_rows(tmp_path)
    for row in rows:
        assert not row.message.startswith("CRASH"), (row.problem, row.message)
        assert row.message != "(accepted)", f"{row.command}: {row.problem!r} was accepted"
        filename = "missing.csv" if "does not exist" in row.problem else r"\S+"
        assert re.match(MESSAGE.format(file=filename), row.message), row.message
    table = catalogue.render(rows)
    text = DOC.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    generated = f"{head}{BEGIN}\n{table}{END}{tail}"
    if os.environ.get("UPDATE_BAD_INPUT_DOC") == "1":
        DOC.write_text(generated, encoding="utf-8")
    assert text == generated, "docs/bad-input.md is out of date: rerun this test with UPDATE_BAD_INPUT_DOC=1"
