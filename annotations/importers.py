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
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Callable, Iterable

from lib.csvsafe import unescape_cell
from lib.vocabulary import WINNERS


# Answer.pref{i} in the separability paper's crowd batches: -1 means the text in the
# `model1_summary{i}` slot (shown first) was preferred, +1 the `model2_summary{i}` slot, 0 a tie.
# The authors did not document the sign; this reading is the one the data supports
# (see demo/data/README.md). Flip it here, and only here, if that ever turns out wrong.
PAIRWISE_PREF_FIRST_SLOT = -1
PAIRWISE_SAMPLES = 5


class ImportFileError(Exception):
    """A problem in an input file, located to the line and field."""

    def __init__(self, filename: str, line: int, field_name: str, message: str):
        self.filename, self.line, self.field, self.message = filename, line, field_name, message
        super().__init__(f"{filename}:{line}: {field_name}: {message}")


Progress = Callable[[int], None]


def _noop(_n: int) -> None:
    return None


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
    stack = [(value, ())]
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


def _top_level_key_nesting_too_deep(text: str, start: int, keys: Iterable[str]) -> str | None:
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


def load_json(name: str, line: int, text: str, start: int = 0, keys: Iterable[str] = (),
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
        raise ImportFileError(name, 1, missing[0], f"required column is missing (header has: {', '.join(map(repr, header))})")
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
        yield start, dict(zip(header, row))
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
    start = json.decoder.WHITESPACE.match(raw, 0).end()
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


@dataclass
class ImportSummary:
    instances_created: int = 0
    generations_created: int = 0
    systems_created: int = 0
    votes_created: int = 0
    comparisons_created: int = 0
    annotators_created: int = 0

    def as_text(self) -> str:
        parts = [f"{value} {key.replace('_', ' ')}" for key, value in vars(self).items() if value]
        return ", ".join(parts) or "nothing new (everything was already there)"


def write_generations(dataset, parsed: ParsedGenerations, progress: Progress = _noop,
                      summary: ImportSummary | None = None) -> ImportSummary:
    """Upsert instances, systems and generations. Call inside `transaction.atomic()`.

    A stored generation whose text differs from the file's is an error, not an overwrite: votes may
    already refer to it. An empty text is refused whichever reader produced it: nobody can judge it.
    """
    from .models import Generation, Instance, System

    summary = summary or ImportSummary()
    systems = {}
    for system_name in parsed.systems:
        systems[system_name], created = System.objects.get_or_create(name=system_name)
        summary.systems_created += created
    existing = {i.external_id: i for i in Instance.objects.filter(dataset=dataset,
                                                                  external_id__in=list(parsed.instances))}
    new_instances = [
        Instance(dataset=dataset, external_id=p.external_id, input=p.input or "", reference=p.reference or "",
                 metadata=p.metadata)
        for key, p in parsed.instances.items() if key not in existing
    ]
    for p in parsed.instances.values():
        stored = existing.get(p.external_id)
        if stored is not None and p.input is not None and stored.input and p.input != stored.input:
            raise ImportFileError(parsed.filename, p.line, "input", f"differs from the stored input of instance "
                                  f"{p.external_id!r} in dataset {dataset.slug!r}")
    Instance.objects.bulk_create(new_instances, batch_size=500)
    summary.instances_created += len(new_instances)
    instances = {i.external_id: i for i in Instance.objects.filter(dataset=dataset,
                                                                   external_id__in=list(parsed.instances))}
    stored_generations = {
        (g.instance_id, g.system_id, g.sample_index): g.text
        for g in Generation.objects.filter(instance__in=instances.values()).only(
            "instance_id", "system_id", "sample_index", "text")
    }
    to_create = []
    for number, g in enumerate(parsed.generations, start=1):
        if not g.text.strip():
            raise ImportFileError(parsed.filename, g.line, g.field, "is empty")
        instance = instances[g.external_id]
        key = (instance.pk, systems[g.system].pk, g.sample_index)
        stored_text = stored_generations.get(key)
        if stored_text is None:
            to_create.append(Generation(instance=instance, system=systems[g.system], sample_index=g.sample_index,
                                        text=g.text))
            stored_generations[key] = g.text
        elif stored_text != g.text:
            raise ImportFileError(parsed.filename, g.line, g.field, f"differs from the stored sample "
                                  f"{g.sample_index} of instance {g.external_id!r}, system {g.system!r}")
        if number % 500 == 0:
            progress(500)
    progress(len(parsed.generations) % 500)
    Generation.objects.bulk_create(to_create, batch_size=500)
    summary.generations_created += len(to_create)
    return summary


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
        for system, texts in zip(system_names, (texts1, texts2)):
            for index, text in enumerate(texts):
                generations.generations.append(ParsedGeneration(key, system, index, text, line, "summary"))
    return generations


# --------------------------------------------------------------------------------------------------
# votes CSV


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
    from django.utils.dateparse import parse_datetime
    from django.utils import timezone

    name = str(path)
    text = read_utf8_text(path, data)
    votes = []
    required = ("instance_id", "system_a", "system_b", "sample_a", "sample_b", "winner", "annotator")
    names = ("instance_id", "system_a", "system_b", "annotator")
    for line, row in _csv_records(name, text, required):
        row = {key: unescape_cell(value) for key, value in row.items()}  # our exports escape formula-like cells
        values = {key: _name(name, line, row, key) if key in names else _required(name, line, row, key).strip()
                  for key in required}
        samples = {}
        for key in ("sample_a", "sample_b"):
            try:
                samples[key] = int(values[key])
            except ValueError:
                raise ImportFileError(name, line, key, f"{shown(values[key])} is not a whole number") from None
            if not 0 <= samples[key] <= MAX_SAMPLE_INDEX:
                raise ImportFileError(name, line, key, f"must be between 0 and {MAX_SAMPLE_INDEX}")
        if values["winner"] not in WINNERS:
            raise ImportFileError(name, line, "winner", f"{shown(values['winner'])} is not one of {', '.join(WINNERS)}")
        if values["system_a"] == values["system_b"]:
            raise ImportFileError(name, line, "system_b", "is the same system as system_a")
        created_at = None
        raw_created = (row.get("created_at") or "").strip()
        if raw_created:
            try:
                created_at = parse_datetime(raw_created)
            except ValueError:
                created_at = None
            if created_at is None:
                raise ImportFileError(name, line, "created_at", f"{shown(raw_created)} is not an ISO 8601 date-time")
            if timezone.is_naive(created_at):
                created_at = timezone.make_aware(created_at, dt_timezone.utc)
        votes.append(ParsedVote(values["instance_id"], values["system_a"], values["system_b"], samples["sample_a"],
                                samples["sample_b"], values["winner"], values["annotator"], created_at, line))
    if not votes:
        raise ImportFileError(name, 2, "file", "contains no votes")
    return votes


def flip_winner(winner: str) -> str:
    return {"a": "b", "b": "a"}.get(winner, winner)
