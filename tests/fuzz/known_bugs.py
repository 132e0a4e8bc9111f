"""Bugs the fuzz and fault tests found in code this suite does not own, each with its fix.

Each is pinned by a strict xfail (tests/fuzz/test_known_bugs.py, tests/reliability/test_lease_expiry.py)
that turns into a failure the day the fix lands: then delete the entry here and the marker there.
Entries with a `pattern` are also let through by the fuzzers (matched by their signature), so the
fuzzers keep catching anything new; the NUL character, which the fuzzers' database-writing
strategies leave out instead, has entries without one. `docs/bad-input.md` lists them all.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import DataError


@dataclass(frozen=True)
class KnownBug:
    name: str
    where: str
    fix: str
    exception: type | tuple | None = None  # the exception type(s) raised, when the bug is a crash
    pattern: str | None = None  # matched against str(exception) or the error message; None: not tolerated

    def matches(self, obj) -> bool:
        if self.pattern is None:
            return False
        if isinstance(obj, BaseException):
            if self.exception is not None and not isinstance(obj, self.exception):
                return False
        elif self.exception is not None:
            return False
        return bool(re.search(self.pattern, str(obj), re.DOTALL))


BUGS = {
    "naive_created_at": KnownBug(
        "a created_at without a UTC offset crashes the vote import (AttributeError)",
        "annotations/importers.py parse_votes_csv",
        "django.utils.timezone.utc was removed in Django 5.0: `timezone.make_aware(created_at, "
        "datetime.timezone.utc)`",
        exception=AttributeError, pattern=r"django\.utils\.timezone' has no attribute 'utc'",
    ),
    "repeated_header": KnownBug(
        "a repeated header name becomes the message's field (`votes.csv:1: my col: ...`)",
        "ranking/votes_csv.py read_votes_csv",
        "report it under field `header`: `VoteFileError(shown_path, header_line, \"header\", "
        "f\"column {_shown(name)} appears twice\")`",
        pattern=r"^\S+:\d+: (?:\S*\s.*|): column appears twice in the header$",
    ),
    "raw_header_in_message": KnownBug(
        "the missing-column message quotes the raw header cells, so a newline in one breaks the one-line message",
        "annotations/importers.py _csv_records",
        "quote the cells: `', '.join(map(repr, header))`",
        pattern=r"required column is missing \(header has: [^\n]*[\r\n\u2028\u2029\x0b\x0c\x1c-\x1e\x85]",
    ),
    "huge_sample_index": KnownBug(
        "a sample index beyond the database integer crashes the import (DataError on PostgreSQL from 2**31, "
        "OverflowError on SQLite from 2**63)",
        "annotations/importers.py parse_generations_csv, parse_votes_csv",
        "bound it where it is parsed: `if sample_index > 2**31 - 1: raise ImportFileError(name, line, field, "
        "\"must be at most 2147483647\")`",
        exception=(DataError, OverflowError),
        pattern=r"integer out of range|too large to convert to SQLite INTEGER",
    ),
    "nul_in_import": KnownBug(
        "a NUL character in a text crashes the import on PostgreSQL (DataError), which cannot store it",
        "annotations/importers.py (where texts are checked, e.g. _check_size and _required)",
        "`if \"\\x00\" in text: raise ImportFileError(name, line, field_name, \"contains a NUL character\")`",
    ),
    "nul_in_vote": KnownBug(
        "a NUL character in the vote's token or rationale is a 500 on PostgreSQL (DataError)",
        "annotations/queue.py submit_vote, check_answer; annotations/views.py open_assignment_for",
        "refuse a token outside `[A-Za-z0-9_-]{1,32}` with VoteRejected(..., status=404) before any query (and "
        "return None for it in open_assignment_for); refuse a rationale containing NUL with a 400 message",
    ),
    "refusal_as_redirect": KnownBug(
        "a refused vote (409, item timed out) is answered 200 + HX-Redirect when nothing is left for the "
        "annotator, so a client cannot tell it from a stored vote",
        "annotations/views.py next_item_response",
        "keep the status: `HttpResponse(status=status, headers={\"HX-Redirect\": done_url})` (htmx follows "
        "HX-Redirect whatever the status)",
    ),
}
KNOWN_BUGS = tuple(BUGS.values())


def tolerated(obj) -> bool:
    """Whether this exception or error message is one of the known, reported bugs."""
    return any(bug.matches(obj) for bug in KNOWN_BUGS)
