"""Rendering listings as a rich table (people), JSON or CSV (scripts) on stdout.

Values are data (issue 9): table cells, headers and titles are literal `Text` with control
characters escaped, so a table shows them as stored whatever console prints it (the CLI's own
consoles take every string literally too, see `controller.cli.console`). CSV goes through
`inventory.safe_text.CsvWriter`, which neutralises cells a spreadsheet would run as formulas.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

from controller.cli.context import OutputFormat
from inventory.safe_text import CsvWriter, printable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text


def shown(value: Any) -> Text:
    """A value as a table cell or title: literal text, control characters escaped."""
    from rich.text import Text  # rich when a table is built, not by importing this module

    return Text(printable(_cell(value)))


def data_table(columns: Sequence[str], *, title: str | None = None) -> Table:
    """An empty table of `columns` whose title and headers are literal text; add rows of
    `shown()` cells (or own styled Text)."""
    from rich.table import Table

    table = Table(title=shown(title) if title is not None else None, header_style="bold")
    for column in columns:
        table.add_column(shown(column))
    return table


def _plain(value: Any) -> Any:
    """JSON-ready value: ISO 8601 timestamps with timezone, enums by value, decimals as strings."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


def _cell(value: Any) -> str:
    plain = _plain(value)
    if plain is None:
        return ""
    if isinstance(plain, dict):
        return ";".join(f"{k}={v}" for k, v in plain.items() if v is not None)
    if isinstance(plain, list):
        return ";".join(str(v) for v in plain)
    return str(plain)


def emit_json(data: Any) -> None:
    """Write `data` as indented JSON to stdout (JSON escapes control characters itself).

    One string, one write: `json.dump` writes every token on its own (1,000 devices: ~15 %
    slower); the bytes are the same."""
    sys.stdout.write(json.dumps(_plain(data), indent=2, ensure_ascii=False) + "\n")


def emit_rows(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    fmt: OutputFormat,
    *,
    console: Console | Callable[[], Console],
    title: str | None = None,
) -> None:
    """Print records in the chosen format; table and CSV show `columns`, JSON every key.

    `console` may be a function giving it, called only for a table: building the CLI's
    console imports rich, which JSON and CSV do not need (about 17 ms of start-up)."""
    if fmt is OutputFormat.JSON:
        emit_json(list(rows))
        return
    if fmt is OutputFormat.CSV:
        writer = CsvWriter(sys.stdout)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(_cell(row.get(c)) for c in columns)
        return
    table = data_table(columns, title=title)
    for row in rows:
        table.add_row(*(shown(row.get(c)) for c in columns))
    (console() if callable(console) else console).print(table)
