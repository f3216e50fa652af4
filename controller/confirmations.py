"""The confirmation hash chain: canonical JSON, SHA-256 links and their verification. Pure.

Canonical JSON of a record (what `hash` is the SHA-256 hex digest of):

* the object of every PRODUCT.md confirmation key except `hash`: number, serial, mac, feature,
  state_before, state_after, key_ref, driver, fee, currency, contract, requested_at,
  confirmed_at, actor, prev_hash (prev_hash included, `null` on the first record);
* keys sorted, separators `,` and `:` without whitespace, UTF-8 without `\\u` escapes;
* timestamps in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (always six fractional digits, always `Z`);
* `fee` as a string with exactly two decimals (`"195.00"`); `mac` as 12 lower-case hex digits;
  absent values (`mac`, `contract`, `prev_hash`) as `null`; every other value as a string.

The export uses the same spelling, so an auditor can recompute every hash from an export alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from inventory.confirmation_store import (
    ConfirmationDraft,
    ConfirmationStore,
    expected_number,
)
from inventory.models import Confirmation

__all__ = [
    "CONFIRMATION_FIELDS",
    "HASHED_FIELDS",
    "ChainProblem",
    "ChainReport",
    "ConfirmationDraft",
    "canonical_json",
    "canonical_record",
    "confirmation_store",
    "record_hash",
    "verify_chain",
]

CONFIRMATION_FIELDS: tuple[str, ...] = (
    "number",
    "serial",
    "mac",
    "feature",
    "state_before",
    "state_after",
    "key_ref",
    "driver",
    "fee",
    "currency",
    "contract",
    "requested_at",
    "confirmed_at",
    "actor",
    "hash",
    "prev_hash",
)
"""The JSON keys of a confirmation (PRODUCT.md), in export order."""

HASHED_FIELDS: tuple[str, ...] = tuple(name for name in CONFIRMATION_FIELDS if name != "hash")
_TIMESTAMPS = frozenset({"requested_at", "confirmed_at"})
_CENT = Decimal("0.01")


def format_timestamp(value: datetime) -> str:
    """The chain's one timestamp spelling: UTC, microseconds, `Z`."""
    if value.tzinfo is None:
        raise ValueError("a confirmation timestamp must carry a timezone")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_fee(value: Decimal | str | int) -> str:
    """Money with exactly two decimals, never through float."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
        return str(amount.quantize(_CENT))
    except InvalidOperation:
        raise ValueError(f"fee {value!r} is not an amount of money") from None


def _canonical_value(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if name in _TIMESTAMPS:
        if not isinstance(value, datetime):
            raise ValueError(f"{name} must be a timestamp, not {value!r}")
        return format_timestamp(value)
    if name == "fee":
        return format_fee(value)
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def canonical_record(record: Mapping[str, Any] | Confirmation) -> dict[str, str | None]:
    """Every confirmation key present in `record`, in PRODUCT.md order, spelled canonically."""
    data = record.model_dump() if isinstance(record, Confirmation) else record
    return {
        name: _canonical_value(name, data.get(name))
        for name in CONFIRMATION_FIELDS
        if name in data or name != "hash"
    }


def canonical_json(record: Mapping[str, Any] | Confirmation) -> bytes:
    """The bytes whose SHA-256 is the record's hash (see the module docstring)."""
    data = record.model_dump() if isinstance(record, Confirmation) else record
    hashed = {name: _canonical_value(name, data.get(name)) for name in HASHED_FIELDS}
    return json.dumps(hashed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def record_hash(record: Mapping[str, Any] | Confirmation) -> str:
    """SHA-256 hex of the record's canonical JSON."""
    return hashlib.sha256(canonical_json(record)).hexdigest()


def confirmation_store(engine: AsyncEngine) -> ConfirmationStore:
    """The confirmation store with this chain's hash function."""
    return ConfirmationStore(engine, record_hash)


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """The first place the chain does not hold: which record, which field or link, and why."""

    seq: int
    number: str
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Outcome of verifying the chain: how many records, the head hash, the first problem."""

    count: int
    head_hash: str | None
    problem: ChainProblem | None

    @property
    def intact(self) -> bool:
        return self.problem is None


def _check(row: Mapping[str, Any], expected_seq: int, prev_hash: str | None) -> ChainProblem | None:
    seq = row.get("seq", expected_seq)
    number = str(row.get("number"))

    def problem(field: str, message: str) -> ChainProblem:
        return ChainProblem(seq, number, field, message)

    if seq != expected_seq:
        return problem(
            "seq", f"expected sequence {expected_seq}, found {seq} (a record is missing)"
        )
    confirmed_at = row.get("confirmed_at")
    if isinstance(confirmed_at, datetime) and number != expected_number(seq, confirmed_at):
        return problem(
            "number", f"number should be {expected_number(seq, confirmed_at)} for its position"
        )
    if row.get("prev_hash") != prev_hash:
        if prev_hash is None:
            return problem("prev_hash", "the first record must have no previous hash")
        return problem(
            "prev_hash",
            f"prev_hash {row.get('prev_hash')} does not link to the previous record's hash "
            f"{prev_hash}",
        )
    try:
        actual = record_hash(row)
    except ValueError as exc:
        return problem("hash", f"the record cannot be hashed: {exc}")
    if row.get("hash") != actual:
        return problem(
            "hash",
            f"stored hash {row.get('hash')} does not match the record's content (recomputed "
            f"{actual}): a field was changed after it was written",
        )
    return None


def verify_chain(rows: Iterable[Mapping[str, Any]]) -> ChainReport:
    """Recompute every hash and link in `seq` order; stop at the first record that fails."""
    count = 0
    prev_hash: str | None = None
    for count, row in enumerate(rows, start=1):
        found = _check(row, count, prev_hash)
        if found is not None:
            return ChainReport(count - 1, prev_hash, found)
        prev_hash = row["hash"]
    return ChainReport(count, prev_hash, None)
