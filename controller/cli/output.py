"""Rendering listings as a rich table (people), JSON or CSV (scripts) on stdout."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from rich.console import Console
from rich.table import Table

from controller.cli.context import OutputFormat


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
    """Write `data` as indented JSON to stdout."""
    json.dump(_plain(data), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def emit_rows(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    fmt: OutputFormat,
    *,
    console: Console,
    title: str | None = None,
) -> None:
    """Print records in the chosen format; table and CSV show `columns`, JSON every key."""
    if fmt is OutputFormat.JSON:
        emit_json(list(rows))
        return
    if fmt is OutputFormat.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
        return
    table = Table(title=title, header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(table)
