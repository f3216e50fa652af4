"""Parsing activation-key files (a licensing portal's CSV export) with a line number per bad row.

Pure: no store, no network. The columns are the portal's `serial,feature,key,expires_at`, matched
case-insensitively with a few aliases other portals use. `line` is the physical line where a
record starts (the header is line 1). Secrets are kept as SecretStr from the moment they are read.

Rules: serial, feature and key are required per row; `expires_at` may be blank (a key without
expiry). A date-only expiry means "valid through that day" (23:59:59 UTC), a timestamp without a
timezone is taken as UTC. A key that has already expired is rejected: it can activate nothing.
The same key for the same serial and feature twice in one file rejects the later row.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path

from pydantic import SecretStr

from inventory.errors import ImportRefused, InvalidIdentifier
from inventory.identifiers import normalize_serial
from inventory.input_files import ReadLimits, TextStream

KEY_REF_LENGTH = 12
MAX_FEATURE_LENGTH = 64
MAX_KEY_LENGTH = 1024
_FEATURE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SQUASH = re.compile(r"[\s\-_]+")

COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "serial": ("serial", "serial_number", "serialnumber", "serial_no", "sn"),
    "feature": ("feature", "feature_name", "option", "license", "product_option"),
    "key": ("key", "key_code", "keycode", "activation_key", "license_key", "option_key"),
    "expires_at": (
        "expires_at",
        "expires",
        "expiry",
        "expiry_date",
        "expiration",
        "expiration_date",
        "valid_until",
    ),
}
"""Key-file field -> header spellings, after lower-casing and squashing spaces/dashes to `_`."""
_ALIAS_TO_FIELD = {alias: name for name, aliases in COLUMN_ALIASES.items() for alias in aliases}
REQUIRED_COLUMNS = ("serial", "feature", "key")


def key_ref(key: str) -> str:
    """A short, non-secret name for a key: the first 12 hex digits of its SHA-256."""
    return hashlib.sha256(key.strip().encode("utf-8")).hexdigest()[:KEY_REF_LENGTH]


def check_feature(text: str) -> str:
    """The feature name trimmed, or ValueError saying what is wrong with it."""
    feature = text.strip()
    if not feature:
        raise ValueError("feature is empty")
    if len(feature) > MAX_FEATURE_LENGTH:
        raise ValueError(
            f"feature {feature[:20]!r}... is {len(feature)} characters, the limit is "
            f"{MAX_FEATURE_LENGTH}"
        )
    if not _FEATURE.match(feature):
        raise ValueError(
            f"feature {feature!r} may only hold letters, digits, '_', '.' and '-' "
            "(starting with a letter or digit)"
        )
    return feature


def parse_expiry(text: str) -> datetime:
    """An ISO 8601 date (valid through its end, UTC) or timestamp (naive = UTC), as aware UTC."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"expires_at {value!r} is not an ISO 8601 date or timestamp "
            "(like 2027-06-30 or 2027-06-30T23:59:59+00:00)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class KeyRow:
    """One usable key from the file; the key itself stays a SecretStr."""

    line: int
    serial: str
    feature: str
    key: SecretStr
    key_ref: str
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class KeyRejection:
    """One problem of a rejected row (a row with several problems has one entry per problem)."""

    line: int
    column: str | None
    reason: str


@dataclass(slots=True)
class ParsedKeyFile:
    """Usable keys and every rejected row, each with its line number."""

    accepted: list[KeyRow] = field(default_factory=list)
    rejected: list[KeyRejection] = field(default_factory=list)

    @property
    def rejected_lines(self) -> list[int]:
        """Lines with at least one problem, each once, in file order."""
        return sorted({r.line for r in self.rejected})


def _header_key(label: str) -> str:
    return _SQUASH.sub("_", label.strip().lower()).strip("_")


def _layout(header: list[str], source: str) -> dict[str, int]:
    """Column index of each known field; refuses files missing a required column."""
    found: dict[str, int] = {}
    for index, cell in enumerate(header):
        name = _ALIAS_TO_FIELD.get(_header_key(cell))
        if name is None:
            continue  # extra columns (contract, notes, ...) are allowed and ignored
        if name in found:
            raise ImportRefused(
                f"cannot import {source}: columns {found[name] + 1} and {index + 1} both give "
                f"the {name}"
            )
        found[name] = index
    missing = [name for name in REQUIRED_COLUMNS if name not in found]
    if missing:
        shown = ", ".join(repr(c.strip()) for c in header if c.strip()) or "none"
        raise ImportRefused(
            f"cannot import {source}: missing column(s) {', '.join(missing)} "
            f"(columns found: {shown}); expected serial,feature,key,expires_at"
        )
    return found


def parse_key_file(
    path: Path, *, now: datetime | None = None, limits: ReadLimits | None = None
) -> ParsedKeyFile:
    """Parse a key CSV file as a stream; ImportRefused if it cannot be read as one at all."""
    return _parse_key_lines(TextStream(path, limits).lines(), source=str(path), now=now)


def parse_key_text(
    text: str, *, source: str = "<csv>", now: datetime | None = None
) -> ParsedKeyFile:
    """Parse key CSV text (BOM removed); see the module docstring for the rules."""
    return _parse_key_lines(io.StringIO(text, newline=""), source=source, now=now)


def _parse_key_lines(lines: Iterable[str], *, source: str, now: datetime | None) -> ParsedKeyFile:
    moment = now or datetime.now(UTC)
    result = ParsedKeyFile()
    reader = csv.reader(lines, strict=True)
    layout: dict[str, int] | None = None
    seen: dict[tuple[str, str, str], int] = {}
    end = 0
    try:
        for cells in reader:
            line, end = end + 1, reader.line_num
            if not "".join(cells).strip():
                continue
            if layout is None:
                layout = _layout(cells, source)
                continue
            _parse_row(line, cells, layout, moment, seen, result)
    except csv.Error as exc:
        raise ImportRefused(f"cannot import {source}: line {end + 1}: {exc}") from None
    if layout is None:
        raise ImportRefused(f"cannot import {source}: the file is empty")
    return result


def _parse_row(
    line: int,
    cells: list[str],
    layout: dict[str, int],
    now: datetime,
    seen: dict[tuple[str, str, str], int],
    result: ParsedKeyFile,
) -> None:
    def cell(name: str) -> str:
        index = layout.get(name)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    problems: list[tuple[str | None, str]] = []
    serial = feature = ""
    try:
        serial = normalize_serial(cell("serial"))
    except InvalidIdentifier as exc:
        problems.append(("serial", f"serial {exc.value!r} {exc.reason}"))
    try:
        feature = check_feature(cell("feature"))
    except ValueError as exc:
        problems.append(("feature", str(exc)))
    key = cell("key")
    if not key:
        problems.append(("key", "key is empty"))
    elif len(key) > MAX_KEY_LENGTH:
        problems.append(("key", f"key is longer than {MAX_KEY_LENGTH} characters"))
    elif _CONTROL.search(key):
        problems.append(("key", "key contains control characters"))
    expires_at: datetime | None = None
    if raw_expiry := cell("expires_at"):
        try:
            expires_at = parse_expiry(raw_expiry)
        except ValueError as exc:
            problems.append(("expires_at", str(exc)))
        else:
            if expires_at <= now:
                problems.append(
                    ("expires_at", f"key expired on {expires_at.isoformat()}; nothing to import")
                )
    ref = key_ref(key) if key else ""
    if not problems:
        first = seen.setdefault((serial, feature, ref), line)
        if first != line:
            problems.append(
                ("key", f"the same key for {serial} {feature} already appears on line {first}")
            )
    if problems:
        result.rejected.extend(KeyRejection(line, column, reason) for column, reason in problems)
        return
    result.accepted.append(KeyRow(line, serial, feature, SecretStr(key), ref, expires_at))
