"""Parsing device lists (CSV or JSON) into Devices, with a line, column and reason per bad row.

Pure: no store, no network. Real inventories come from spreadsheets and other tools, so headers
are matched case-insensitively with common aliases and every bad row is reported rather than
guessed at; only a file that cannot be read as a device list at all is refused (ImportRefused).

Positions: for CSV, `line` is the physical line where the record starts (the header is line 1,
a quoted multi-line cell counts every line it spans). For JSON, `line` is the 1-based index of
the object in the list, called "item N" in messages. `ParsedImport.where(n)` spells either.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from pydantic import BaseModel, ValidationError

from inventory.catalog import (
    POLY_OUIS,
    PRODUCT_GROUP_TITLES,
    ModelFamily,
    ProductGroup,
    family_for_model,
    product_group_for_model,
)
from inventory.errors import ImportRefused, InvalidIdentifier
from inventory.gc_pause import gc_paused
from inventory.hosts import normalize_host
from inventory.identifiers import format_mac, mac_warning, normalize_mac, normalize_serial
from inventory.input_files import ReadLimits, TextStream, first_line
from inventory.input_files import json_type as _json_type
from inventory.models import Device, DevicePorts, aware
from inventory.safe_text import csv_value

Format = Literal["csv", "json"]

FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "serial": ("serial", "serial_number", "serialnumber", "serial_no", "sn"),
    "mac": ("mac", "mac_address", "macaddress", "mac_addr"),
    "host": ("host", "ip", "ip_address", "ipaddress", "address", "hostname"),
    "model": ("model", "model_name"),
    "site": ("site", "location"),
    "product_group": ("product_group", "productgroup"),
    "driver": ("driver",),
    "firmware": ("firmware", "firmware_version"),
    "credentials": ("credentials", "credential_profile"),
    "snmp_port": ("snmp_port",),
    "https_port": ("https_port",),
    "ssh_port": ("ssh_port",),
    "tls_fingerprint": ("tls_fingerprint",),
    "ssh_host_key": ("ssh_host_key",),
    "first_seen": ("first_seen",),
    "last_seen": ("last_seen",),
}
"""Device field -> header spellings, after lower-casing and squashing spaces/dashes to `_`."""

_ALIAS_TO_FIELD: dict[str, str] = {
    alias: name for name, aliases in FIELD_ALIASES.items() for alias in aliases
}
_PORT_FIELDS = {"snmp_port": "snmp", "https_port": "https", "ssh_port": "ssh"}
_JSON_PORT_KEYS = {"snmp": "snmp_port", "https": "https_port", "ssh": "ssh_port"} | {
    name: name for name in _PORT_FIELDS
}
_TIME_FIELDS = ("first_seen", "last_seen")
_TEXT_FIELDS = (
    "model",
    "driver",
    "host",
    "site",
    "firmware",
    "credentials",
    "tls_fingerprint",
    "ssh_host_key",
)
_SQUASH_HEADER = re.compile(r"[\s\-_]+")
_TAG_PREFIX = "tag:"


def header_key(header: str) -> str:
    """The alias-table key of a header or JSON key: `MAC Address` and `mac-address` agree."""
    return _SQUASH_HEADER.sub("_", header.strip().lower()).strip("_")


def _group_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


_GROUP_NAMES: dict[str, ProductGroup] = {}
for _group in ProductGroup:
    for _spelling in (_group.value, _group.name, PRODUCT_GROUP_TITLES[_group]):
        _GROUP_NAMES[_group_key(_spelling)] = _group
_GROUP_CHOICES = ", ".join(group.value for group in ProductGroup)


@lru_cache(maxsize=4096)
def _family(model: str) -> ModelFamily | None:
    return family_for_model(model)


@lru_cache(maxsize=4096)
def _group_for_model(model: str) -> ProductGroup | None:
    return product_group_for_model(model)


@dataclass(frozen=True, slots=True)
class AcceptedRow:
    """A row that became a Device; `line` as described in the module docstring."""

    line: int
    device: Device


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """One problem of a rejected row; a row with several problems has one entry per problem."""

    line: int
    column: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class RowWarning:
    """Something worth telling the user about a row that was still accepted (or the header)."""

    line: int
    column: str | None
    message: str


@dataclass(slots=True)
class ParseReport:
    """What every import parser reports besides its accepted records: problems by position."""

    fmt: Format
    rejected: list[RejectedRow] = field(default_factory=list)
    warnings: list[RowWarning] = field(default_factory=list)

    @property
    def rejected_lines(self) -> list[int]:
        """Positions of rejected rows, each once, in file order."""
        return sorted({row.line for row in self.rejected})

    def where(self, line: int) -> str:
        """How messages name a position: `line 7` (CSV) or `item 7` (JSON)."""
        return f"{'line' if self.fmt == 'csv' else 'item'} {line}"


@dataclass(slots=True)
class ParsedImport(ParseReport):
    """The outcome of parsing one file: usable devices, and every problem with its position."""

    accepted: list[AcceptedRow] = field(default_factory=list)

    @property
    def devices(self) -> list[Device]:
        """The accepted devices in file order."""
        return [row.device for row in self.accepted]


class _RowBuilder:
    """Turns one record's raw values into a Device or into rejections; remembers identities."""

    def __init__(
        self, result: ParsedImport, default_site: str | None, *, decoded: bool = False
    ) -> None:
        """`decoded`: every text comes from strict UTF-8 decoding, so none holds a surrogate."""
        self.result = result
        self.default_site = default_site.strip() if default_site and default_site.strip() else None
        self.unit = "line" if result.fmt == "csv" else "item"
        self.seen_serials: dict[str, int] = {}
        self.seen_macs: dict[str, int] = {}
        self.decoded = decoded and (self.default_site is None or _encodable(self.default_site))

    def build(
        self,
        line: int,
        raw: Mapping[str, object],
        labels: Mapping[str, str],
        tags: dict[str, str],
        problems: list[tuple[str | None, str]],
    ) -> None:
        """Validate `raw` (field -> non-blank value) and record the row as accepted or rejected."""
        exact = True  # every value below is already in the form Device validation gives it
        if self.result.fmt == "csv":  # our CSV export neutralised formula-like cells
            cells, raw = raw, _csv_values(raw)
            exact = raw is cells
            if tags:
                tags = {name: csv_value(value) for name, value in tags.items()}
                exact = exact and all(value[:1] != "'" for value in tags.values())
        serial_raw = raw.get("serial")
        mac_raw = raw.get("mac")
        if serial_raw is None and mac_raw is None:
            problems.append((None, "has neither a serial number nor a MAC address"))
            self._reject(line, problems)
            return
        data: dict[str, Any] = {}
        mac: str | None = None
        if mac_raw is not None:
            mac_label = labels.get("mac", "mac")
            try:
                mac = normalize_mac(_as_text(mac_raw, "MAC"))
            except InvalidIdentifier as exc:
                problems.append((mac_label, f"MAC {exc.value!r} {exc.reason}"))
            else:
                data["mac"] = mac
                first = self.seen_macs.setdefault(mac, line)
                if first != line:
                    problems.append(
                        (mac_label, f"MAC {format_mac(mac)} already appears on {self.unit} {first}")
                    )
        serial_label = labels.get("serial", "serial")
        model = raw.get("model")
        serial: str | None = None
        if serial_raw is not None:
            try:
                serial = normalize_serial(_as_text(serial_raw, "serial"))
            except InvalidIdentifier as exc:
                problems.append((serial_label, f"serial {exc.value!r} {exc.reason}"))
        else:
            family = _family(model) if isinstance(model, str) else None
            if family is not None and family.mac_is_serial:
                serial = mac.upper() if mac is not None else None
            else:
                why = f"model {model!r} is not one" if isinstance(model, str) else "no model given"
                problems.append(
                    (
                        serial_label,
                        "serial missing; only UC phones (VVX, Trio, CCX, ...) may use their MAC as "
                        f"serial, and {why}",
                    )
                )
        if serial is not None:
            data["serial"] = serial
            first = self.seen_serials.setdefault(serial, line)
            if first != line:
                problems.append(
                    (serial_label, f"serial {serial} already appears on {self.unit} {first}")
                )

        for name in _TEXT_FIELDS:
            value = raw.get(name)
            if value.__class__ is str:
                data[name] = value
            elif value is not None:
                try:
                    data[name] = _as_text(value, name)
                except ValueError as exc:
                    problems.append((labels.get(name, name), str(exc)))
        if "site" not in data and self.default_site is not None:
            data["site"] = self.default_site

        ports: dict[str, int] = {}
        for name, port in _PORT_FIELDS.items():
            value = raw.get(name)
            if value is not None:
                try:
                    ports[port] = _as_port(value)
                except ValueError as exc:
                    problems.append((labels.get(name, name), str(exc)))
        if ports:
            data["ports"] = ports

        for name in _TIME_FIELDS:
            value = raw.get(name)
            if value is not None:
                try:
                    data[name] = _as_timestamp(value)
                except ValueError as exc:
                    problems.append((labels.get(name, name), str(exc)))

        notes: list[RowWarning] = []
        group_raw = raw.get("product_group")
        if group_raw is not None:
            group = _GROUP_NAMES.get(_group_key(group_raw)) if isinstance(group_raw, str) else None
            if group is None:
                problems.append(
                    (
                        labels.get("product_group", "product_group"),
                        f"unknown product group {group_raw!r} (known: {_GROUP_CHOICES})",
                    )
                )
            data["product_group"] = group
        elif "model" in data:
            model_name: str = data["model"]
            data["product_group"] = _group_for_model(model_name)
            if data["product_group"] is None:
                message = f"model {model_name!r} is not in the catalogue; product group left empty"
                notes.append(RowWarning(line, labels.get("model", "model"), message))

        if problems:
            self._reject(line, problems)
            return
        if tags:
            data["tags"] = tags
        exact = exact and (self.decoded or _all_encodable(raw, tags))
        try:
            device = _checked_device(data) if exact else Device.model_validate(data)
        except InvalidIdentifier as exc:  # the host: Device validation says exactly this
            problems.append((labels.get("host", "host"), str(exc)))
            self._reject(line, problems)
            return
        except ValidationError as exc:
            for error in exc.errors():
                column = str(error["loc"][0]) if error["loc"] else None
                problems.append((labels.get(column, column) if column else None, error["msg"]))
            self._reject(line, problems)
            return
        self.result.accepted.append(AcceptedRow(line, device))
        self.result.warnings.extend(notes)
        if mac is not None and mac[:6] not in POLY_OUIS:
            warning = mac_warning(mac)
            if warning is not None:
                self.result.warnings.append(RowWarning(line, labels.get("mac", "mac"), warning))

    def _reject(self, line: int, problems: list[tuple[str | None, str]]) -> None:
        self.result.rejected.extend(
            RejectedRow(line, column, reason) for column, reason in problems
        )


def _checked_device(data: dict[str, Any]) -> Device:
    """The Device that `Device.model_validate(data)` gives, for values `build` has checked.

    Validating again costs a third of an import's parse. What is left to do: the host check,
    timestamps made aware, and the ports object. Every text value is stripped and non-blank,
    serial and MAC are normalised, ports in range. `build` uses this only when no cell lost a
    formula-neutralising quote (such a value may need pydantic's strip) and no text holds a
    lone surrogate (pydantic refuses those; JSON escapes can make them): else it validates.
    """
    host = data.get("host")
    if host is not None:
        data["host"] = normalize_host(host)  # InvalidIdentifier: the caller rejects the row
    for name in _TIME_FIELDS:
        if (value := data.get(name)) is not None:
            data[name] = aware(value)
    if (ports := data.get("ports")) is not None:
        data["ports"] = _trusted(DevicePorts, ports)
    return _trusted(Device, data)


M = TypeVar("M", bound=BaseModel)


def _trusted(model: type[M], data: dict[str, Any]) -> M:
    """What `model.model_construct(**data)` makes, without its per-field default deep copies
    (those cost more than the validation skipped). For field names of `model` only."""
    defaults, factories = _defaults(model)
    values = defaults.copy()  # field order, as validation gives it
    values.update(data)
    for name, factory in factories:
        if name not in data:
            values[name] = factory()
    record = model.__new__(model)
    object.__setattr__(record, "__dict__", values)
    object.__setattr__(record, "__pydantic_fields_set__", set(data))
    object.__setattr__(record, "__pydantic_extra__", None)
    object.__setattr__(record, "__pydantic_private__", None)
    return record


@lru_cache(maxsize=4)
def _defaults(
    model: type[BaseModel],
) -> tuple[dict[str, Any], tuple[tuple[str, Callable[[], Any]], ...]]:
    """A model's field defaults (None for a required field) and its default factories."""
    defaults: dict[str, Any] = {}
    factories: list[tuple[str, Callable[[], Any]]] = []
    for name, info in model.model_fields.items():
        defaults[name] = None if info.is_required() else info.default
        if info.default_factory is not None:
            factories.append((name, cast(Callable[[], Any], info.default_factory)))
    return defaults, tuple(factories)


def _encodable(text: str) -> bool:
    """Whether `text` is valid Unicode for pydantic (no lone surrogate); ASCII answers fast."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _all_encodable(raw: Mapping[str, object], tags: Mapping[str, str]) -> bool:
    """`_encodable` for every text of a row: its values, tag names and tag values."""
    texts = [value for value in raw.values() if value.__class__ is str]
    if tags:
        texts.extend(tags)
        texts.extend(tags.values())
    return all(map(_encodable, texts))


def _csv_values(cells: Mapping[str, object]) -> Mapping[str, object]:
    """`cells` with the quote `inventory.safe_text.csv_cell` put before formulas taken off."""
    if "'" not in "".join(cells.values()):  # type: ignore[arg-type]  # CSV cells: all text
        return cells  # the usual row, told in one pass
    for value in cells.values():
        if isinstance(value, str) and value[:1] == "'":
            return {k: csv_value(v) if isinstance(v, str) else v for k, v in cells.items()}
    return cells  # the usual row: nothing to copy


def _as_text(value: object, what: str) -> str:
    """JSON may carry numbers where a spreadsheet would carry text (serial 12345)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{what} must be text, not {_json_type(value)}")


def _as_port(value: object) -> int:
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            raise ValueError(f"port {value!r} is not a whole number")
        port = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        port = value
    else:
        raise ValueError(f"port {json.dumps(value)} is not a whole number")
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is outside 1-65535")
    return port


def _as_timestamp(value: object) -> datetime:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(
        f"{value!r} is not an ISO 8601 timestamp (like 2024-05-01T12:00:00+00:00; "
        "without a timezone it is taken as UTC)"
    )


def _sniff(path: Path, stream: TextStream) -> Format:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        return "json"
    return "json" if stream.first_char() in ("[", "{") else "csv"


Record = tuple[
    int, Mapping[str, object], Mapping[str, str], dict[str, str], list[tuple[str | None, str]]
]
"""What a format's reader hands the row builder: (line, raw values, labels, tags, problems)."""

BATCH_ROWS = 5000
"""Rows per batch of `read_device_batches`: big enough for cheap bulk writes, small in memory."""


def read_device_batches(
    path: Path,
    *,
    fmt: Format | None = None,
    default_site: str | None = None,
    limits: ReadLimits | None = None,
    batch_rows: int | None = None,
) -> Iterator[ParsedImport]:
    """Parse a CSV or JSON device list as a stream, `batch_rows` rows at a time.

    Each batch reports its own rows; duplicates are detected across the whole file. The last
    batch (possibly without rows) carries warnings about the file as a whole. ImportRefused may
    come at any point, also after batches were handed out: whoever writes them must be able to
    undo that (one transaction). `fmt` None picks by extension (.csv / .json), else by content.
    """
    stream = TextStream(path, limits)
    chosen: Format = fmt if fmt is not None else _sniff(path, stream)
    notes: list[RowWarning] = []
    if chosen == "csv":
        records = _csv_records(stream.lines(), stream.source, notes)
    elif chosen == "json":
        records = _json_records(stream.json_items("device objects"), stream.source)
    else:
        raise ValueError(f"unknown import format {chosen!r}; use csv or json")
    # CSV text comes from the strict decoder; JSON's \u escapes can make lone surrogates
    decoded = chosen == "csv"
    return _batches(chosen, records, default_site, notes, batch_rows or BATCH_ROWS, decoded)


def _batches(
    fmt: Format,
    records: Iterator[Record],
    default_site: str | None,
    notes: list[RowWarning],
    batch_rows: int,
    decoded: bool = False,
) -> Iterator[ParsedImport]:
    builder = _RowBuilder(ParsedImport(fmt), default_site, decoded=decoded)
    rows = 0
    for line, raw, labels, tags, problems in records:
        builder.build(line, raw, labels, tags, problems)
        rows += 1
        if rows == batch_rows:
            yield builder.result
            builder.result, rows = ParsedImport(fmt), 0
    builder.result.warnings.extend(notes)
    yield builder.result


def parse_device_file(
    path: Path,
    *,
    fmt: Format | None = None,
    default_site: str | None = None,
    limits: ReadLimits | None = None,
) -> ParsedImport:
    """The whole file parsed into one ParsedImport; see read_device_batches."""
    batches = read_device_batches(path, fmt=fmt, default_site=default_site, limits=limits)
    with gc_paused():
        return _merge(batches)


def _merge(batches: Iterator[ParsedImport]) -> ParsedImport:
    merged: ParsedImport | None = None
    for batch in batches:
        if merged is None:
            merged = batch
            continue
        merged.accepted.extend(batch.accepted)
        merged.rejected.extend(batch.rejected)
        merged.warnings.extend(batch.warnings)
    assert merged is not None  # _batches always yields a last batch
    return merged


@dataclass(frozen=True, slots=True)
class _CsvLayout:
    fields: tuple[tuple[int, str], ...]
    tags: tuple[tuple[int, str], ...]
    unnamed: tuple[int, ...]
    labels: dict[str, str]
    width: int


def _csv_layout(header: list[str], source: str) -> _CsvLayout:
    """Map header cells to device fields and tags; refuse headers that cannot mean one thing."""
    fields: list[tuple[int, str]] = []
    tags: list[tuple[int, str]] = []
    unnamed: list[int] = []
    labels: dict[str, str] = {}
    owner: dict[str, tuple[int, str]] = {}  # field or "tag:<name>" -> (index, header)
    for index, cell in enumerate(header):
        label = cell.strip()
        if not label:
            unnamed.append(index)
            continue
        if label.lower().startswith(_TAG_PREFIX):
            name = label[len(_TAG_PREFIX) :].strip()
            if not name:
                raise ImportRefused(
                    f"cannot import {source}: column {index + 1} header {label!r} names no tag"
                )
            target, meaning = f"{_TAG_PREFIX}{name}", f"tag {name!r}"
        else:
            known = _ALIAS_TO_FIELD.get(header_key(label))
            if known is None:
                target, meaning, name = f"{_TAG_PREFIX}{label}", f"tag {label!r}", label
            else:
                target, meaning, name = known, f"the {known}", ""
        if target in owner:
            first_index, first_label = owner[target]
            raise ImportRefused(
                f"cannot import {source}: columns {first_label!r} (column {first_index + 1}) and "
                f"{label!r} (column {index + 1}) both give {meaning}"
            )
        owner[target] = (index, label)
        if name:
            tags.append((index, name))
        else:
            fields.append((index, target))
            labels[target] = label
    if "serial" not in labels and "mac" not in labels:
        found = ", ".join(repr(cell.strip()) for cell in header if cell.strip()) or "none"
        raise ImportRefused(
            f"cannot import {source}: no serial or MAC column (columns found: {found}); "
            "name one 'serial' or 'mac'"
        )
    return _CsvLayout(tuple(fields), tuple(tags), tuple(unnamed), labels, len(header))


def _delimiter(header: str) -> str:
    """Comma, unless the header has none but semicolons or tabs (European Excel, TSV exports)."""
    if "," in header or not (";" in header or "\t" in header):
        return ","
    return ";" if header.count(";") >= header.count("\t") else "\t"


def parse_csv_text(
    text: str, *, default_site: str | None = None, source: str = "<csv>"
) -> ParsedImport:
    """Parse CSV text (BOM already removed); see read_device_batches."""
    notes: list[RowWarning] = []
    records = _csv_records(io.StringIO(text, newline=""), source, notes)
    return _merge(_batches("csv", records, default_site, notes, BATCH_ROWS))


def _csv_records(lines: Iterable[str], source: str, notes: list[RowWarning]) -> Iterator[Record]:
    """The records of CSV lines; a warning about the file as a whole goes to `notes` at the end."""
    header, lines = first_line(lines)
    # strict: a quote left open would otherwise swallow the rest of the file into one cell
    reader = csv.reader(lines, delimiter=_delimiter(header), strict=True)
    layout: _CsvLayout | None = None
    rows = 0
    unnamed_used = False
    end = 0
    try:
        for cells in reader:
            line, end = end + 1, reader.line_num
            if not cells or not (cells[0].strip() or "".join(cells).strip()):
                continue
            if layout is None:
                layout = _csv_layout(cells, source)
                continue
            rows += 1
            count = len(cells)
            if count < layout.width:  # short rows (trailing empty cells dropped) are common
                cells = cells + [""] * (layout.width - count)
            raw = {name: value for index, name in layout.fields if (value := cells[index].strip())}
            tags = {name: value for index, name in layout.tags if (value := cells[index].strip())}
            problems: list[tuple[str | None, str]] = []
            if count > layout.width and any(cell.strip() for cell in cells[layout.width :]):
                problems.append(
                    (None, f"has {count} cells but the header has {layout.width} columns")
                )
            if layout.unnamed and not unnamed_used:
                unnamed_used = any(cells[index].strip() for index in layout.unnamed)
            yield line, raw, layout.labels, tags, problems
    except csv.Error as exc:
        raise ImportRefused(
            f"cannot import {source}: broken CSV quoting in the record starting on line "
            f"{end + 1} ({exc})"
        ) from None
    if layout is None:
        raise ImportRefused(f"cannot import {source}: the file is empty")
    if rows == 0:
        raise ImportRefused(f"cannot import {source}: the file has a header but no rows")
    if unnamed_used:
        columns = ", ".join(str(index + 1) for index in layout.unnamed)
        notes.append(
            RowWarning(1, None, f"column(s) {columns} have no header; their values were ignored")
        )


def parse_json_text(
    text: str, *, default_site: str | None = None, source: str = "<json>"
) -> ParsedImport:
    """Parse a JSON list of device objects held in memory; see read_device_batches."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportRefused(
            f"cannot import {source}: not valid JSON ({exc.msg} at line {exc.lineno} "
            f"column {exc.colno})"
        ) from None
    if not isinstance(data, list):
        raise ImportRefused(
            f"cannot import {source}: expected a JSON list of device objects, found "
            f"{_json_type(data)}"
        )
    if not data:
        raise ImportRefused(f"cannot import {source}: the JSON list is empty, there are no rows")
    records = _json_records(enumerate(data, 1), source)
    return _merge(_batches("json", records, default_site, [], BATCH_ROWS))


def _json_records(items: Iterable[tuple[int, object]], source: str) -> Iterator[Record]:
    for number, item in items:
        if not isinstance(item, dict):
            raise ImportRefused(
                f"cannot import {source}: expected a JSON list of device objects, but item "
                f"{number} is {_json_type(item)}"
            )
        raw, labels, tags, problems = _json_record(item)
        yield number, raw, labels, tags, problems


_FIELD, _PORTS, _TAGS, _TAG = range(4)


@lru_cache(maxsize=1024)
def _json_key(key: str) -> tuple[int, str]:
    """What a JSON key means: (kind, field or tag name); keys repeat, so this is cached."""
    squashed = header_key(key)
    if squashed == "ports":
        return _PORTS, ""
    if squashed == "tags":
        return _TAGS, ""
    stripped = key.strip()
    if stripped.lower().startswith(_TAG_PREFIX):
        return _TAG, stripped[len(_TAG_PREFIX) :].strip()
    if squashed in _ALIAS_TO_FIELD:
        return _FIELD, _ALIAS_TO_FIELD[squashed]
    return _TAG, stripped


@lru_cache(maxsize=256)
def _json_port_field(key: str) -> str | None:
    return _JSON_PORT_KEYS.get(header_key(key))


def _json_record(
    item: dict[str, object],
) -> tuple[dict[str, object], dict[str, str], dict[str, str], list[tuple[str | None, str]]]:
    """Split one JSON object into field values, key labels, tags and key-level problems."""
    raw: dict[str, object] = {}
    labels: dict[str, str] = {}
    tags: dict[str, str] = {}
    tag_labels: dict[str, str] = {}
    problems: list[tuple[str | None, str]] = []
    fields: list[tuple[str, str, object]] = []  # (field, label, value)
    tag_items: list[tuple[str, str, object]] = []  # (tag name, label, value)

    for key, value in item.items():
        if value is None:
            continue
        kind, name = _json_key(key)
        if kind == _FIELD:
            fields.append((name, key, value))
        elif kind == _TAG:
            tag_items.append((name, key, value))
        elif not isinstance(value, dict):
            what = "ports" if kind == _PORTS else "tags"
            problems.append((key, f"{what} must be an object, not {_json_type(value)}"))
        elif kind == _PORTS:
            for port_key, port in value.items():
                label = f"{key}.{port_key}"
                port_field = _json_port_field(port_key)
                if port_field is None:
                    problems.append((label, f"unknown port {port_key!r} (known: snmp, https, ssh)"))
                elif port is not None:
                    fields.append((port_field, label, port))
        else:
            tag_items.extend(
                (tag.strip(), f"{key}.{tag}", tag_value)
                for tag, tag_value in value.items()
                if tag_value is not None
            )

    for name, label, value in fields:
        if name in labels:
            problems.append((label, f"keys {labels[name]!r} and {label!r} both give the {name}"))
            continue
        labels[name] = label
        if isinstance(value, str):
            value = value.strip()
            if not value:
                continue
        raw[name] = value

    for name, label, value in tag_items:
        if not name:
            problems.append((label, "a tag needs a name"))
            continue
        if name in tag_labels:
            problems.append(
                (label, f"keys {tag_labels[name]!r} and {label!r} both give tag {name!r}")
            )
            continue
        tag_labels[name] = label
        if isinstance(value, str):
            text = value.strip()
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = str(value)
        else:
            problems.append((label, f"a tag value must be text, not {_json_type(value)}"))
            continue
        if text:
            tags[name] = text
    return raw, labels, tags, problems
