"""Read a vote file (CSV) for the standalone leaderboard, with errors that point at the file, line and field.

Two layouts are accepted, told apart by the header (which is required):

1. This project's vote export, the same columns `manage.py import_votes` reads:
   `instance_id,system_a,system_b,sample_a,sample_b,winner,annotator[,created_at][,weight]`
   with winner in {a, b, tie, both_bad}, sample_a/sample_b non-negative integers (which sampled
   generation of each system was shown), created_at an optional ISO 8601 time (UTC when it has no
   offset) and weight an optional per-vote weight in [0, 1] (e.g. the instance's clipped
   separability, for the weighted methods, which raise weights below 0.05 to 0.05).
   Every column but the optional ones must be present and non-empty on every line.
2. Chatbot Arena's battle tables (`model_a,model_b,winner`, winner in {model_a, model_b, tie,
   tie (bothbad)}), so the public Arena votes can be ranked directly once saved as CSV. Optional
   columns: `question_id` (instance), `judge` (annotator), `tstamp` (Unix seconds). "tie (bothbad)"
   becomes both_bad.

Columns in any order; extra columns are ignored; surrounding spaces in values are dropped. Any problem
raises VoteFileError, whose text is one line `FILE:LINE: field: what is wrong` (LINE 0 when the file
cannot be opened). Plain Python (csv module), no Django.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from lib.csvsafe import unescape_cell
from lib.vocabulary import WINNERS

__all__ = ["VoteFileError", "VotesTable", "read_votes_csv", "WINNERS", "ARENA_WINNERS"]

ARENA_WINNERS = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "both_bad"}
REQUIRED_COLUMNS = ("instance_id", "system_a", "system_b", "sample_a", "sample_b", "winner", "annotator")
ARENA_REQUIRED_COLUMNS = ("model_a", "model_b", "winner")

_UNDECODABLE = re.compile("[\udc80-\udcff]")


class VoteFileError(ValueError):
    """A vote file is unreadable or wrong; str() is `FILE:LINE: field: what is wrong`."""

    def __init__(self, path: str, line: int, field_name: str, problem: str):
        self.path, self.line, self.field, self.problem = path, line, field_name, problem
        super().__init__(f"{path}:{line}: {field_name}: {problem}")


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


def _shown(value: str) -> str:
    """A value quoted for an error message, cut short so the message stays one readable line."""
    text = value if len(value) <= 40 else value[:37] + "..."
    return repr(text)


def _decode(data: bytes) -> tuple[str, bool]:
    """Return (text, clean). Undecodable bytes become lone surrogates, found later per field."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="surrogateescape"), False


def _parse_sample(path, line, name, value) -> int:
    try:
        number = int(value)
    except ValueError:
        raise VoteFileError(path, line, name, f"{_shown(value)} is not a whole number (the sample index)") from None
    if number < 0:
        raise VoteFileError(path, line, name, f"{number} is negative (the sample index)")
    return number


def _parse_iso_time(path, line, name, value) -> datetime:
    """ISO 8601; a time without an offset is taken as UTC (as `manage.py import_votes` does)."""
    try:
        moment = datetime.fromisoformat(value)
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
    except ValueError:
        raise VoteFileError(
            path, line, name, f"{_shown(value)} is not an ISO 8601 time (e.g. 2024-05-01T12:30:00+00:00)"
        ) from None


def _parse_unix_time(path, line, name, value) -> datetime:
    try:
        seconds = float(value)
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise VoteFileError(path, line, name, f"{_shown(value)} is not a Unix time in seconds") from None


def _parse_weight(path, line, name, value) -> float:
    try:
        weight = float(value)
    except ValueError:
        raise VoteFileError(path, line, name, f"{_shown(value)} is not a number") from None
    if not (math.isfinite(weight) and 0.0 <= weight <= 1.0):
        raise VoteFileError(path, line, name, f"{_shown(value)} is not in [0, 1]")
    return weight


def read_votes_csv(path: str | os.PathLike) -> VotesTable:
    """Read and check a whole vote file; raises VoteFileError at the first problem."""
    shown_path = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise VoteFileError(shown_path, 0, "file", f"cannot be read ({error.strerror or error})") from None
    text, clean = _decode(data)

    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    last_line = 0

    def next_row():
        nonlocal last_line
        start = last_line + 1
        try:
            row = next(reader)
        except csv.Error as error:
            # Report where the broken record starts: an unclosed quote is only noticed at the end of the file.
            raise VoteFileError(shown_path, start, "row", f"malformed CSV ({error})") from None
        last_line = reader.line_num
        return start, [unescape_cell(cell) for cell in row]  # our exports escape formula-like cells

    try:
        header_line, header = next_row()
        while not header:
            header_line, header = next_row()
    except StopIteration:
        raise VoteFileError(shown_path, 1, "header", "the file is empty; expected a header line") from None

    header = [name.strip() for name in header]
    if not clean:
        for name in header:
            if _UNDECODABLE.search(name):
                raise VoteFileError(shown_path, header_line, "header", "not valid UTF-8; save the file as UTF-8")
    seen: dict[str, int] = {}
    for position, name in enumerate(header):
        if name in seen and name:
            raise VoteFileError(shown_path, header_line, "header", f"column {name!r} appears twice")
        seen[name] = position

    if all(name in seen for name in REQUIRED_COLUMNS) or "model_a" not in seen:
        layout = "votes"
        for name in REQUIRED_COLUMNS:
            if name not in seen:
                raise VoteFileError(
                    shown_path, header_line, name,
                    "missing column; the header must name instance_id, system_a, system_b, sample_a, "
                    "sample_b, winner, annotator (optional: created_at, weight), or model_a, model_b, "
                    "winner for a Chatbot Arena file",
                )
        required = REQUIRED_COLUMNS
    else:
        layout = "arena"
        for name in ARENA_REQUIRED_COLUMNS:
            if name not in seen:
                raise VoteFileError(shown_path, header_line, name, "missing column (Chatbot Arena layout: "
                                    "model_a, model_b, winner)")
        required = ARENA_REQUIRED_COLUMNS

    table = VotesTable(path=shown_path, layout=layout)
    has_weight = "weight" in seen
    if has_weight:
        table.weight = []
    width = len(header)
    column = seen
    if layout == "votes":
        optional_time, parse_time = "created_at", _parse_iso_time
        instance_col, annotator_col = "instance_id", "annotator"
        first_col, second_col = "system_a", "system_b"
    else:
        optional_time, parse_time = "tstamp", _parse_unix_time
        instance_col, annotator_col = "question_id", "judge"
        first_col, second_col = "model_a", "model_b"
    has_time = optional_time in seen

    while True:
        try:
            line, row = next_row()
        except StopIteration:
            break
        if not row:
            continue
        if len(row) != width:
            raise VoteFileError(
                shown_path, line, "row", f"expected {width} fields as in the header, found {len(row)}"
            )
        values = [value.strip() for value in row]
        if not clean:
            for name, value in zip(header, values):
                if _UNDECODABLE.search(value):
                    raise VoteFileError(shown_path, line, name or "row", "not valid UTF-8; save the file as UTF-8")
        for name in required:
            if not values[column[name]]:
                raise VoteFileError(shown_path, line, name, "empty; a value is required")

        winner_value = values[column["winner"]]
        if layout == "votes":
            winner = winner_value
            if winner not in WINNERS:
                raise VoteFileError(shown_path, line, "winner",
                                    f"{_shown(winner_value)} is not one of a, b, tie, both_bad")
        else:
            winner = ARENA_WINNERS.get(winner_value)
            if winner is None:
                raise VoteFileError(shown_path, line, "winner",
                                    f"{_shown(winner_value)} is not one of model_a, model_b, tie, tie (bothbad)")
        system_a, system_b = values[column[first_col]], values[column[second_col]]
        if system_a == system_b:
            raise VoteFileError(shown_path, line, second_col,
                                f"{_shown(system_b)} is the same system as {first_col}; a vote compares two systems")

        if layout == "votes":
            table.sample_a.append(_parse_sample(shown_path, line, "sample_a", values[column["sample_a"]]))
            table.sample_b.append(_parse_sample(shown_path, line, "sample_b", values[column["sample_b"]]))
        else:
            table.sample_a.append(None)
            table.sample_b.append(None)
        table.instance_id.append(values[column[instance_col]] if instance_col in column else "")
        table.annotator.append(values[column[annotator_col]] if annotator_col in column else "")
        if has_time and values[column[optional_time]]:
            table.created_at.append(parse_time(shown_path, line, optional_time, values[column[optional_time]]))
        else:
            table.created_at.append(None)
        if has_weight:
            if not values[column["weight"]]:
                raise VoteFileError(shown_path, line, "weight",
                                    "empty; when the file has a weight column every vote needs one")
            table.weight.append(_parse_weight(shown_path, line, "weight", values[column["weight"]]))
        table.system_a.append(system_a)
        table.system_b.append(system_b)
        table.winner.append(winner)
        table.line.append(line)
    return table
