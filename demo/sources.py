"""The demo: the separability paper's two crowd batches and the PandaLM human test set.

The files live in demo/data/ with their origin and licence (demo/data/README.md). They are published
datasets, copied as released, so the readers here decide deliberately what to do with their flaws
instead of editing them:

- PandaLM has no instance ids: an instance is one prompt (instruction + input), named after the `idx`
  of its first item (`p0042`); each item is one comparison of two systems' responses, judged by the
  same three annotators. PandaLM has one response per system and prompt (k = 1), so an instance holds
  one sample per system. Where two items give different responses of one system to the same prompt
  (a few prompts were generated more than once), the later item does not become a second "sample"
  (that would make k look > 1 on k = 1 data): it opens another instance of the same prompt, named after
  its own idx. The same happens to an item whose pair of systems the instance already compares.
- An item whose response is empty or not a string (the release has `true` in six items and "" in 54)
  cannot be judged by a human: it is skipped, counted and reported by `load_demo`, never converted.
  Anything else that is wrong (a missing key, a label that is not 0, 1 or 2, a text that cannot be
  stored) is an ImportFileError naming the file, the line the item starts on and the field.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from annotations.imports.parse import (
    MAX_NAME_CHARS,
    ImportFileError,
    ParsedGeneration,
    ParsedGenerations,
    ParsedInstance,
    _type_name,
    check_text,
    json_decoder,
    load_json,
    read_utf8_text,
    shown,
)

DEMO_DIR = Path(settings.BASE_DIR) / "demo" / "data"


@dataclass(frozen=True)
class PairwiseDemo:
    file: str
    dataset: str
    study: str
    name: str
    systems: tuple[str, str]


PAPER_DEMOS = (
    PairwiseDemo("separability-paper/flan-t5-xxl_gpt-3.5_turbo_instruct_cnn_dm_pref_data.csv", "cnn-dm",
                 "cnn-dm-summaries", "CNN/DailyMail summaries (the separability paper's crowd batch)",
                 ("flan-t5-xxl", "gpt-3.5-turbo-instruct")),
    PairwiseDemo("separability-paper/mistral-7b_vicuna-7b_samsum_pref_data.csv", "samsum",
                 "samsum-summaries", "SAMSum dialogue summaries (the separability paper's crowd batch)",
                 ("mistral-7b", "vicuna-7b")),
)
PAPER_SOURCE = ("dill-lab/separability @ 933ec51e, data/preference_data/ (Ghosh, Srinivasan & Swayamdipta, "
                "EMNLP Findings 2024). MIT licence.")
PANDALM_FILE = "pandalm/testset-v1.json"
PANDALM_DATASET = "pandalm"
PANDALM_STUDY = "pandalm-instructions"
PANDALM_SOURCE = ("WeOpenML/PandaLM @ 3871806e, data/testset-v1.json (Wang et al., ICLR 2024). Apache-2.0.")
PANDALM_LABELS = {0: "tie", 1: "first", 2: "second"}
LLMFAO_DIR = "llmfao"
LLMFAO_DATASET = "llmfao"
LLMFAO_STUDY = "llmfao-chat"
LLMFAO_SOURCE = ("dustalov/llmfao @ 9e224e94 (Ustalov, LLMFAO; prompts, models and outputs from the llmonitor.com "
                 "crowdsourced benchmark). CC BY 4.0.")
LLMFAO_JUDGE_SYSTEM = "GPT 4"  # models.jsonl: api_id "gpt-4", the model LLMFAO's judge verdicts came from
HISTORY_ONLY_STUDIES = (LLMFAO_STUDY,)  # loaded closed, never opened: see load_demo.load_llmfao


def llmfao_judge_template() -> str:
    """The prompt LLMFAO gave GPT-4 (gpt-instruction.txt), with this project's placeholders for its own."""
    text = (DEMO_DIR / LLMFAO_DIR / "gpt-instruction.txt").read_text(encoding="utf-8")
    for theirs, ours in (("$text", "$question"), ("$result_x", "$answer_a"), ("$result_y", "$answer_b")):
        text = text.replace(theirs, ours)
    return text


@dataclass
class PandaLMItem:
    idx: int
    instance_key: str  # the system's generation in this instance is sample 0 (k = 1)
    system_1: str
    system_2: str
    labels: list[str]  # per annotator: "tie", "first" (response1) or "second"
    line: int


@dataclass
class SkippedItem:
    idx: int
    line: int
    reason: str


@dataclass
class PandaLMData:
    generations: ParsedGenerations
    items: list[PandaLMItem]
    skipped: list[SkippedItem]

    def skipped_text(self) -> str:
        """One line for `load_demo` to print, e.g. "skipped 60 of 999 items that cannot be judged: ..."."""
        if not self.skipped:
            return "no item skipped"
        reasons = Counter(item.reason for item in self.skipped)
        detail = ", ".join(f"{count} with {reason}" for reason, count in sorted(reasons.items()))
        return (f"skipped {len(self.skipped)} of {len(self.skipped) + len(self.items)} items that cannot be "
                f"judged: {detail}")


RESPONSE_KEYS = ("response1", "response2")
ANNOTATOR_KEYS = ("annotator1", "annotator2", "annotator3")
REQUIRED_KEYS = ("idx", "cmp_key", "instruction") + RESPONSE_KEYS + ANNOTATOR_KEYS
ITEM_KEYS = REQUIRED_KEYS + ("motivation_app", "input")


def pandalm_prompt(item: dict) -> str:
    instruction, extra = item["instruction"].strip(), (item.get("input") or "").strip()
    return f"{instruction}\n\n{extra}" if extra else instruction


def json_array_items(name: str, text: str) -> list[tuple[int, Any]]:
    """(line the element starts on, element) for each element of the JSON array that is the whole file;
    the whole file is read first, so a syntax error anywhere is reported before any item's content."""
    items, decoder = [], json_decoder()
    position = json.decoder.WHITESPACE.match(text, 0).end()  # type: ignore[attr-defined]  # undocumented stdlib regex, absent from typeshed
    if text[position:position + 1] != "[":
        raise ImportFileError(name, _line_at(text, position), "json", "the file must be a JSON array of items")
    position = json.decoder.WHITESPACE.match(text, position + 1).end()  # type: ignore[attr-defined]  # undocumented stdlib regex, absent from typeshed
    if text[position:position + 1] != "]":
        while True:
            line = _line_at(text, position)
            value, position = load_json(name, line, text, position, ITEM_KEYS, decoder)
            items.append((line, value))
            position = json.decoder.WHITESPACE.match(text, position).end()  # type: ignore[attr-defined]  # undocumented stdlib regex, absent from typeshed
            separator = text[position:position + 1]
            if separator == "]":
                break
            if separator != ",":
                raise ImportFileError(name, _line_at(text, position), "json",
                                      "malformed JSON (expected ',' or ']' after an item)")
            position = json.decoder.WHITESPACE.match(text, position + 1).end()  # type: ignore[attr-defined]  # undocumented stdlib regex, absent from typeshed
    if text[position + 1:].strip(" \t\r\n"):
        raise ImportFileError(name, _line_at(text, position), "json", "malformed JSON (data after the array)")
    return items


def _line_at(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _label(name: str, line: int, item: dict, key: str) -> str:
    value = item.get(key)
    if type(value) is not int or value not in PANDALM_LABELS:  # bool is an int: refuse it too
        raise ImportFileError(name, line, key, f"{shown(value)} is not 0, 1 or 2")
    return PANDALM_LABELS[value]


def _unjudgeable(item: dict) -> str | None:
    """Why a human cannot judge this item (a response empty or not a string), or None."""
    for key in RESPONSE_KEYS:
        value = item.get(key)
        if not isinstance(value, str):
            return f"a response that is not a string ({_type_name(value)})"
        if not value.strip():
            return "an empty response"
    return None


@dataclass
class _CheckedItem:
    idx: int
    systems: tuple[str, str]
    prompt: str
    app: str
    labels: list[str]


def _checked_item(name: str, line: int, item, max_text_bytes: int) -> _CheckedItem:
    """An item's fields, each checked as every importer checks what it stores (responses aside: see
    `_unjudgeable`); ImportFileError at the first problem."""
    if not isinstance(item, dict):
        raise ImportFileError(name, line, "item", f"must be a JSON object, not {_type_name(item)}")
    missing = next((key for key in REQUIRED_KEYS if key not in item), None)
    if missing:
        raise ImportFileError(name, line, missing, "is missing")
    idx = item["idx"]
    if type(idx) is not int or idx < 0:  # bool is an int: refuse it too
        raise ImportFileError(name, line, "idx", f"{shown(idx)} is not a whole number")
    systems = check_text(name, line, "cmp_key", item["cmp_key"]).split("_")
    if len(systems) != 2 or not all(s.strip() for s in systems) or systems[0] == systems[1]:
        raise ImportFileError(name, line, "cmp_key", f"{shown(item['cmp_key'])} is not two different system "
                              "names joined by '_'")
    longest = max(len(system) for system in systems)
    if longest > MAX_NAME_CHARS:
        raise ImportFileError(name, line, "cmp_key", f"a system name is {longest} characters, over the limit "
                              f"of {MAX_NAME_CHARS}")
    check_text(name, line, "instruction", item["instruction"], max_text_bytes, allow_empty=True)
    if item.get("input") is not None:
        check_text(name, line, "input", item["input"], max_text_bytes, allow_empty=True)
    prompt = check_text(name, line, "instruction", pandalm_prompt(item), max_text_bytes)
    app = check_text(name, line, "motivation_app", item.get("motivation_app", ""), allow_empty=True)
    labels = [_label(name, line, item, key) for key in ANNOTATOR_KEYS]
    return _CheckedItem(idx, (systems[0], systems[1]), prompt, app, labels)


def parse_pandalm(path: Path | str, data: bytes | None = None, max_text_bytes: int | None = None) -> PandaLMData:
    """The PandaLM file as generations (one sample per instance and system) and judged items, with the
    items skipped as unjudgeable (see the module docstring for both rules)."""
    name = str(path)
    max_text_bytes = max_text_bytes or settings.IMPORT_MAX_TEXT_BYTES
    parsed = ParsedGenerations(name)
    instances_of_prompt: dict[str, list[str]] = defaultdict(list)  # prompt -> instance keys, oldest first
    response: dict[tuple[str, str], str] = {}  # (instance key, system) -> its one response
    compared: set[tuple[str, frozenset]] = set()  # (instance key, {system, system})
    seen_idx: dict[int, int] = {}
    result = PandaLMData(parsed, [], [])
    for line, raw_item in json_array_items(name, read_utf8_text(path, data)):
        item = _checked_item(name, line, raw_item, max_text_bytes)
        if item.idx in seen_idx:
            raise ImportFileError(name, line, "idx", f"{item.idx} already appears on line {seen_idx[item.idx]}")
        seen_idx[item.idx] = line
        reason = _unjudgeable(raw_item)
        if reason:
            result.skipped.append(SkippedItem(item.idx, line, reason))
            continue
        texts = [check_text(name, line, key, raw_item[key], max_text_bytes) for key in RESPONSE_KEYS]
        pair = frozenset(item.systems)

        # fits runs only in the next() below, inside this iteration: it sees this item's pair and texts.
        def fits(key: str) -> bool:
            """The instance has no response of these systems yet, or the same ones, and not this pair."""
            return (key, pair) not in compared and all(  # noqa: B023 (called in this iteration only)
                response.get((key, system), text) == text  # noqa: B023 (called in this iteration only)
                for system, text in zip(item.systems, texts, strict=True))  # noqa: B023 (this iteration only)

        key = next((k for k in instances_of_prompt[item.prompt] if fits(k)), None)
        if key is None:
            key = f"p{item.idx:04d}"
            instances_of_prompt[item.prompt].append(key)
            parsed.instances[key] = ParsedInstance(key, line, item.prompt, None, {"app": item.app})
        compared.add((key, pair))
        for system, field_name, text in zip(item.systems, RESPONSE_KEYS, texts, strict=True):
            if (key, system) not in response:
                response[(key, system)] = text
                parsed.generations.append(ParsedGeneration(key, system, 0, text, line, field_name))
        result.items.append(PandaLMItem(item.idx, key, item.systems[0], item.systems[1], item.labels, line))
    return result
