"""Reading generation and vote files, validating every line before anything is written.

Each importer works in two steps: `parse_*` reads the whole file into plain Python objects and raises
`ImportFileError` (one line, `FILE:LINE: field: what is wrong`) at the first problem; `write_*` then
stores the parsed result inside one transaction. A bad file therefore changes nothing, and a second
import of the same file finds every row already present and adds none.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lib.csvsafe import unescape_cell
from lib.vocabulary import WINNERS

# Answer.pref{i} in the separability paper's crowd batches: -1 means the text in the
# `model1_summary{i}` slot (shown first) was preferred, +1 the `model2_summary{i}` slot, 0 a tie.
# The authors did not document the sign; this reading is the one the data supports
# (see demo/data/README.md). Flip it here, and only here, if that ever turns out wrong.
PAIRWISE_PREF_FIRST_SLOT = -1
PAIRWISE_SAMPLES = 5


class ImportFileError(ValueError):
    """A problem in an input file, located to the line and field."""

    def __init__(self, filename: str, line: int, field_name: str, message: str):
        self.filename, self.line, self.field, self.message = filename, line, field_name, message
        super().__init__(f"{filename}:{line}: {field_name}: {message}")


# --------------------------------------------------------------------------------------------------
# decoding


def read_utf8_text(path: str | Path, data: bytes | None = None) -> str:
    """The file's text; non-UTF-8 bytes are reported with the line they are on."""
    name = str(path)
    if data is None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ImportFileError(name, 0, "file", f"cannot be read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ImportFileError(name, line, "encoding", f"byte 0x{data[exc.start]:02x} is not valid UTF-8") from None
    return text.removeprefix("\ufeff")


MAX_SAMPLE_INDEX = 2**31 - 1  # the database's integer column
MAX_NAME_CHARS = 200  # the database's name columns: Instance.external_id, System.name, AnnotatorProfile.external_id
# Nesting allowed in a stored JSON value (metadata). Far below Python's recursion limit, so reading,
# storing and rendering it never recurses too deep; far above what metadata needs.
MAX_JSON_DEPTH = 32
MAX_JSON_INT_DIGITS = 4000  # Python refuses to convert longer digit strings to int (its limit is 4300)


# --------------------------------------------------------------------------------------------------
# what can be stored
#
# Every string an importer stores (a text, a name, a metadata key or value) passes `text_problem`;
# every JSON value passes `json_problem`. PostgreSQL refuses a NUL character in text and in jsonb, and
# a lone surrogate (JSON's "\ud800" escape decodes to one) cannot be encoded as UTF-8 at all: both
# were server errors at write time, so they are refused here, with the file, line and field.


def shown(value, limit: int = 60) -> str:
    """A value of the file as a message quotes it: its repr, cut to `limit` characters (a cell may be
    megabytes), and a JSON list or object only by its kind (it may nest too deep to repr)."""
    if isinstance(value, (list, dict)):
        return f"a JSON {_type_name(value)}"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _type_name(value) -> str:
    """The JSON name of a value's type, for "must be a string, not ..." messages."""
    if isinstance(value, _Unstorable):
        return "number"
    return {type(None): "null", dict: "object", list: "list", float: "number"}.get(type(value), type(value).__name__)


def text_problem(value: str, max_bytes: int | None = None) -> str | None:
    """What makes this string unstorable (NUL, a lone surrogate, over `max_bytes` in UTF-8), or None."""
    if "\x00" in value:
        return "contains a NUL character, which cannot be stored"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        return (f"contains a lone surrogate (U+{ord(value[exc.start]):04X}), which is not a Unicode character "
                "and cannot be stored")
    if max_bytes is not None and size > max_bytes:
        return f"text is {size} bytes, over the limit of {max_bytes}"
    return None


def check_text(name: str, line: int, field_name: str, value, max_bytes: int | None = None,
               allow_empty: bool = False) -> str:
    """`value` if it is a text that can be stored: a string (not converted from anything else), not
    blank unless `allow_empty`, and passing `text_problem`; otherwise ImportFileError."""
    if not isinstance(value, str):
        raise ImportFileError(name, line, field_name, f"must be a string, not {_type_name(value)}")
    if not allow_empty and not value.strip():
        raise ImportFileError(name, line, field_name, "is empty")
    problem = text_problem(value, max_bytes)
    if problem:
        raise ImportFileError(name, line, field_name, problem)
    return value


class _Unstorable:
    """Stands in, while a JSON text is read, for a number JSON storage refuses (NaN, Infinity, a float
    that overflows, an integer too long to convert), so it is reported with its field."""

    def __init__(self, token: str, what: str):
        self.token, self.what = token if len(token) <= 20 else token[:19] + "\u2026", what

    def __repr__(self) -> str:  # as the file wrote it, in messages such as "NaN is not 0, 1 or 2"
        return self.token


def _parse_constant(token: str) -> _Unstorable:
    return _Unstorable(token, f"{token}, which is not a JSON number")


def _parse_float(token: str):
    number = float(token)
    return number if math.isfinite(number) else _Unstorable(token, f"{token[:20]}, which overflows to Infinity")


def _parse_int(token: str):
    digits = len(token.lstrip("-"))
    if digits > MAX_JSON_INT_DIGITS:
        return _Unstorable(token, f"an integer of {digits} digits, over the limit of {MAX_JSON_INT_DIGITS}")
    return int(token)


def json_decoder() -> json.JSONDecoder:
    # one per file read: a decoder's scanner keeps state between calls, so threads do not share one
    return json.JSONDecoder(parse_constant=_parse_constant, parse_float=_parse_float, parse_int=_parse_int)


def _json_path(path: tuple) -> str:
    text = "".join(f"[{step!r}]" for step in path)
    return text if len(text) <= 60 else text[:59] + "\u2026"


def json_problem(value, max_bytes: int | None = None) -> str | None:
    """What makes this parsed JSON value unstorable, or None: nesting deeper than MAX_JSON_DEPTH, a key or
    string failing `text_problem`, a number JSON storage refuses, or an encoding over `max_bytes`.
    Iterative, so no value can make it recurse."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if len(path) > MAX_JSON_DEPTH:
            return f"nests deeper than {MAX_JSON_DEPTH} levels"
        where = f" at {_json_path(path)}" if path else ""
        if isinstance(item, _Unstorable):
            return f"a value{where} is {item.what}"
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return f"a value{where} {problem}"
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = text_problem(key)
                if problem:
                    return f"a key{where} {problem}"
                stack.append((child, path + (key,)))
        elif isinstance(item, list):
            stack.extend((child, path + (index,)) for index, child in enumerate(item))
    if max_bytes is not None:
        size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
        if size > max_bytes:
            return f"is {size} bytes as JSON, over the limit of {max_bytes}"
    return None


def check_json(name: str, line: int, field_name: str, value, max_bytes: int | None = None):
    problem = json_problem(value, max_bytes)
    if problem:
        raise ImportFileError(name, line, field_name, problem)
    return value


def _top_level_key_nesting_too_deep(text: str, start: int, keys: Collection[str]) -> str | None:
    """Which of `keys` in the JSON object at text[start:] holds the value nested beyond MAX_JSON_DEPTH
    (None when it cannot tell). Only used to name the field once the parser has given up."""
    depth, in_string, escaped, opened, last_string, key = 0, False, False, 0, None, None
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string, last_string = False, text[opened + 1:index]
            continue
        if char == '"':
            in_string, opened = True, index
        elif char == ":" and depth == 1:
            key = last_string
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH + 1:
                return key if key in keys else None
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return None
    return None


def load_json(name: str, line: int, text: str, start: int = 0, keys: Collection[str] = (),
              decoder: json.JSONDecoder | None = None) -> tuple[object, int]:
    """(value, end) of the JSON value at text[start:], read with `json_decoder()`; a malformed or
    hopelessly deep value is ImportFileError on `line` (field: the one of `keys` it is in, if it can be
    told)."""
    try:
        return (decoder or json_decoder()).raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise ImportFileError(name, exc.lineno + line - 1, "json",
                              f"malformed JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        field_name = _top_level_key_nesting_too_deep(text, start, keys) or "json"
        raise ImportFileError(name, line, field_name, f"nests deeper than {MAX_JSON_DEPTH} levels") from None


def _csv_records(name: str, text: str, required: Iterable[str]) -> Iterable[tuple[int, dict[str, str]]]:
    """(starting line, row) for every record; checks the header first."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(name, 1, "header", "the file is empty") from None
    except csv.Error as exc:
        raise ImportFileError(name, 1, "header", f"malformed CSV ({exc})") from None
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        raise ImportFileError(name, 1, missing[0],
                              f"required column is missing (header has: {', '.join(map(repr, header))})")
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFileError(name, start, "csv", f"malformed CSV ({exc})") from None
        if not row or all(not cell.strip() for cell in row):
            start = reader.line_num + 1
            continue
        if len(row) != len(header):
            raise ImportFileError(name, start, "csv", f"expected {len(header)} columns, found {len(row)}")
        yield start, dict(zip(header, row, strict=True))
        start = reader.line_num + 1


def _required(name: str, line: int, row: dict, key: str) -> str:
    """A required string value of a record: present, a string, not blank, storable."""
    value = row.get(key)
    if value is None:
        raise ImportFileError(name, line, key, "is missing")
    return check_text(name, line, key, value)


def _name(name: str, line: int, row: dict, key: str) -> str:
    """A name that is stored (instance id, system, worker): required, stripped, and short enough for its
    column (PostgreSQL refuses a longer one; SQLite would keep it)."""
    value = _required(name, line, row, key).strip()
    if len(value) > MAX_NAME_CHARS:
        raise ImportFileError(name, line, key, f"is {len(value)} characters, over the limit of {MAX_NAME_CHARS}")
    return value


# --------------------------------------------------------------------------------------------------
# generations (JSONL and CSV)


@dataclass
class ParsedInstance:
    external_id: str
    line: int
    input: str | None = None
    reference: str | None = None
    metadata: dict = field(default_factory=dict)


@dataclass
class ParsedGeneration:
    external_id: str
    system: str
    sample_index: int
    text: str
    line: int
    field: str


@dataclass
class ParsedGenerations:
    filename: str
    instances: dict[str, ParsedInstance] = field(default_factory=dict)
    generations: list[ParsedGeneration] = field(default_factory=list)

    @property
    def systems(self) -> list[str]:
        return sorted({g.system for g in self.generations})


def parse_generations(path: str | Path, max_text_bytes: int, data: bytes | None = None,
                      fmt: str | None = None) -> ParsedGenerations:
    """Dispatch on the extension (or `fmt`): `.jsonl`/`.json` or `.csv`."""
    name = str(path)
    fmt = fmt or ("csv" if name.lower().endswith(".csv") else "jsonl")
    text = read_utf8_text(path, data)
    if fmt == "csv":
        return parse_generations_csv(name, text, max_text_bytes)
    return parse_generations_jsonl(name, text, max_text_bytes)


JSONL_KEYS = ("instance_id", "input", "system", "generations", "reference", "metadata")


def read_json_line(name: str, number: int, raw: str, decoder: json.JSONDecoder | None = None) -> object:
    """The one JSON value on a line (ImportFileError "json" when there is not exactly one)."""
    start = json.decoder.WHITESPACE.match(raw, 0).end()  # type: ignore[attr-defined]  # undocumented stdlib regex, absent from typeshed
    value, end = load_json(name, number, raw, start, JSONL_KEYS, decoder)
    if raw[end:].strip(" \t\r\n"):
        raise ImportFileError(name, number, "json", f"malformed JSON (Extra data at column {end + 1})")
    return value


def parse_generations_jsonl(name: str, text: str, max_text_bytes: int) -> ParsedGenerations:
    parsed = ParsedGenerations(name)
    seen_lines: dict[tuple[str, str], int] = {}
    decoder = json_decoder()
    # split on "\n" only: str.splitlines() also breaks at U+2028 and other separators, which JSON
    # allows raw inside strings
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        obj = read_json_line(name, number, raw, decoder)
        if not isinstance(obj, dict):
            raise ImportFileError(name, number, "json", "each line must be a JSON object")
        instance_id = _name(name, number, obj, "instance_id")
        system = _name(name, number, obj, "system")
        if (instance_id, system) in seen_lines:
            raise ImportFileError(name, number, "system", f"duplicate instance line: instance {instance_id!r} and "
                                  f"system {system!r} already appear on line {seen_lines[(instance_id, system)]}")
        seen_lines[(instance_id, system)] = number
        instance = parsed.instances.get(instance_id)
        input_text = obj.get("input")
        if input_text is not None:
            check_text(name, number, "input", input_text, max_text_bytes, allow_empty=True)
        if instance is None:
            if input_text is None or not input_text.strip():
                raise ImportFileError(name, number, "input", f"is missing or empty on the first line of "
                                      f"instance {instance_id!r}")
            reference = obj.get("reference")
            if reference is not None:
                check_text(name, number, "reference", reference, max_text_bytes, allow_empty=True)
            metadata = obj.get("metadata", {})
            if not isinstance(metadata, dict):
                raise ImportFileError(name, number, "metadata", f"must be a JSON object, not {_type_name(metadata)}")
            check_json(name, number, "metadata", metadata, max_text_bytes)
            parsed.instances[instance_id] = ParsedInstance(instance_id, number, input_text, reference, metadata)
        elif input_text is not None and input_text != instance.input:
            raise ImportFileError(name, number, "input", f"differs from the input given for instance "
                                  f"{instance_id!r} on line {instance.line}")
        generations = obj.get("generations")
        if generations is None:
            raise ImportFileError(name, number, "generations", "is missing")
        if not isinstance(generations, list):
            raise ImportFileError(name, number, "generations",
                                  f"must be a list of strings, not {_type_name(generations)}")
        if not generations:
            raise ImportFileError(name, number, "generations", "is an empty list")
        for index, generation in enumerate(generations):
            where = f"generations[{index}]"
            check_text(name, number, where, generation, max_text_bytes)
            parsed.generations.append(ParsedGeneration(instance_id, system, index, generation, number, where))
    if not parsed.generations:
        raise ImportFileError(name, 1, "file", "contains no generations")
    return parsed


def parse_generations_csv(name: str, text: str, max_text_bytes: int) -> ParsedGenerations:
    parsed = ParsedGenerations(name)
    seen: dict[tuple[str, str, int], int] = {}
    for line, row in _csv_records(name, text, ("instance_id", "input", "system", "sample_index", "text")):
        instance_id = _name(name, line, row, "instance_id")
        system = _name(name, line, row, "system")
        raw_index = _required(name, line, row, "sample_index").strip()
        try:
            sample_index = int(raw_index)
        except ValueError:
            raise ImportFileError(name, line, "sample_index", f"{shown(raw_index)} is not a whole number") from None
        if not 0 <= sample_index <= MAX_SAMPLE_INDEX:
            raise ImportFileError(name, line, "sample_index", f"must be between 0 and {MAX_SAMPLE_INDEX}")
        key = (instance_id, system, sample_index)
        if key in seen:
            raise ImportFileError(name, line, "sample_index", f"duplicate sample index {sample_index} for instance "
                                  f"{instance_id!r}, system {system!r} (first on line {seen[key]})")
        seen[key] = line
        text_value = check_text(name, line, "text", row["text"], max_text_bytes)
        input_text = check_text(name, line, "input", row["input"], max_text_bytes, allow_empty=True)
        instance = parsed.instances.get(instance_id)
        if instance is None:
            if not input_text.strip():
                raise ImportFileError(name, line, "input", f"is empty on the first row of instance {instance_id!r}")
            parsed.instances[instance_id] = ParsedInstance(instance_id, line, input_text)
        elif input_text.strip() and input_text != instance.input:
            raise ImportFileError(name, line, "input", f"differs from the input given for instance "
                                  f"{instance_id!r} on line {instance.line}")
        parsed.generations.append(ParsedGeneration(instance_id, system, sample_index, text_value, line, "text"))
    if not parsed.generations:
        raise ImportFileError(name, 2, "file", "contains no rows")
    return parsed


# --------------------------------------------------------------------------------------------------
# prompts only (instances without outputs: the site samples the outputs, docs/design.md §6)

PROMPT_KEYS = ("instance_id", "input", "reference", "metadata")


def parse_prompts(path: str | Path, max_text_bytes: int, data: bytes | None = None,
                  fmt: str | None = None) -> ParsedGenerations:
    """Instances with their inputs and no generations. JSONL: {"instance_id", "input", "reference"?,
    "metadata"?} per line; CSV: columns instance_id,input[,reference]."""
    name = str(path)
    fmt = fmt or ("csv" if name.lower().endswith(".csv") else "jsonl")
    text = read_utf8_text(path, data)
    parsed = ParsedGenerations(name)

    def add(line: int, record: dict) -> None:
        instance_id = _name(name, line, record, "instance_id")
        if instance_id in parsed.instances:
            raise ImportFileError(name, line, "instance_id", f"duplicate instance {instance_id!r} (first on line "
                                  f"{parsed.instances[instance_id].line})")
        input_text = check_text(name, line, "input", _required(name, line, record, "input"), max_text_bytes)
        reference = record.get("reference")
        if reference is not None:
            check_text(name, line, "reference", reference, max_text_bytes, allow_empty=True)
        metadata = record.get("metadata", {})
        if not isinstance(metadata, dict):
            raise ImportFileError(name, line, "metadata", f"must be a JSON object, not {_type_name(metadata)}")
        check_json(name, line, "metadata", metadata, max_text_bytes)
        parsed.instances[instance_id] = ParsedInstance(instance_id, line, input_text, reference, metadata)

    if fmt == "csv":
        for line, row in _csv_records(name, text, ("instance_id", "input")):
            add(line, {k: v for k, v in row.items() if k in ("instance_id", "input", "reference")})
    else:
        decoder = json_decoder()
        for number, raw in enumerate(text.split("\n"), start=1):
            if not raw.strip():
                continue
            start = json.decoder.WHITESPACE.match(raw, 0).end()  # type: ignore[attr-defined]  # undocumented stdlib regex
            obj, end = load_json(name, number, raw, start, PROMPT_KEYS, decoder)
            if raw[end:].strip(" \t\r\n"):
                raise ImportFileError(name, number, "json", f"malformed JSON (Extra data at column {end + 1})")
            if not isinstance(obj, dict):
                raise ImportFileError(name, number, "json", "each line must be a JSON object")
            add(number, obj)
    if not parsed.instances:
        raise ImportFileError(name, 1, "file", "contains no prompts")
    return parsed


# --------------------------------------------------------------------------------------------------
# the separability paper's crowd-batch CSV


@dataclass
class PairwiseJudgment:
    worker: str
    instance_key: str
    sample_index: int  # 0-based
    winner_system: int | None  # 1 or 2 (system order of --systems); None for a tie
    line: int


@dataclass
class ParsedPairwise:
    filename: str
    instances: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)  # key -> (sys1, sys2) texts
    instance_lines: dict[str, int] = field(default_factory=dict)
    judgments: list[PairwiseJudgment] = field(default_factory=list)


def pairwise_instance_key(system1_texts: list[str], system2_texts: list[str]) -> str:
    """The release has no instance ids; an instance is identified by its ten texts."""
    digest = hashlib.sha1("\x1f".join(system1_texts + ["\x1e"] + system2_texts).encode("utf-8")).hexdigest()
    return f"h{digest[:12]}"


def parse_pairwise_csv(path: str | Path, max_text_bytes: int, data: bytes | None = None) -> ParsedPairwise:
    name = str(path)
    text = read_utf8_text(path, data)
    n = PAIRWISE_SAMPLES
    required = (["WorkerId"] + [f"Input.model{m}_summary{i}" for i in range(1, n + 1) for m in (1, 2)]
                + [f"Input.id{i}" for i in range(1, n + 1)] + [f"Answer.pref{i}" for i in range(1, n + 1)])
    parsed = ParsedPairwise(name)
    seen: dict[tuple[str, str], int] = {}
    for line, row in _csv_records(name, text, required):
        worker = _name(name, line, row, "WorkerId")
        system_texts: tuple[list[str], list[str]] = ([], [])
        first_slot_system = []
        for i in range(1, n + 1):
            id_field = f"Input.id{i}"
            raw_id = _required(name, line, row, id_field).strip()
            if raw_id not in ("1", "2"):
                raise ImportFileError(name, line, id_field, f"{shown(raw_id)} is not 1 or 2")
            slot1, slot2 = f"Input.model1_summary{i}", f"Input.model2_summary{i}"
            text1 = check_text(name, line, slot1, row[slot1], max_text_bytes)
            text2 = check_text(name, line, slot2, row[slot2], max_text_bytes)
            if raw_id == "1":
                system_texts[0].append(text1)
                system_texts[1].append(text2)
            else:
                system_texts[0].append(text2)
                system_texts[1].append(text1)
            first_slot_system.append(int(raw_id))
        key = pairwise_instance_key(*system_texts)
        if key not in parsed.instances:
            parsed.instances[key] = system_texts
            parsed.instance_lines[key] = line
        if (worker, key) in seen:
            raise ImportFileError(name, line, "WorkerId", f"worker {worker!r} already judged this instance "
                                  f"on line {seen[(worker, key)]}")
        seen[(worker, key)] = line
        for i in range(1, n + 1):
            pref_field = f"Answer.pref{i}"
            raw_pref = _required(name, line, row, pref_field).strip()
            pref = _pairwise_pref(raw_pref)
            if pref is None:
                raise ImportFileError(name, line, pref_field, f"{shown(raw_pref)} is not -1, 0 or 1")
            first = first_slot_system[i - 1]
            if pref == 0:
                winner = None
            elif pref == PAIRWISE_PREF_FIRST_SLOT:
                winner = first
            else:
                winner = 3 - first
            parsed.judgments.append(PairwiseJudgment(worker, key, i - 1, winner, line))
    if not parsed.judgments:
        raise ImportFileError(name, 2, "file", "contains no rows")
    return parsed


def _pairwise_pref(raw: str) -> int | None:
    """-1, 0 or 1 from a cell such as "1" or "-1.0"; None for anything else ("inf" included: the
    int() of an infinite float raised OverflowError, a server error)."""
    try:
        value = float(raw)
    except ValueError:
        return None
    return int(value) if value in (-1.0, 0.0, 1.0) else None


def pairwise_as_generations(parsed: ParsedPairwise, system_names: tuple[str, str]) -> ParsedGenerations:
    generations = ParsedGenerations(parsed.filename)
    for key, (texts1, texts2) in parsed.instances.items():
        line = parsed.instance_lines[key]
        generations.instances[key] = ParsedInstance(key, line, None, None, {"source": "crowd batch"})
        for system, texts in zip(system_names, (texts1, texts2), strict=True):
            for index, text in enumerate(texts):
                generations.generations.append(ParsedGeneration(key, system, index, text, line, "summary"))
    return generations


# --------------------------------------------------------------------------------------------------
# votes CSV: the one reader, for `import_votes` (into a study) and the standalone leaderboard
#
# Two layouts, told apart by the header (which is required):
#
# 1. This project's vote export, the columns `manage.py import_votes` reads:
#    `instance_id,system_a,system_b,sample_a,sample_b,winner,annotator[,created_at][,weight]`
#    with winner in {a, b, tie, both_bad}, sample_a/sample_b non-negative integers (which sampled
#    generation of each system was shown), created_at an optional ISO 8601 time (UTC when it has no
#    offset) and weight an optional per-vote weight in [0, 1] (e.g. the instance's clipped separability,
#    for the weighted methods). Every column but the optional ones must be present and non-empty.
# 2. Chatbot Arena's battle tables (`model_a,model_b,winner`, winner in {model_a, model_b, tie,
#    tie (bothbad)}), so the public Arena votes can be ranked directly once saved as CSV. Optional
#    columns: `question_id` (instance), `judge` (annotator), `tstamp` (Unix seconds). "tie (bothbad)"
#    becomes both_bad. Such a file can be ranked but not imported into a study: it names no samples.
#
# Columns in any order; extra columns are ignored; surrounding spaces in values are dropped; cells our
# exports escaped against formula injection are read back unescaped.

ARENA_WINNERS = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "both_bad"}
VOTE_COLUMNS = ("instance_id", "system_a", "system_b", "sample_a", "sample_b", "winner", "annotator")
ARENA_COLUMNS = ("model_a", "model_b", "winner")


@dataclass
class VotesTable:
    """The votes of one file as parallel lists, in file order. `line[i]` is vote i's line in the file.

    For Arena files, sample_a/sample_b are None, and instance_id/annotator are "" where the file
    has no question_id/judge column. `weight` is None unless the file has a weight column."""

    path: str
    layout: str  # "votes" or "arena"
    instance_id: list[str] = field(default_factory=list)
    system_a: list[str] = field(default_factory=list)
    system_b: list[str] = field(default_factory=list)
    sample_a: list[int | None] = field(default_factory=list)
    sample_b: list[int | None] = field(default_factory=list)
    winner: list[str] = field(default_factory=list)
    annotator: list[str] = field(default_factory=list)
    created_at: list[datetime | None] = field(default_factory=list)
    weight: list[float] | None = None
    line: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.winner)

    @property
    def systems(self) -> list[str]:
        """Every system named, in order of first appearance."""
        seen = dict.fromkeys(self.system_a)
        seen.update(dict.fromkeys(self.system_b))
        return list(seen)


def _sample_index(name: str, line: int, key: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ImportFileError(name, line, key, f"{shown(value)} is not a whole number (the sample index)") from None
    if not 0 <= number <= MAX_SAMPLE_INDEX:
        raise ImportFileError(name, line, key, f"{number} is not between 0 and {MAX_SAMPLE_INDEX} (the sample index)")
    return number


def _iso_time(name: str, line: int, key: str, value: str) -> datetime:
    """ISO 8601; a time without an offset is taken as UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ImportFileError(name, line, key,
                              f"{shown(value)} is not an ISO 8601 time (e.g. 2024-05-01T12:30:00+00:00)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _unix_time(name: str, line: int, key: str, value: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise ImportFileError(name, line, key, f"{shown(value)} is not a Unix time in seconds") from None


def _weight(name: str, line: int, key: str, value: str) -> float:
    try:
        weight = float(value)
    except ValueError:
        raise ImportFileError(name, line, key, f"{shown(value)} is not a number") from None
    if not (math.isfinite(weight) and 0.0 <= weight <= 1.0):
        raise ImportFileError(name, line, key, f"{shown(value)} is not in [0, 1]")
    return weight


def _vote_layout(name: str, line: int, columns: dict[str, int]) -> str:
    if all(column in columns for column in VOTE_COLUMNS) or "model_a" not in columns:
        for column in VOTE_COLUMNS:
            if column not in columns:
                raise ImportFileError(name, line, column, "missing column; the header must name instance_id, "
                                      "system_a, system_b, sample_a, sample_b, winner, annotator (optional: "
                                      "created_at, weight), or model_a, model_b, winner for a Chatbot Arena file")
        return "votes"
    for column in ARENA_COLUMNS:
        if column not in columns:
            raise ImportFileError(name, line, column, "missing column (Chatbot Arena layout: model_a, model_b, winner)")
    return "arena"


def read_votes_csv(path: str | os.PathLike[str], data: bytes | None = None) -> VotesTable:
    """Read and check a whole vote file (from `data` if given, else from disk); ImportFileError at the first
    problem. Names (instances, systems, annotators) pass the same checks as every importer's."""
    name = os.fspath(path)
    text = read_utf8_text(name, data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    last_line = 0

    def next_row() -> tuple[int, list[str]]:
        nonlocal last_line
        start = last_line + 1
        try:
            row = next(reader)
        except csv.Error as error:
            # Report where the broken record starts: an unclosed quote is only noticed at the end of the file.
            raise ImportFileError(name, start, "row", f"malformed CSV ({error})") from None
        last_line = reader.line_num
        return start, [unescape_cell(cell) for cell in row]

    try:
        header_line, header = next_row()
        while not any(cell.strip() for cell in header):
            header_line, header = next_row()
    except StopIteration:
        raise ImportFileError(name, 1, "header", "the file is empty; expected a header line") from None
    header = [column.strip() for column in header]
    columns: dict[str, int] = {}
    for position, column in enumerate(header):
        if column in columns and column:
            raise ImportFileError(name, header_line, "header", f"column {column!r} appears twice")
        columns[column] = position
    layout = _vote_layout(name, header_line, columns)
    table = VotesTable(path=name, layout=layout)
    weights: list[float] = []
    if "weight" in columns:
        table.weight = weights
    if layout == "votes":
        required: tuple[str, ...] = VOTE_COLUMNS
        first, second, instance_key, annotator_key = "system_a", "system_b", "instance_id", "annotator"
        time_key, parse_time = "created_at", _iso_time
    else:
        required = ARENA_COLUMNS
        first, second, instance_key, annotator_key = "model_a", "model_b", "question_id", "judge"
        time_key, parse_time = "tstamp", _unix_time
    names = {first, second, instance_key, annotator_key}

    while True:
        try:
            line, row = next_row()
        except StopIteration:
            break
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise ImportFileError(name, line, "row",
                                  f"expected {len(header)} fields as in the header, found {len(row)}")
        record = dict(zip(header, row, strict=True))
        values: dict[str, str] = {}
        for key in columns:
            if key in names and (key in required or record[key].strip()):
                values[key] = _name(name, line, record, key)
            elif key in required:
                values[key] = _required(name, line, record, key).strip()
            else:
                values[key] = record[key].strip()
        winner = values["winner"]
        if layout == "votes" and winner not in WINNERS:
            raise ImportFileError(name, line, "winner", f"{shown(winner)} is not one of {', '.join(WINNERS)}")
        if layout == "arena":
            if winner not in ARENA_WINNERS:
                raise ImportFileError(name, line, "winner",
                                      f"{shown(winner)} is not one of model_a, model_b, tie, tie (bothbad)")
            winner = ARENA_WINNERS[winner]
        if values[first] == values[second]:
            raise ImportFileError(name, line, second, f"{shown(values[second])} is the same system as {first}; "
                                  "a vote compares two systems")
        if layout == "votes":
            table.sample_a.append(_sample_index(name, line, "sample_a", values["sample_a"]))
            table.sample_b.append(_sample_index(name, line, "sample_b", values["sample_b"]))
        else:
            table.sample_a.append(None)
            table.sample_b.append(None)
        table.instance_id.append(values.get(instance_key, ""))
        table.annotator.append(values.get(annotator_key, ""))
        moment = values.get(time_key, "")
        table.created_at.append(parse_time(name, line, time_key, moment) if moment else None)
        if table.weight is not None:
            if not values["weight"]:
                raise ImportFileError(name, line, "weight", "empty; when the file has a weight column every vote "
                                      "needs one")
            weights.append(_weight(name, line, "weight", values["weight"]))
        table.system_a.append(values[first])
        table.system_b.append(values[second])
        table.winner.append(winner)
        table.line.append(line)
    return table


@dataclass
class ParsedVote:
    instance_id: str
    system_a: str
    system_b: str
    sample_a: int
    sample_b: int
    winner: str
    annotator: str
    created_at: datetime | None
    line: int


def parse_votes_csv(path: str | Path, data: bytes | None = None) -> list[ParsedVote]:
    """The votes of a file to import into a study: `read_votes_csv`, in this project's layout, not empty."""
    table = read_votes_csv(path, data)
    if table.layout != "votes":
        raise ImportFileError(table.path, 1, "header", "a Chatbot Arena battle table names no samples, so it cannot "
                              "be imported into a study (rank it with `leaderboard --from-csv`); a study's votes "
                              "need instance_id, system_a, system_b, sample_a, sample_b, winner, annotator")
    if not len(table):
        raise ImportFileError(table.path, 2, "file", "contains no votes")
    return [ParsedVote(table.instance_id[i], table.system_a[i], table.system_b[i], table.sample_a[i] or 0,
                       table.sample_b[i] or 0, table.winner[i], table.annotator[i], table.created_at[i],
                       table.line[i])
            for i in range(len(table))]


def flip_winner(winner: str) -> str:
    return {"a": "b", "b": "a"}.get(winner, winner)
