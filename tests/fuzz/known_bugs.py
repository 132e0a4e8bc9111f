"""Bugs the fuzz and fault tests found in code this suite does not own, each with its fix.

Each is pinned by a strict xfail (tests/fuzz/test_known_bugs.py, tests/reliability/test_lease_expiry.py)
that turns into a failure the day the fix lands: then delete the entry here and the marker there.
Entries with a `pattern` are also let through by the fuzzers (matched by their signature), so the
fuzzers keep catching anything new; an entry without one is pinned but not let through.
`docs/bad-input.md` lists them all.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


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


# Empty: the seven bugs found so far (naive created_at, repeated header, raw header in the message,
# huge sample index, NUL in an import, NUL in a vote field, refusal answered as a redirect) are fixed
# and covered by tests/fuzz/test_known_bugs.py and tests/reliability/test_lease_expiry.py.
BUGS: dict[str, KnownBug] = {}
KNOWN_BUGS = tuple(BUGS.values())


def tolerated(obj) -> bool:
    """Whether this exception or error message is one of the known, reported bugs."""
    return any(bug.matches(obj) for bug in KNOWN_BUGS)
