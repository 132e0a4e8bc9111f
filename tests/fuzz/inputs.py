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
PANDALM_DEMO = ROOT / "demo" / "data" / "pandalm" / "testset-v1.json"

# Every importer error reads `FILE:LINE: field: what is wrong` (docs/design.md §5: file, line and field).
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
                writer.writerow([f"x{i}", f"Question number {i}?", system, s,
                                 f"Answer {i}.{s} of {system}, with, commas"])
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


def pandalm_seed(items: int = 6) -> bytes:
    """The first `items` items of the PandaLM release (real texts), as the demo reader reads them."""
    return json.dumps(json.loads(PANDALM_DEMO.read_text(encoding="utf-8"))[:items], indent=4).encode()


def arena_seed() -> bytes:
    return (b"model_a,model_b,winner,question_id,judge,tstamp\n"
            b"alpha,beta,model_a,q1,j1,1700000000\n"
            b"beta,gamma,tie (bothbad),q2,j2,1700000100.5\n"
            b"alpha,gamma,tie,q3,j1,\n")


# --------------------------------------------------------------------------------------------------
# strategies

# Text as a decoded UTF-8 file can hold (no lone surrogates), NUL included.
any_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)

# Strings a JSON file can carry but no database column can store: NUL (PostgreSQL refuses it in text
# and jsonb) and lone surrogates (JSON's "\ud800" escape decodes to one; it has no UTF-8 encoding).
UNSTORABLE_TEXTS = ["a\x00b", "\x00", "x\ud800y", "\udfff", "\ud83d", "ok\udc00"]
json_text = st.one_of(any_text, st.sampled_from(UNSTORABLE_TEXTS),
                      st.text(alphabet=st.characters(categories=["Cs"]), min_size=1, max_size=3))

# JSON the encoder never writes but a file may hold, spliced in verbatim as a value: nesting deep enough
# to exhaust a recursive parser, numbers JSON storage refuses (NaN, infinities, overflowing floats,
# integers too long to convert) and escapes of unstorable characters.
RAW_JSON_VALUES = [
    "[" * 100_000 + "]" * 100_000, '{"a": ' * 2000 + "1" + "}" * 2000, "[" * 40 + "]" * 40,
    "9" * 5000, "-" + "9" * 4500, "1e400", "-1e999", "NaN", "Infinity", "-Infinity", '{"a": NaN}', "[1e400]",
    '"\\u0000"', '"a\\ud800b"', '{"\\u0000": 1}', '{"k": ["\\udfff"]}',
]
TRICKY_CELLS = [
    "", " ", "\t", "0", "1", "2", "-1", "1.0", "0.5", "1e3", "-0", "+1", "007", "１", "٣", "½",
    "2147483648", "99999999999", "a", "b", "A", "tie", "both_bad", "Tie", "model_a", "model_b", "tie (bothbad)",
    "nan", "inf", "-inf", "None", "null", "true", "2024-05-01T12:30:00", "2024-05-01", "2024-13-45T99:00:00",
    "1700000000", "x0", "x1", "x9", "alpha-model", "beta-model", "alpha", '"', '""', '"a"b', "a,b", "\n",
    "\r\n", "\r", ",", ";", "\ufeff", "\u2028", "\u00a0", "é", "😀", "<script>", "' OR 1=1 --", "{}", "[]",
]


NUMERIC_CELLS = ["0", "1", "2", "5", "6", "-1", "+1", "1.0", "1.5", "0x1", "1_000", " 3 ", "１", "٣", "2147483647",
                 "2147483648", "9223372036854775808", "99999999999999999999", "1" + "0" * 400, "1e9", "-0",
                 "inf", "-inf", "1e400", "nan"]
NUMERIC_COLUMNS = {"sample_index", "sample_a", "sample_b", "tstamp", "weight"} | {
    f"{prefix}{i}" for prefix in ("Input.id", "Answer.pref") for i in range(1, 6)}


def cells():
    return st.one_of(st.sampled_from(TRICKY_CELLS), any_text, st.integers(-(10 ** 12), 10 ** 12).map(str))


def _serialise(rows: list[list[str]], raw: bool) -> bytes:
    if raw:  # no quoting at all: commas, quotes and newlines in cells break the structure on purpose
        return ("\n".join(",".join(row) for row in rows) + "\n").encode("utf-8")
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


@st.composite
def structured_csv(draw, columns: list[str], max_rows: int = 6):
    """A CSV whose header is built from the expected columns (some dropped, repeated, renamed, extra
    ones, any order) and whose rows hold values of every wrong kind, sometimes of the wrong width."""
    header = [c for c in columns if draw(st.integers(0, 9)) > 0]  # each column dropped one time in ten
    header += draw(st.lists(st.sampled_from(columns + ["extra", "x y", " winner ", "", "sample_a"]), max_size=2))
    header = draw(st.permutations(header))
    rows = [list(header)]
    numeric = st.one_of(st.sampled_from(NUMERIC_CELLS), cells())
    for _ in range(draw(st.integers(0, max_rows))):
        width = len(header) + draw(st.sampled_from([0, 0, 0, 0, -1, 1]))
        padded = list(header) + [""] * max(0, width - len(header))
        rows.append([draw(numeric if padded[i] in NUMERIC_COLUMNS else cells()) for i in range(max(0, width))])
    return _serialise(rows, raw=draw(st.booleans()))


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10 ** 6), 10 ** 6), st.floats(), json_text),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(json_text, children, max_size=3)),
    max_leaves=6,
)
RAW = "\x1bRAW{}\x1b"  # placeholder for RAW_JSON_VALUES[i], replaced after json.dumps


def _dump(draw, value) -> str:
    """`value` as JSON text, ASCII-escaped or not, with RAW placeholders replaced by their raw JSON."""
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    if not text.isascii() and any("\ud800" <= char <= "\udfff" for char in text) and draw(st.integers(0, 7)):
        text = json.dumps(value)  # mostly escaped: a raw lone surrogate only makes the file invalid UTF-8
    for index, raw in enumerate(RAW_JSON_VALUES):
        text = text.replace(json.dumps(RAW.format(index)), raw)
    return text


def _encode(text: str) -> bytes:
    # a raw lone surrogate (ensure_ascii off) becomes bytes that are not UTF-8: the file's problem
    return text.encode("utf-8", errors="surrogatepass")


json_value = st.one_of(JSON_VALUES, st.integers(0, len(RAW_JSON_VALUES) - 1).map(RAW.format))


GOOD_JSONL_VALUES = {"instance_id": "x0", "system": "alpha-model", "input": "Question?", "generations": ["An answer."],
                     "reference": "A reference.", "metadata": {"source": "fuzz"}}


@st.composite
def structured_jsonl(draw):
    """JSON lines with the generation keys holding values of every kind (storable or not, raw JSON
    the encoder never writes included), plus broken lines. Each key holds a good value five times in
    six, so many lines are good but for one value, which the parser must then find."""
    value = st.one_of(json_value, st.sampled_from(["x0", "x1", "alpha-model", "beta-model", "", " "]), json_text)
    lines = []
    for n in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["object"] * 8 + ["other_json", "broken", "blank"]))
        if kind == "object":
            obj = {}
            for key, good in GOOD_JSONL_VALUES.items():
                good = f"x{n}" if key == "instance_id" else good  # distinct lines, not duplicates
                choice = draw(st.integers(0, 11))
                if choice == 0:
                    continue  # the key is missing
                if choice <= 10:
                    obj[key] = good
                elif key == "generations":
                    obj[key] = draw(st.one_of(st.lists(st.one_of(value, st.just("An answer.")), max_size=3), value))
                elif key == "metadata":
                    obj[key] = draw(st.one_of(st.dictionaries(json_text, value, max_size=3), value))
                else:
                    obj[key] = draw(value)
            lines.append(_dump(draw, obj))
        elif kind == "other_json":
            lines.append(_dump(draw, draw(json_value)))
        elif kind == "broken":
            lines.append(draw(st.sampled_from(['{"instance_id": "x0"', "{'a': 1}", "{", "]", "NaN", '{"a": 1}}'])))
        else:
            lines.append(draw(st.sampled_from(["", "   ", "\t"])))
    return _encode("\n".join(lines) + "\n")


PANDALM_KEYS = ["idx", "motivation_app", "cmp_key", "instruction", "input", "response1", "response2",
                "annotator1", "annotator2", "annotator3"]


@st.composite
def structured_pandalm(draw):
    """A PandaLM-shaped file: an array of real items, in each of which one key (or none) is dropped or
    holds a value of another kind, so many files are good but for a few values."""
    seed = json.loads(pandalm_seed(3))
    label = st.one_of(st.sampled_from([0, 1, 2, 3, -1, True, False, 1.0, "1"]), json_value)
    text = st.one_of(json_value, json_text, st.sampled_from(["", " ", "a_b", "a_a", "alpha"]))
    items = []
    for n in range(draw(st.integers(0, 4))):
        item = dict(seed[n % len(seed)], idx=n)
        key = draw(st.sampled_from(PANDALM_KEYS + [None]))
        if key is not None and draw(st.integers(0, 5)) == 0:
            del item[key]
        elif key is not None and key.startswith("annotator"):
            item[key] = draw(label)
        elif key is not None:
            item[key] = draw(st.one_of(text, st.sampled_from([0, -1, "7", 1.5])) if key == "idx" else text)
        items.append(item if draw(st.integers(0, 19)) else draw(json_value))
    return _encode(_dump(draw, items))


@st.composite
def mutated(draw, seed: bytes):
    """The seed file after 1 to 4 random edits: bytes deleted, inserted or replaced (raw or as one of
    the JSON escapes of unstorable characters), the file cut short, a line dropped, doubled or swapped
    with another, a CSV cell replaced."""
    data = bytearray(seed)
    payload = st.one_of(st.binary(min_size=1, max_size=12),
                        st.sampled_from([b"\\u0000", b"\\ud800", b"\\udfff", b"\x00", b"NaN", b"1e400"]))
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
            rows[r][c] = draw(cells())
            data = bytearray(_serialise(rows, raw=False))
    return bytes(data)
