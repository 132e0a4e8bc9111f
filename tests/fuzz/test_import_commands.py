"""The import commands (`import_generations`, `import_pairwise_csv`, `import_votes`) run through
`call_command` on damaged and structured-but-wrong files: a failing import exits 1 with one located
line on stderr and leaves every table exactly as it was; a passing one is fine too. Nothing else
(no traceback, no other exception, no half-written rows).

All examples of one test share the test's transaction, so later examples also meet rows written by
earlier successful ones (re-imports, conflicting texts): the write step's errors are fuzzed as well.
"""
from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotations.models import (
    AnnotatorProfile,
    Assignment,
    Comparison,
    Dataset,
    Generation,
    Instance,
    Study,
    System,
    Vote,
)
from ranking.models import LeaderboardSnapshot, RatingState
from tests.factories import make_study

from . import inputs
from .known_bugs import tolerated
from .test_parsers import GENERATION_COLUMNS, PAIRWISE_COLUMNS

pytestmark = pytest.mark.django_db

FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
TABLES = (Dataset, Instance, System, Generation, Study, Comparison, Assignment, Vote, AnnotatorProfile,
          RatingState, LeaderboardSnapshot)


def row_counts() -> dict[str, int]:
    counts = {model.__name__: model.objects.count() for model in TABLES}
    counts["User"] = get_user_model().objects.count()
    counts["Study.systems"] = Study.systems.through.objects.count()
    return counts


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def run_import(folder: Path, filename: str, data: bytes, *args) -> None:
    """Run one import; on failure check the exit code, the message and that nothing changed."""
    path = folder / filename
    path.write_bytes(data)
    before = row_counts()
    stderr = io.StringIO()
    try:
        call_command(*args[:1], str(path), *args[1:], stdout=io.StringIO(), stderr=stderr)
    except SystemExit as exit_:
        assert exit_.code == 1
        message = stderr.getvalue().strip()
        if tolerated(message):
            return
        assert inputs.message_pattern(str(path)).match(message), f"unlocated error: {message!r}"
        assert "\n" not in message, f"more than one line: {message!r}"
        assert row_counts() == before, "a failed import changed the database"
    except Exception as error:  # noqa: BLE001 - only the known, reported bugs pass here
        if not tolerated(error):
            raise


# --------------------------------------------------------------------------------------------------


@FUZZ
@given(data=st.one_of(inputs.mutated(inputs.generations_jsonl_seed()),
                      inputs.structured_jsonl()))
def test_failed_generations_jsonl_import_leaves_every_table_unchanged(folder, data):
    run_import(folder, "gen.jsonl", data, "import_generations", "--dataset", "fuzz-gen", "--max-text-bytes", "2000")


@FUZZ
@given(data=st.one_of(inputs.mutated(inputs.generations_csv_seed()),
                      inputs.structured_csv(GENERATION_COLUMNS)))
def test_failed_generations_csv_import_leaves_every_table_unchanged(folder, data):
    run_import(folder, "gen.csv", data, "import_generations", "--dataset", "fuzz-gen", "--max-text-bytes", "2000")


@FUZZ
@given(data=st.one_of(inputs.mutated(inputs.pairwise_seed()),
                      inputs.structured_csv(PAIRWISE_COLUMNS, max_rows=3)))
def test_failed_crowd_batch_import_leaves_every_table_unchanged(folder, data):
    run_import(folder, "pairs.csv", data, "import_pairwise_csv", "--dataset", "fuzz-pairs", "--study", "fuzz-pairs",
               "--systems", "mistral-7b,vicuna-7b")


@FUZZ
@given(data=st.one_of(inputs.mutated(inputs.votes_seed()),
                      inputs.structured_csv(inputs.VOTES_HEADER)))
def test_failed_vote_import_leaves_every_table_unchanged(folder, data):
    if not Study.objects.filter(slug="fuzz-votes").exists():
        make_study(slug="fuzz-votes", n_instances=3, k=2, systems=("alpha-model", "beta-model"), overlap=3)
    run_import(folder, "votes.csv", data, "import_votes", "--study", "fuzz-votes")


def test_the_seed_files_import_and_a_second_import_adds_nothing(folder):
    """The starting points are good files, so what the fuzzers find is about the damage."""
    make_study(slug="fuzz-votes", n_instances=3, k=2, systems=("alpha-model", "beta-model"), overlap=3)
    for filename, data, args in (
        ("gen.jsonl", inputs.generations_jsonl_seed(), ("import_generations", "--dataset", "fuzz-gen")),
        ("pairs.csv", inputs.pairwise_seed(), ("import_pairwise_csv", "--dataset", "fuzz-pairs", "--study",
                                               "fuzz-pairs", "--systems", "mistral-7b,vicuna-7b")),
        ("votes.csv", inputs.votes_seed(), ("import_votes", "--study", "fuzz-votes")),
    ):
        path = folder / filename
        path.write_bytes(data)
        call_command(args[0], str(path), *args[1:], stdout=io.StringIO(), stderr=io.StringIO())
        once = row_counts()
        if args[0] != "import_votes":  # a second vote import is refused (votes already stored), see below
            call_command(args[0], str(path), *args[1:], stdout=io.StringIO(), stderr=io.StringIO())
            assert row_counts() == once
    assert Vote.objects.filter(study__slug="fuzz-votes").count() == 6
    assert Vote.objects.filter(study__slug="fuzz-pairs").count() == 20
    with pytest.raises(SystemExit):
        call_command("import_votes", str(folder / "votes.csv"), "--study", "fuzz-votes", stdout=io.StringIO(),
                     stderr=io.StringIO())
    assert row_counts() == once
