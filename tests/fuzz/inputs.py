"""What the fuzz tests feed the importers: valid seed files, byte- and cell-level mutations of them,
and "structured but wrong" files (the right columns or keys with values of every wrong kind).

Kept apart from the tests so the bad-input catalogue (`tests/fuzz/catalogue.py`) and every fuzz test
draw from the same seeds. Plain data and Hypothesis strategies; no database.
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent.parent
PAIRWISE_DEMO = ROOT / "demo" / "data" / "separability-paper" / "mistral-7b_vicuna-7b_samsum_pref_data.csv"

# Every importer error reads `FILE:LINE: field: what is wrong` (DESIGN §5: file, line and field).
MESSAGE = r"^{file}:\d+: \S+: .+"


def message_pattern(filename: str) -> re.Pattern:
    return re.compile(MESSAGE.format(file=re.escape(filename)))


# --------------------------------------------------------------------------------------------------
# valid seeds


def generations_jsonl_seed() -> bytes:
    lines = []
    for i in range(3):
        for system in ("alpha-model", "beta-model"):
            line = {"instance_id": f"x{i}", "system": system,
                    "generations": [f"Answer {i} of {system}, sample one.", f"Answer {i} of {system}, sample two."]}
            if system == "alpha-model":
                line["input"] = f"Question number {i}?"
            lines.append(json.dumps(line))
    return ("\n".join(lines) + "\n").encode()


def generations_csv_seed() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["instance_id", "input", "system", "sample_index", "text"])
    for i in range(3):
        for system in ("alpha-model", "beta-model"):
            for s in range(2):
                writer.writerow([f"x{i}", f"Question number {i}?", system, s, f"Answer {i}.{s} of {system}, with, commas"])
    return out.getvalue().encode()


def pairwise_seed(rows: int = 4) -> bytes:
    """The header and the first `rows` records of the paper's SAMSum crowd batch (real texts)."""
    text = PAIRWISE_DEMO.read_text(encoding="utf-8")
    records = list(csv.reader(io.StringIO(text, newline="")))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(records[: rows + 1])
    return out.getvalue().encode()


VOTES_HEADER = ["instance_id", "system_a", "system_b", "sample_a", "sample_b", "winner", "annotator", "created_at"]


def votes_seed() -> bytes:
    """Votes on the instances x0..x2 of `make_study(..., k=2, systems=("alpha-model", "beta-model"))`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(VOTES_HEADER)
    winners = ["a", "b", "tie", "both_bad"]
    for i in range(3):
        for n, worker in enumerate(("w1", "w2")):
            writer.writerow([f"x{i}", "alpha-model", "beta-model", n, n, winners[(i + n) % 4], worker,
                             "2024-05-01T12:30:00+00:00"])
    return out.getvalue().encode()


def arena_seed() -> bytes:
    return (b"model_a,model_b,winner,question_id,judge,tstamp\n"
            b"alpha,beta,model_a,q1,j1,1700000000\n"
            b"beta,gamma,tie (bothbad),q2,j2,1700000100.5\n"
            b"alpha,gamma,tie,q3,j1,\n")


# --------------------------------------------------------------------------------------------------
# strategies

# Text as a decoded UTF-8 file can hold (no lone surrogates). NUL is left out where the result is
# written to PostgreSQL: see test_known_bugs.py.
any_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
text_without_nul = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=60)

TRICKY_CELLS = [
    "", " ", "\t", "0", "1", "2", "-1", "1.0", "0.5", "1e3", "-0", "+1", "007", "１", "٣", "½",
    "2147483648", "99999999999", "a", "b", "A", "tie", "both_bad", "Tie", "model_a", "model_b", "tie (bothbad)",
    "nan", "inf", "-inf", "None", "null", "true", "2024-05-01T12:30:00", "2024-05-01", "2024-13-45T99:00:00",
    "1700000000", "x0", "x1", "x9", "alpha-model", "beta-model", "alpha", '"', '""', '"a"b', "a,b", "\n",
    "\r\n", "\r", ",", ";", "\ufeff", "\u2028", "\u00a0", "é", "😀", "<script>", "' OR 1=1 --", "{}", "[]",
]


NUMERIC_CELLS = ["0", "1", "2", "5", "6", "-1", "+1", "1.0", "1.5", "0x1", "1_000", " 3 ", "１", "٣", "2147483647",
                 "2147483648", "9223372036854775808", "99999999999999999999", "1" + "0" * 400, "1e9", "-0"]
NUMERIC_COLUMNS = {"sample_index", "sample_a", "sample_b", "tstamp", "weight"} | {
    f"{prefix}{i}" for prefix in ("Input.id", "Answer.pref") for i in range(1, 6)}


def cells(allow_nul: bool = True):
    text = any_text if allow_nul else text_without_nul
    return st.one_of(st.sampled_from(TRICKY_CELLS), text, st.integers(-(10 ** 12), 10 ** 12).map(str))


def _serialise(rows: list[list[str]], raw: bool) -> bytes:
    if raw:  # no quoting at all: commas, quotes and newlines in cells break the structure on purpose
        return ("\n".join(",".join(row) for row in rows) + "\n").encode("utf-8")
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


@st.composite
def structured_csv(draw, columns: list[str], allow_nul: bool = True, max_rows: int = 6):
    """A CSV whose header is built from the expected columns (some dropped, repeated, renamed, extra
    ones, any order) and whose rows hold values of every wrong kind, sometimes of the wrong width."""
    header = [c for c in columns if draw(st.integers(0, 9)) > 0]  # each column dropped one time in ten
    header += draw(st.lists(st.sampled_from(columns + ["extra", "x y", " winner ", "", "sample_a"]), max_size=2))
    header = draw(st.permutations(header))
    rows = [list(header)]
    numeric = st.one_of(st.sampled_from(NUMERIC_CELLS), cells(allow_nul))
    for _ in range(draw(st.integers(0, max_rows))):
        width = len(header) + draw(st.sampled_from([0, 0, 0, 0, -1, 1]))
        padded = list(header) + [""] * max(0, width - len(header))
        rows.append([draw(numeric if padded[i] in NUMERIC_COLUMNS else cells(allow_nul)) for i in range(max(0, width))])
    return _serialise(rows, raw=draw(st.booleans()))


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10 ** 6), 10 ** 6), st.floats(allow_nan=False), any_text),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(any_text, children, max_size=3)),
    max_leaves=6,
)


@st.composite
def structured_jsonl(draw, allow_nul: bool = True):
    """JSON lines with the generation keys holding values of every kind, plus broken lines."""
    text = any_text if allow_nul else text_without_nul
    value = st.one_of(JSON_VALUES if allow_nul else st.one_of(st.none(), st.integers(), text),
                      st.sampled_from(["x0", "x1", "alpha-model", "beta-model", "", " "]), text)
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["object", "object", "object", "other_json", "broken", "blank"]))
        if kind == "object":
            obj = {}
            for key in ("instance_id", "system", "input", "generations", "reference", "metadata"):
                if draw(st.integers(0, 5)) > 0:
                    if key == "generations":
                        obj[key] = draw(st.one_of(st.lists(value, max_size=3), value))
                    else:
                        obj[key] = draw(value)
            lines.append(json.dumps(obj, ensure_ascii=draw(st.booleans())))
        elif kind == "other_json":
            lines.append(json.dumps(draw(JSON_VALUES)))
        elif kind == "broken":
            lines.append(draw(st.sampled_from(['{"instance_id": "x0"', "{'a': 1}", "{", "]", "NaN", '{"a": 1}}'])))
        else:
            lines.append(draw(st.sampled_from(["", "   ", "\t"])))
    return ("\n".join(lines) + "\n").encode("utf-8")


@st.composite
def mutated(draw, seed: bytes, allow_nul: bool = True):
    """The seed file after 1 to 4 random edits: bytes deleted, inserted or replaced, the file cut
    short, a line dropped, doubled or swapped with another, a CSV cell replaced."""
    data = bytearray(seed)
    payload = st.binary(min_size=1, max_size=12) if allow_nul else st.binary(min_size=1, max_size=12).map(
        lambda b: b.replace(b"\x00", b"?"))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "insert", "replace", "truncate", "drop_line", "double_line",
                                   "swap_lines", "cell", "cell"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        lines = bytes(data).split(b"\n")
        if op == "delete":
            del data[at: at + draw(st.integers(1, 20))]
        elif op == "insert":
            data[at:at] = draw(payload)
        elif op == "replace":
            piece = draw(payload)
            data[at: at + len(piece)] = piece
        elif op == "truncate":
            del data[at:]
        elif op in ("drop_line", "double_line", "swap_lines") and lines:
            i = draw(st.integers(0, len(lines) - 1))
            if op == "drop_line":
                del lines[i]
            elif op == "double_line":
                lines.insert(i, lines[i])
            else:
                j = draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\n".join(lines))
        elif op == "cell":
            try:
                rows = list(csv.reader(io.StringIO(bytes(data).decode("utf-8"), newline="")))
            except (UnicodeDecodeError, csv.Error):
                continue
            if not rows:
                continue
            r = draw(st.integers(0, len(rows) - 1))
            if not rows[r]:
                continue
            c = draw(st.integers(0, len(rows[r]) - 1))
            rows[r][c] = draw(cells(allow_nul))
            data = bytearray(_serialise(rows, raw=False))
    return bytes(data)
