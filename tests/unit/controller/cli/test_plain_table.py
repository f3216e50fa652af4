"""The plain table writer gives rich's bytes, or declines (controller/cli/plain_table.py)."""

from __future__ import annotations

import io

from hypothesis import example, given, settings
from hypothesis import strategies as st

from controller.cli.console import data_console
from controller.cli.output import data_table, shown
from controller.cli.plain_table import PIPE_WIDTH, render


def rich_text(columns: list[str], rows: list[list[str]], title: str | None) -> str:
    buffer = io.StringIO()
    table = data_table(columns, title=title)
    for row in rows:
        table.add_row(*(shown(value) for value in row))
    data_console(buffer).print(table)
    return buffer.getvalue()


cell = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
any_text = st.one_of(cell, st.text(max_size=12))


tables = st.integers(1, 4).flatmap(
    lambda n: st.tuples(
        st.lists(cell, min_size=n, max_size=n),
        st.lists(st.lists(any_text, min_size=n, max_size=n), max_size=4),
    )
)


@settings(max_examples=300, deadline=None)
@example(table=(["a"], [["b "]]), title="  padded title  ")
@given(table=tables, title=st.one_of(st.none(), any_text))
def test_same_bytes_as_rich_or_none(
    table: tuple[list[str], list[list[str]]], title: str | None
) -> None:
    columns, rows = table
    plain = render(columns, rows, title=title, width=PIPE_WIDTH, encoding="utf-8")
    if plain is not None:
        assert plain == rich_text(columns, rows, title)


def test_the_quote_table_is_written_plain() -> None:
    rows = [
        ["registered", "pass", "serial HB00000226 is in the inventory (model Group Series 500)"]
    ]
    title = "re-activation quote for HB00000226 on 2026-12-06"
    plain = render(["rule", "result", "reason"], rows, title=title, width=160, encoding="utf-8")
    assert plain == rich_text(["rule", "result", "reason"], rows, title)


def test_declines_what_rich_would_wrap_or_draw_otherwise() -> None:
    columns = ["rule", "reason"]
    assert render(columns, [["a", "x" * 200]], title=None, width=160, encoding="utf-8") is None
    assert render(columns, [["a", "Ünïcode"]], title=None, width=160, encoding="utf-8") is None
    assert render(columns, [["a", "b"]], title=None, width=160, encoding="ascii") is None
