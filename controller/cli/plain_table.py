"""The CLI's tables as rich writes them to a pipe or file, for the simple case, without rich.

Importing rich's console and table costs a command 20-30 ms of start-up on this machine (issue
11, `polyfleet quote`), which is most of what a one-shot command does besides its imports. When
the output is not a terminal rich writes no escape codes, so a table of single-line ASCII cells
that fits the pipe width is a fixed layout: each column as wide as its widest cell or header,
one space of padding each side, rich's default heavy-head box, the title on its own line above.
`render` writes exactly that and answers None for anything else (a wider table rich would wrap,
a character whose width on screen is not one column, an encoding rich would draw ASCII boxes
for), where the caller prints the rich table as before. A test compares the two on generated
tables.
"""

from __future__ import annotations

from collections.abc import Sequence

PIPE_WIDTH = 160
"""Tables written to a pipe or file get this width instead of rich's 80 columns (the CLI's
consoles, `controller.cli.console`, are built with it)."""

_PRINTABLE_ASCII = frozenset(map(chr, range(0x20, 0x7F)))


def _simple(text: str) -> bool:
    """One line of characters one column wide each (what `printable()` leaves is ASCII)."""
    return set(text) <= _PRINTABLE_ASCII


def render(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None,
    width: int,
    encoding: str,
) -> str | None:
    """The table's text as rich's `Table(title=…)` prints it on a non-terminal console of
    `width` columns (soft wrap on), or None when rich would lay it out otherwise."""
    if not encoding.lower().startswith("utf"):  # rich draws ASCII boxes
        return None
    cells = [list(columns), *(list(row) for row in rows)]
    if any(len(row) != len(columns) for row in cells):
        return None
    if not all(_simple(text) for row in cells for text in row):
        return None
    if title and not _simple(title):
        return None
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    if sum(widths) + 3 * len(widths) + 1 > width:  # rich would wrap or shrink columns
        return None

    def line(left: str, fill: str, middle: str, right: str) -> str:
        return left + middle.join(fill * (w + 2) for w in widths) + right

    def row_line(edge: str, values: Sequence[str]) -> str:
        inner = edge.join(f" {value.ljust(w)} " for value, w in zip(values, widths, strict=True))
        return edge + inner + edge

    out = [title] if title else []
    out.append(line("┏", "━", "┳", "┓"))
    out.append(row_line("┃", columns))
    out.append(line("┡", "━", "╇", "┩"))
    out.extend(row_line("│", row) for row in rows)
    out.append(line("└", "─", "┴", "┘"))
    return "\n".join(out) + "\n"
