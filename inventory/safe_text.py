"""Stored and user-given text made safe to show: on a terminal, and in a spreadsheet.

Values come from import files, devices and command lines, so they may hold anything (issue 9):

* **Terminal.** `printable()` spells control characters (C0, DEL, C1: ESC would start a
  terminal escape sequence) and the Unicode bidi controls (which reorder what is shown, as in
  "Trojan Source") as `\\x1b` / `\\u202e` (`\\n`, `\\t`, `\\r` for the common three), so
  they are seen, not obeyed. Backslashes are left as they are. Rich markup and emoji codes are
  a matter of how rich is called (`controller.cli.console`), not of the text.
* **Spreadsheet.** Per OWASP's CSV-injection guidance, a CSV cell that a spreadsheet would take
  for a formula (first character `=`, `+`, `-`, `@`, tab or CR) is written with a `'` in front.
  Plain numbers (`-5`, `+3.25`) stay as they are: a spreadsheet reads them as numbers, never as
  formulas. So that our own import reads every export back exactly, a cell that already starts
  with quotes before such a character gets one more (`'=x` is written `''=x`), and
  `csv_value()` takes exactly one quote off any cell of the form `'…'<formula character>…`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import TextIO

_CONTROLS = "\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
"""Cc (C0, DEL, C1), the bidi marks, embeddings, overrides and isolates, line/paragraph seps."""
_UNSAFE = re.compile(f"[{_CONTROLS}]")
_UNSAFE_KEEPING_NEWLINES = re.compile(f"(?!\n)[{_CONTROLS}]")
_SHORT = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _spelled(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    short = _SHORT.get(char)
    if short is not None:
        return short
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with every control or bidi character spelled as an escape (`\\x1b`, `\\u202e`).

    A table cell is one value, so a newline in it is spelled too; a message of several lines
    (`keep_newlines`) keeps its line breaks.
    """
    pattern = _UNSAFE_KEEPING_NEWLINES if keep_newlines else _UNSAFE
    return pattern.sub(_spelled, text)


FORMULA_STARTS = frozenset("=+-@\t\r")
"""First characters that make a spreadsheet evaluate a cell (OWASP, CSV injection)."""
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)\Z")


def csv_cell(value: str) -> str:
    """The cell of `value`: itself, or with a `'` in front where a spreadsheet sees a formula."""
    if value.lstrip("'")[:1] in FORMULA_STARTS and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def csv_value(cell: str) -> str:
    """The value of a cell `csv_cell()` wrote: its neutralising quote taken off again."""
    if cell[:1] == "'" and cell.lstrip("'")[:1] in FORMULA_STARTS:
        return cell[1:]
    return cell


class CsvWriter:
    """The one CSV writer of every export and `-o csv` listing: `\\n` line ends, cells made
    safe by `csv_cell()`, None written as an empty cell."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, cells: Iterable[object]) -> None:
        self._writer.writerow(["" if c is None else csv_cell(str(c)) for c in cells])
