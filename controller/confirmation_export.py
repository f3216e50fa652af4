"""The audit record's export file, one spelling for every way out: `confirmations export` writes
it and the dashboard downloads it, so `confirmations verify --export` checks either."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TextIO

from controller.confirmations import RECORD_FIELDS
from inventory.safe_text import CsvWriter

ExportKind = Literal["json", "csv"]


def write_export(records: Sequence[Mapping[str, Any]], kind: ExportKind, out: TextIO) -> None:
    """`signed_record`s in chain order as an indented JSON array, or CSV with RECORD_FIELDS."""
    if kind == "json":
        json.dump(list(records), out, indent=2, ensure_ascii=False)
        out.write("\n")
        return
    writer = CsvWriter(out)
    writer.writerow(RECORD_FIELDS)
    for record in records:
        writer.writerow(record[k] for k in RECORD_FIELDS)
