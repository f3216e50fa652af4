"""Text made safe to show: control characters spelled out, spreadsheet formulas neutralised."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inventory.safe_text import FORMULA_STARTS, CsvWriter, csv_cell, csv_value, printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("lab\x1b[5mX", "lab\\x1b[5mX"),  # ESC: would start a terminal escape sequence
        ("a\x9b31mb", "a\\x9b31mb"),  # C1 CSI, the one-byte ESC [
        ("a\x07b\x7fc\x00", "a\\x07b\\x7fc\\x00"),  # BEL, DEL, NUL
        ("two\nlines\ttab\r", "two\\nlines\\ttab\\r"),  # a table cell is one line
        ("abc\u202edef", "abc\\u202edef"),  # right-to-left override ("Trojan Source")
        ("x\u2066y\u2069", "x\\u2066y\\u2069"),  # bidi isolates
        ("Zürich [red]1[/] :cd: C:\\x", "Zürich [red]1[/] :cd: C:\\x"),  # left as they are
    ],
)
def test_printable_spells_control_characters(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_messages_keep_their_line_breaks_but_not_other_controls() -> None:
    assert printable("pinned: a\n  now:\x1b[2J b", keep_newlines=True) == (
        "pinned: a\n  now:\\x1b[2J b"
    )


@pytest.mark.parametrize(
    "value",
    [
        "=cmd|' /C calc'!A0",
        '=HYPERLINK("http://evil.example","x")',
        "+41 44 668 18 00",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "\t=1+1",
        "\r=1+1",
    ],
)
def test_formula_cells_get_a_leading_quote(value: str) -> None:
    """OWASP's CSV injection list: a spreadsheet shows these as text, it does not run them."""
    assert csv_cell(value) == "'" + value
    assert csv_value(csv_cell(value)) == value


@pytest.mark.parametrize(
    "value",
    ["-5", "+3.25", "-0.5", "00:04:f2:cd:ab:01", "2026-11-23T10:00:00+00:00", "195.00", "", "'x"],
)
def test_numbers_macs_dates_and_text_are_written_as_they_are(value: str) -> None:
    assert csv_cell(value) == value


def test_quoted_formulas_get_one_more_quote_so_import_gives_them_back() -> None:
    assert csv_cell("'=x") == "''=x"
    assert csv_value("''=x") == "'=x"
    assert csv_value("'-5") == "-5"  # a spreadsheet user's way to type text: read as meant


@given(st.text())
def test_every_value_survives_cell_and_back(value: str) -> None:
    assert csv_value(csv_cell(value)) == value


@given(st.text())
def test_no_cell_starts_a_formula_unless_it_is_a_plain_number(value: str) -> None:
    cell = csv_cell(value)
    if cell[:1] in FORMULA_STARTS:
        assert float(cell) == float(value)


def test_writer_neutralises_every_cell_and_writes_none_empty() -> None:
    out = io.StringIO()
    writer = CsvWriter(out)
    writer.writerow(["=1+1", None, 7, "-5", "@x"])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [["'=1+1", "", "7", "-5", "'@x"]]
