"""The demo's data side: the PandaLM reader (demo.sources.parse_pandalm) skips items no human can
judge and says so, converts nothing, keeps k = 1 data at one sample per (prompt, system), refuses what
cannot be stored with `FILE:LINE: field: message`; and `load_demo` run twice on a fresh database adds
nothing the second time (it stopped with "response: differs from the stored sample 0" when the
release's `true` response had been stored as "True"), and its summary tells the file's votes from those
collected since."""
import io
import json
from collections import Counter

import pytest
from django.core.management import call_command

from annotations.imports.parse import ImportFileError
from annotations.models import AnnotatorProfile, Comparison, Dataset, Generation, Instance, Study, System, Vote
from demo import sources as demo
from tests.factories import answer, make_annotator

MODELS = (Dataset, Instance, Generation, System, Study, Comparison, Vote, AnnotatorProfile)


def item(idx, response1="First answer.", response2="Second answer.", cmp_key="sys-a_sys-b",
         instruction="Say something.", **extra):
    return {"idx": idx, "motivation_app": "chat", "cmp_key": cmp_key, "instruction": instruction, "input": "",
            "response1": response1, "response2": response2, "annotator1": 1, "annotator2": 2, "annotator3": 0,
            **extra}


def pandalm(*items) -> bytes:
    return json.dumps(list(items), indent=4).encode()


def test_items_with_an_empty_or_non_string_response_are_skipped_and_counted():
    data = demo.parse_pandalm("t.json", pandalm(item(0), item(1, response1=True), item(2, response2=""),
                                                item(3, response2=None), item(4, response1="   ")))
    assert [i.idx for i in data.items] == [0]
    assert [(s.idx, s.reason) for s in data.skipped] == [
        (1, "a response that is not a string (bool)"), (2, "an empty response"),
        (3, "a response that is not a string (null)"), (4, "an empty response")]
    assert data.skipped_text() == ("skipped 4 of 5 items that cannot be judged: 1 with a response that is not a "
                                   "string (bool), 1 with a response that is not a string (null), 2 with an "
                                   "empty response")
    texts = {g.text for g in data.generations.generations}
    assert texts == {"First answer.", "Second answer."}  # nothing converted, nothing empty


def test_distinct_responses_of_one_system_to_one_prompt_are_separate_instances_not_samples():
    data = demo.parse_pandalm("t.json", pandalm(
        item(0), item(1, cmp_key="sys-a_sys-c", response2="C says."),
        item(2, response1="Another first answer.", cmp_key="sys-a_sys-c", response2="C says."),
        item(3, cmp_key="sys-b_sys-c", response1="Second answer.", response2="C says.")))
    assert [i.instance_key for i in data.items] == ["p0000", "p0000", "p0002", "p0000"]
    assert all(g.sample_index == 0 for g in data.generations.generations)
    per_system = Counter((g.external_id, g.system) for g in data.generations.generations)
    assert set(per_system.values()) == {1}
    assert data.generations.instances["p0002"].input == data.generations.instances["p0000"].input


def test_the_same_pair_judged_twice_on_one_prompt_is_two_comparisons():
    data = demo.parse_pandalm("t.json", pandalm(item(0), item(1)))
    assert [i.instance_key for i in data.items] == ["p0000", "p0001"]


BAD_ITEMS = [
    ("label-bool", {"annotator2": True}, "annotator2", "True is not 0, 1 or 2"),
    ("label-out-of-range", {"annotator3": 3}, "annotator3", "3 is not 0, 1 or 2"),
    ("response-nul", {"response1": "a\u0000b"}, "response1", "NUL"),
    ("response-surrogate", {"response2": "x\ud800y"}, "response2", "lone surrogate"),
    ("response-over-the-limit", {"response2": "r" * 101}, "response2", "over the limit of 100"),
    ("instruction-not-a-string", {"instruction": ["Say"]}, "instruction", "must be a string, not list"),
    ("instruction-and-input-empty", {"instruction": " "}, "instruction", "is empty"),
    ("cmp-key-one-name", {"cmp_key": "sys-a"}, "cmp_key", "two different system names"),
    ("cmp-key-null", {"cmp_key": None}, "cmp_key", "must be a string, not null"),
    ("label-a-list", {"annotator1": [[1]]}, "annotator1", "a JSON list is not 0, 1 or 2"),
    ("label-a-long-string", {"annotator1": "1" * 1000}, "annotator1", "\u2026 is not 0, 1 or 2"),
    ("idx-not-a-number", {"idx": "7"}, "idx", "is not a whole number"),
    ("app-nul", {"motivation_app": "c\u0000"}, "motivation_app", "NUL"),
]


@pytest.mark.parametrize("key", ["idx", "cmp_key", "instruction", "response1", "annotator3"])
def test_an_item_without_a_required_key_is_a_located_error_not_skipped(key):
    raw = pandalm(item(0), {k: v for k, v in item(1).items() if k != key})
    with pytest.raises(ImportFileError) as error:
        demo.parse_pandalm("t.json", raw)
    assert str(error.value).endswith(f": {key}: is missing"), str(error.value)


@pytest.mark.parametrize("case,change,field,piece", BAD_ITEMS, ids=[b[0] for b in BAD_ITEMS])
def test_a_bad_item_is_a_located_error(case, change, field, piece):
    raw = pandalm(item(0), {**item(1), **change})
    with pytest.raises(ImportFileError) as error:
        demo.parse_pandalm("t.json", raw, max_text_bytes=100)
    line = raw.decode().splitlines().index("    {", 2) + 1  # the line the second item starts on
    assert str(error.value).startswith(f"t.json:{line}: {field}: ") and piece in str(error.value), str(error.value)


@pytest.mark.parametrize("raw,field", [
    (b"[7]", "item"), (b'{"idx": 0}', "json"), (b"[", "json"), (b"[] 2", "json"), (b'[{"idx": 0} {}]', "json"),
    (b'[{"idx": 0, "input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]", "input"),
    (pandalm(item(0)).replace(b'"idx": 0', b'"idx": NaN').replace(b"\n", b" "), "idx"),
])
def test_a_malformed_file_is_a_located_error(raw, field):
    with pytest.raises(ImportFileError) as error:
        demo.parse_pandalm("t.json", raw)
    assert str(error.value).startswith(f"t.json:1: {field}: "), str(error.value)
    assert "object at 0x" not in str(error.value)


def test_the_published_file_reads_at_one_sample_per_prompt_and_system():
    data = demo.parse_pandalm(demo.DEMO_DIR / demo.PANDALM_FILE)
    assert len(data.items) == 939 and len(data.skipped) == 60  # 54 empty responses, 6 JSON `true`
    assert {g.sample_index for g in data.generations.generations} == {0}
    assert data.skipped[0].line > data.skipped[0].idx  # real line numbers, not positions in the array


def old_reader_rows():
    dataset = Dataset.objects.create(slug=demo.PANDALM_DATASET)
    instance = Instance.objects.create(dataset=dataset, external_id="p0000", input="Say something.")
    return Generation.objects.create(instance=instance, system=System.objects.create(name="bloom-7b"), sample_index=0,
                                     text="")


@pytest.mark.django_db
def test_load_demo_replaces_pandalm_data_of_the_old_reader():
    """The old reader stored "" responses and extra samples; loading over them failed (a second `make run`
    of an earlier database). Without votes collected here the old rows are replaced."""
    old_reader_rows()
    out = io.StringIO()
    call_command("load_demo", "--skip-separability", stdout=out, stderr=io.StringIO())
    assert "replacing the rows an older reader stored" in out.getvalue()
    assert not Generation.objects.filter(text="").exists()
    assert Vote.objects.filter(study__slug=demo.PANDALM_STUDY).count() == 3 * 939


@pytest.mark.django_db
def test_load_demo_over_old_pandalm_data_with_live_votes_says_what_to_do():
    from django.contrib.auth import get_user_model
    from django.core.management.base import CommandError
    from django.utils import timezone

    from annotations.models import Assignment, Comparison
    from annotations.models import Study as StudyModel
    from annotations.services import get_or_create_comparison

    empty = old_reader_rows()
    other = Generation.objects.create(instance=empty.instance, system=System.objects.create(name="opt-7b"),
                                      sample_index=0, text="A reply.")
    study = StudyModel.objects.create(slug=demo.PANDALM_STUDY, name="x", dataset=empty.instance.dataset)
    a, b = (empty, other) if empty.system_id < other.system_id else (other, empty)
    comparison, _ = get_or_create_comparison(study, a, b)
    user = get_user_model().objects.create(username="live-voter")
    now = timezone.now()
    assignment = Assignment.objects.create(comparison=comparison, annotator=user, left_is_a=True, issued_at=now,
                                           expires_at=now, served_at=now, completed_at=now)
    Vote.objects.create(assignment=assignment, study=study, comparison=comparison, annotator=user, choice="left",
                        winner="a", submitted_at=now)
    with pytest.raises(CommandError, match="older PandaLM reader.*votes collected here"):
        call_command("load_demo", "--skip-separability", stdout=io.StringIO(), stderr=io.StringIO())
    assert Comparison.objects.filter(pk=comparison.pk).exists()  # nothing was deleted


@pytest.mark.django_db
def test_load_demo_twice_on_a_fresh_database_changes_no_row_count():
    def load():
        out = io.StringIO()
        call_command("load_demo", "--skip-separability", stdout=out, stderr=io.StringIO())  # SystemExit on failure
        return out.getvalue()

    first = load()
    assert "skipped 60 of 999 items that cannot be judged" in first
    assert "study samsum-summaries: 250 comparisons to judge, 750 historical votes\n" in first
    answer(Study.objects.get(slug="samsum-summaries"), make_annotator("demo-voter"))  # a vote collected here
    counts = {model.__name__: model.objects.count() for model in MODELS}
    second = load()
    assert {model.__name__: model.objects.count() for model in MODELS} == counts
    # the summary keeps the file's votes apart from those collected since (it called them all "historical")
    assert "study samsum-summaries: 250 comparisons to judge, 750 historical votes, 1 collected here\n" in second
    assert Vote.objects.filter(study__slug=demo.PANDALM_STUDY).count() == 939 * 3
    assert not Generation.objects.filter(text="True").exists() and not Generation.objects.filter(text="").exists()
