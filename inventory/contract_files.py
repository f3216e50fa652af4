"""Parsing contract lists (CSV or JSON) into Contracts, with a line and reason per bad row.

Pure: no store. A contract may span several rows (the simulator and many portals export one row
per covered serial, repeating the contract's number, kind and dates), and one row may list
several serials separated by `;`, `,` or spaces. A contract is accepted whole or not at all: if
any of its rows is rejected, its other rows are reported too, so nothing is half-imported.

Positions: for CSV, `line` is the physical line of the record (header = line 1); for JSON, the
1-based index of the object in the list ("item N").
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from inventory.catalog import PRODUCT_GROUP_TITLES, ProductGroup
from inventory.errors import ImportRefused, InvalidIdentifier
from inventory.identifiers import normalize_serial
from inventory.importer import ParseReport, RejectedRow, RowWarning, header_key
from inventory.input_files import ReadLimits, TextStream, first_line
from inventory.models import Contract, ContractKind, Pricing

Format = Literal["csv", "json"]

FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "number": ("number", "contract", "contract_number", "contract_no", "agreement", "agreement_no"),
    "kind": ("kind", "type", "contract_type", "coverage"),
    "serials": ("serial", "serials", "serial_number", "serial_numbers", "sn"),
    "product_groups": ("product_group", "product_groups", "productgroup", "group", "groups"),
    "start": ("start", "start_date", "starts", "valid_from", "from"),
    "end": ("end", "end_date", "ends", "expires", "expiry", "expiry_date", "valid_until", "until"),
    "pricing": ("pricing", "pricing_basis", "billing"),
    "region": ("region",),
}
"""Contract field -> header spellings (after `header_key`: lower case, `_` for spaces/dashes)."""

_ALIAS_TO_FIELD = {alias: name for name, aliases in FIELD_ALIASES.items() for alias in aliases}
_REQUIRED = ("number", "kind", "start", "end")
_SERIAL_SPLIT = re.compile(r"[;,\s]+")
_GROUP_SPLIT = re.compile(r"[;,]+")


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


_KINDS: dict[str, ContractKind] = {_squash(kind.value): kind for kind in ContractKind} | {
    "extended": ContractKind.EXTENDED_REACTIVATION,
    "reactivation": ContractKind.EXTENDED_REACTIVATION,
    "extendedreactivationservice": ContractKind.EXTENDED_REACTIVATION,
    "supportcontract": ContractKind.SUPPORT,
    "service": ContractKind.SUPPORT,
}
_PRICINGS: dict[str, Pricing] = {
    "perdevice": Pricing.PER_DEVICE,
    "device": Pricing.PER_DEVICE,
    "perterm": Pricing.PER_TERM,
    "term": Pricing.PER_TERM,
    "percontractterm": Pricing.PER_TERM,
    "contractterm": Pricing.PER_TERM,
}
_GROUPS: dict[str, ProductGroup] = {}
for _group in ProductGroup:
    for _spelling in (_group.value, _group.name, PRODUCT_GROUP_TITLES[_group]):
        _GROUPS[_squash(_spelling)] = _group


@dataclass(frozen=True, slots=True)
class AcceptedContract:
    """A contract built from one or more rows (their positions, in file order)."""

    lines: tuple[int, ...]
    contract: Contract


@dataclass(slots=True)
class ParsedContracts(ParseReport):
    """The outcome of parsing one contract file."""

    accepted: list[AcceptedContract] = field(default_factory=list)

    @property
    def contracts(self) -> list[Contract]:
        return [item.contract for item in self.accepted]


@dataclass(slots=True)
class _Row:
    line: int
    values: dict[str, object] = field(default_factory=dict)
    problems: list[tuple[str | None, str]] = field(default_factory=list)


def parse_contract_file(
    path: Path, *, fmt: Format | None = None, limits: ReadLimits | None = None
) -> ParsedContracts:
    """Parse a CSV or JSON contract list; ImportRefused if it is not a usable list at all."""
    stream = TextStream(path, limits)
    if fmt is None:
        suffix = path.suffix.lower()
        if suffix in (".csv", ".json"):
            fmt = "csv" if suffix == ".csv" else "json"
        else:
            fmt = "json" if stream.first_char() in ("[", "{") else "csv"
    if fmt == "csv":
        return _contracts_csv(stream.lines(), source=str(path))
    if fmt == "json":
        return _contracts_json(stream.json_items("contract objects"), source=str(path))
    raise ValueError(f"unknown import format {fmt!r}; use csv or json")


def parse_contracts_csv(text: str, *, source: str = "<csv>") -> ParsedContracts:
    """Parse CSV text (BOM removed): a header row, then one row per contract or per serial."""
    return _contracts_csv(io.StringIO(text, newline=""), source=source)


def _contracts_csv(lines: Iterable[str], *, source: str) -> ParsedContracts:
    result = ParsedContracts("csv")
    first, lines = first_line(lines)
    delimiter = ";" if "," not in first and ";" in first else ","
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    columns: dict[int, str] | None = None
    labels: dict[str, str] = {}
    width = 0
    rows: list[_Row] = []
    end = 0
    try:
        for cells in reader:
            line, end = end + 1, reader.line_num
            if not "".join(cells).strip():
                continue
            if columns is None:
                columns, labels = _csv_header(cells, source, result)
                width = len(cells)
                continue
            row = _Row(line)
            for index, cell in enumerate(cells):
                name = columns.get(index)
                if name is not None and cell.strip():
                    row.values[name] = cell.strip()
            if any(cell.strip() for cell in cells[width:]):
                row.problems.append(
                    (None, f"has {len(cells)} cells but the header has {width} columns")
                )
            rows.append(row)
    except csv.Error as exc:
        raise ImportRefused(
            f"cannot import {source}: broken CSV quoting in the record starting on line "
            f"{end + 1} ({exc})"
        ) from None
    if columns is None:
        raise ImportRefused(f"cannot import {source}: the file is empty")
    if not rows:
        raise ImportRefused(f"cannot import {source}: the file has a header but no rows")
    _assemble(rows, labels, result)
    return result


def _csv_header(
    cells: list[str], source: str, result: ParsedContracts
) -> tuple[dict[int, str], dict[str, str]]:
    columns: dict[int, str] = {}
    labels: dict[str, str] = {}
    for index, cell in enumerate(cells):
        label = cell.strip()
        name = _ALIAS_TO_FIELD.get(header_key(label)) if label else None
        if name is None:
            if label:
                result.warnings.append(RowWarning(1, label, f"unknown column {label!r} ignored"))
            continue
        if name in labels:
            raise ImportRefused(
                f"cannot import {source}: columns {labels[name]!r} and {label!r} both give the "
                f"contract's {name}"
            )
        columns[index] = name
        labels[name] = label
    _require_columns(labels, source, [c.strip() for c in cells if c.strip()])
    return columns, labels


def _require_columns(labels: Mapping[str, str], source: str, found: list[str]) -> None:
    missing = [name for name in _REQUIRED if name not in labels]
    if "serials" not in labels and "product_groups" not in labels:
        missing.append("serial or product_group")
    if missing:
        listed = ", ".join(repr(c) for c in found) or "none"
        raise ImportRefused(
            f"cannot import {source}: missing column(s) {', '.join(missing)} "
            f"(columns found: {listed})"
        )


def parse_contracts_json(text: str, *, source: str = "<json>") -> ParsedContracts:
    """Parse a JSON list of contract objects (`serials` and `product_groups` lists or text)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportRefused(
            f"cannot import {source}: not valid JSON ({exc.msg} at line {exc.lineno} "
            f"column {exc.colno})"
        ) from None
    if not isinstance(data, list) or not data:
        raise ImportRefused(
            f"cannot import {source}: expected a non-empty JSON list of contract objects"
        )
    return _contracts_json(enumerate(data, 1), source=source)


def _contracts_json(items: Iterable[tuple[int, object]], *, source: str) -> ParsedContracts:
    result = ParsedContracts("json")
    rows: list[_Row] = []
    labels: dict[str, str] = {}
    for number, item in items:
        if not isinstance(item, dict):
            raise ImportRefused(f"cannot import {source}: item {number} is not a JSON object")
        row = _Row(number)
        for key, value in item.items():
            name = _ALIAS_TO_FIELD.get(header_key(str(key)))
            if name is None:
                result.warnings.append(RowWarning(number, str(key), f"unknown key {key!r} ignored"))
                continue
            if name in row.values:
                row.problems.append((str(key), f"a second key gives the contract's {name}"))
                continue
            labels.setdefault(name, str(key))
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            if isinstance(value, list) and name in ("serials", "product_groups"):
                if not all(isinstance(v, str) for v in value):
                    row.problems.append((str(key), f"{name} must be a list of strings"))
                    continue
                value = ";".join(value)
            if not isinstance(value, str):
                row.problems.append((str(key), f"{name} must be text, not {type(value).__name__}"))
                continue
            row.values[name] = value.strip()
        rows.append(row)
    _assemble(rows, labels, result)
    return result


def _parse_row(row: _Row, labels: Mapping[str, str]) -> dict[str, object]:
    """Typed values of one row; problems are added to `row.problems`."""

    def label(name: str) -> str:
        return labels.get(name, name)

    parsed: dict[str, object] = {}
    for name in _REQUIRED:
        if name not in row.values:
            row.problems.append((label(name), f"{name} is missing"))
    number = row.values.get("number")
    if isinstance(number, str):
        if len(number) > 64:
            row.problems.append((label("number"), "contract number is longer than 64 characters"))
        parsed["number"] = number
    kind_raw = row.values.get("kind")
    if isinstance(kind_raw, str):
        kind = _KINDS.get(_squash(kind_raw))
        if kind is None:
            known = ", ".join(k.value for k in ContractKind)
            row.problems.append((label("kind"), f"unknown kind {kind_raw!r} (known: {known})"))
        parsed["kind"] = kind
    for name in ("start", "end"):
        raw = row.values.get(name)
        if isinstance(raw, str):
            try:
                parsed[name] = date.fromisoformat(raw)
            except ValueError:
                row.problems.append((label(name), f"{name} {raw!r} is not a date (YYYY-MM-DD)"))
    start, end = parsed.get("start"), parsed.get("end")
    if isinstance(start, date) and isinstance(end, date) and end < start:
        row.problems.append((label("end"), f"ends ({end}) before it starts ({start})"))
    serials: set[str] = set()
    for token in _SERIAL_SPLIT.split(str(row.values.get("serials", ""))):
        if token:
            try:
                serials.add(normalize_serial(token))
            except InvalidIdentifier as exc:
                row.problems.append((label("serials"), f"serial {exc.value!r} {exc.reason}"))
    parsed["serials"] = serials
    groups: set[ProductGroup] = set()
    for token in _GROUP_SPLIT.split(str(row.values.get("product_groups", ""))):
        if token.strip():
            group = _GROUPS.get(_squash(token))
            if group is None:
                known = ", ".join(g.value for g in ProductGroup)
                row.problems.append(
                    (
                        label("product_groups"),
                        f"unknown product group {token.strip()!r} (known: {known})",
                    )
                )
            else:
                groups.add(group)
    parsed["product_groups"] = groups
    if (
        not serials
        and not groups
        and not any(
            column in (label("serials"), label("product_groups")) for column, _ in row.problems
        )
    ):
        row.problems.append((None, "covers no serial and no product group"))
    pricing_raw = row.values.get("pricing")
    parsed["pricing"] = Pricing.PER_DEVICE
    if isinstance(pricing_raw, str):
        pricing = _PRICINGS.get(_squash(pricing_raw))
        if pricing is None:
            row.problems.append(
                (label("pricing"), f"unknown pricing {pricing_raw!r} (known: per-device, per-term)")
            )
        parsed["pricing"] = pricing
    region = row.values.get("region")
    if isinstance(region, str) and len(region) > 64:
        row.problems.append((label("region"), "region is longer than 64 characters"))
    parsed["region"] = region
    return parsed


_SHARED = ("kind", "start", "end", "pricing", "region")


def _assemble(rows: list[_Row], labels: Mapping[str, str], result: ParsedContracts) -> None:
    """Group rows by contract number; accept a contract only if all its rows are good."""
    groups: dict[str, list[tuple[_Row, dict[str, object]]]] = {}
    orphans: list[_Row] = []
    for row in rows:
        parsed = _parse_row(row, labels)
        number = parsed.get("number")
        if isinstance(number, str):
            members = groups.setdefault(number, [])
            if members and not row.problems:
                first_row, first = members[0]
                for name in _SHARED:
                    if parsed[name] != first[name]:
                        row.problems.append(
                            (
                                labels.get(name, name),
                                f"contract {number}: {name} {_show(parsed[name])} differs from "
                                f"{_show(first[name])} on {result.where(first_row.line)}",
                            )
                        )
            members.append((row, parsed))
        else:
            orphans.append(row)
    for row in orphans:
        _reject(result, row)
    for number, members in groups.items():
        bad = [row for row, _ in members if row.problems]
        if bad:
            where = result.where(bad[0].line)
            for row, _ in members:
                if row.problems:
                    _reject(result, row)
                else:
                    reason = f"contract {number} is not imported because {where} was rejected"
                    result.rejected.append(RejectedRow(row.line, None, reason))
            continue
        first = members[0][1]
        serials: set[str] = set()
        product_groups: set[ProductGroup] = set()
        for _, parsed in members:
            serials |= parsed["serials"]  # type: ignore[arg-type]
            product_groups |= parsed["product_groups"]  # type: ignore[arg-type]
        try:
            contract = Contract.model_validate(
                {
                    **{name: first[name] for name in ("number", *_SHARED)},
                    "serials": serials,
                    "product_groups": product_groups,
                }
            )
        except ValidationError as exc:
            for row, _ in members:
                for error in exc.errors():
                    message = str(error["msg"]).removeprefix("Value error, ")
                    result.rejected.append(RejectedRow(row.line, None, message))
            continue
        result.accepted.append(AcceptedContract(tuple(row.line for row, _ in members), contract))
    result.rejected.sort(key=lambda r: r.line)


def _reject(result: ParsedContracts, row: _Row) -> None:
    result.rejected.extend(RejectedRow(row.line, column, reason) for column, reason in row.problems)


def _show(value: object) -> str:
    if value is None:
        return "(none)"
    return repr(value.value) if isinstance(value, ContractKind | Pricing) else repr(str(value))
