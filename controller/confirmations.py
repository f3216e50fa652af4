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

Signing: each record's `signature` is the Ed25519 signature of `polyfleet-confirmation-v1\n` +
its hash (hex), made at append time with the key of `inventory.signing_key`. Each record is
signed, rather than only an occasional chain head, so `verify` names the first record whose
signature fails, and every record is covered the moment it is written; since a hash covers
`prev_hash`, one record's signature also vouches for everything before it. Signatures alone
cannot show that the newest records were removed; the cross-check against the re-activation
operations and a checkpoint kept elsewhere (`Checkpoint`) do.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from controller.errors import ControllerError
from inventory.async_engine import AsyncEngine
from inventory.confirmation_store import (
    ConfirmationDraft,
    ConfirmationStore,
    expected_number,
)
from inventory.models import Confirmation
from inventory.signing_key import SigningKey, VerifyKey

__all__ = [
    "CONFIRMATION_FIELDS",
    "HASHED_FIELDS",
    "RECORD_FIELDS",
    "ChainProblem",
    "ChainReport",
    "Checkpoint",
    "CheckpointError",
    "CheckpointForged",
    "ConfirmationDraft",
    "canonical_json",
    "canonical_record",
    "confirmation_store",
    "cross_check",
    "record_hash",
    "record_message",
    "signed_record",
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

RECORD_FIELDS: tuple[str, ...] = (*CONFIRMATION_FIELDS, "signature")
"""What listings and exports show: the PRODUCT.md keys plus the record's signature."""

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


def signed_record(record: Confirmation) -> dict[str, str | None]:
    """`canonical_record` plus the record's `signature` (RECORD_FIELDS): what the audit
    commands list and export, so an auditor can check signatures from an export alone."""
    return {**canonical_record(record), "signature": record.signature}


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


def record_message(hash_hex: str) -> bytes:
    """What a record's signature signs: a domain prefix and the record's hash."""
    return b"polyfleet-confirmation-v1\n" + hash_hex.encode("ascii")


class _RecordSigner:
    """Signs record hashes, loading (or making) the signing key only when the first one is."""

    def __init__(self, key: SigningKey | None) -> None:
        self._key = key

    def __call__(self, hash_hex: str) -> str:
        if self._key is None:
            self._key = SigningKey.load_or_create()
        return self._key.sign(record_message(hash_hex))


def confirmation_store(engine: AsyncEngine, key: SigningKey | None = None) -> ConfirmationStore:
    """The confirmation store with this chain's hash function, signing with `key` (default: this
    user's signing key, made on the first append)."""
    return ConfirmationStore(engine, record_hash, _RecordSigner(key))


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


def _check(
    row: Mapping[str, Any],
    expected_seq: int,
    prev_hash: str | None,
    key: VerifyKey | None,
    unsigned_until: int,
) -> ChainProblem | None:
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
    if key is None:
        return None
    signature = row.get("signature")
    if signature is None:
        if seq <= unsigned_until:
            return None
        return problem(
            "signature", "the record is not signed (its signature was removed, or it was forged)"
        )
    why = key.check(record_message(row["hash"]), str(signature))
    return None if why is None else problem("signature", why)


def rows_from_export(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Records read back from `confirmations export` (JSON, or CSV with its formula-neutralising
    quotes already taken off) as rows `verify_chain` checks: empty cells are None, timestamps
    parsed; a timestamp that does not parse stays text, so its record fails to hash by name."""
    rows: list[dict[str, Any]] = []
    for record in records:
        row: dict[str, Any] = {k: (None if v in ("", None) else v) for k, v in record.items()}
        for name in _TIMESTAMPS:
            value = row.get(name)
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    row[name] = datetime.fromisoformat(value)
        rows.append(row)
    return rows


def verify_chain(
    rows: Iterable[Mapping[str, Any]],
    *,
    key: VerifyKey | None = None,
    unsigned_until: int = 0,
) -> ChainReport:
    """Recompute every hash and link in `seq` order, and with `key` check every signature
    (records up to seq `unsigned_until` may be unsigned); stop at the first record that fails."""
    count = 0
    prev_hash: str | None = None
    for count, row in enumerate(rows, start=1):
        found = _check(row, count, prev_hash, key, unsigned_until)
        if found is not None:
            return ChainReport(count - 1, prev_hash, found)
        prev_hash = row["hash"]
    return ChainReport(count, prev_hash, None)


def _seq_of(number: str) -> int:
    """The sequence a number carries (`RC-2026-000123` → 123); 0 if it is not a number."""
    tail = number.rpartition("-")[2]
    return int(tail) if tail.isdigit() else 0


def cross_check(
    rows: Sequence[Mapping[str, Any]], references: Iterable[tuple[str, str]]
) -> ChainProblem | None:
    """The first confirmation that re-activation operations reference (`(operation id, number)`)
    but the record lacks, or that belongs to another operation: a deleted or replaced record.

    The chain itself keeps numbers contiguous (seq 1..n, each number carrying its seq), so this
    catches what it cannot: records removed from the end, or all of them (TRUNCATE).
    """
    owners = {str(row["number"]): str(row["reactivation_id"]) for row in rows}
    problems: list[ChainProblem] = []
    for operation, number in references:
        owner = owners.get(number)
        if owner is None:
            problems.append(
                ChainProblem(
                    _seq_of(number),
                    number,
                    "missing",
                    f"re-activation {operation} was confirmed as {number}, which is not in the "
                    f"record (it holds {len(rows)}): records were deleted",
                )
            )
        elif owner != operation:
            problems.append(
                ChainProblem(
                    _seq_of(number),
                    number,
                    "reactivation_id",
                    f"re-activation {operation} was confirmed as {number}, but that record "
                    f"belongs to {owner}: the record was replaced",
                )
            )
    return min(problems, key=lambda p: (p.seq, p.number), default=None)


class CheckpointError(ControllerError, ValueError):
    """A checkpoint that cannot be made or read."""


class CheckpointForged(CheckpointError):
    """A checkpoint whose signature does not verify with the trusted key."""


_CHECKPOINT_FORMAT = "polyfleet-checkpoint-v1"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement of the chain's head: `count` records, the last numbered `head_number`
    with hash `head_hash`, as of `created_at`. Kept outside the store (ticket, mail, syslog), it
    shows any later deletion or rewrite of those records, even by someone who bypassed the
    triggers; without the private key it cannot be forged to match a rewritten record.

    Its text is one line of JSON, so it survives being pasted into a ticket or a log line.
    """

    count: int
    head_number: str | None
    head_hash: str | None
    created_at: datetime
    key_id: str
    signature: str

    def _body(self) -> dict[str, Any]:
        return {
            "format": _CHECKPOINT_FORMAT,
            "count": self.count,
            "head_number": self.head_number,
            "head_hash": self.head_hash,
            "created_at": format_timestamp(self.created_at),
            "key_id": self.key_id,
        }

    @staticmethod
    def _message(body: Mapping[str, Any]) -> bytes:
        signed = {k: v for k, v in body.items() if k != "signature"}
        text = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return f"{_CHECKPOINT_FORMAT}\n{text}".encode()

    @classmethod
    def sign(cls, report: ChainReport, head_number: str | None, key: SigningKey) -> Checkpoint:
        """A checkpoint of an intact chain's head, signed now with `key` (a tampered head is
        refused: signing it would launder the tampering)."""
        if not report.intact:
            raise CheckpointError("the chain is not intact: run `confirmations verify`")
        draft = cls(
            report.count, head_number, report.head_hash, datetime.now(UTC), key.public.key_id, ""
        )
        return replace(draft, signature=key.sign(cls._message(draft._body())))

    def to_json(self) -> str:
        return json.dumps({**self._body(), "signature": self.signature}, ensure_ascii=False)

    @classmethod
    def parse(cls, text: str, key: VerifyKey) -> Checkpoint:
        """The checkpoint in `text`, only if `key` signed it (CheckpointError otherwise)."""
        try:
            data = json.loads(text)
        except ValueError:
            raise CheckpointError("not a polyfleet checkpoint (not JSON)") from None
        if not isinstance(data, dict) or data.get("format") != _CHECKPOINT_FORMAT:
            raise CheckpointError(f"not a polyfleet checkpoint (no format {_CHECKPOINT_FORMAT})")
        try:
            count = data["count"]
            created_at = datetime.fromisoformat(str(data["created_at"]))
            checkpoint = cls(
                count,
                data["head_number"],
                data["head_hash"],
                created_at,
                str(data["key_id"]),
                str(data["signature"]),
            )
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"the checkpoint is incomplete or malformed: {exc}") from None
        if not isinstance(count, int) or count < 0 or created_at.tzinfo is None:
            raise CheckpointError("the checkpoint is malformed: bad count or created_at")
        why = key.check(cls._message(data), checkpoint.signature)
        if why is not None or checkpoint._body() != {
            k: v for k, v in data.items() if k != "signature"
        }:
            raise CheckpointForged(f"the checkpoint's signature is not valid: {why or 'altered'}")
        return checkpoint

    def check(self, rows: Sequence[Mapping[str, Any]]) -> ChainProblem | None:
        """The first record this checkpoint shows deleted or rewritten since it was made."""
        when = format_timestamp(self.created_at)
        if len(rows) < self.count:
            first = len(rows) + 1  # its year is unknown unless it was the head itself
            number = self.head_number if first == self.count else f"RC-????-{first:06d}"
            return ChainProblem(
                first,
                str(number),
                "missing",
                f"the checkpoint of {when} covers {self.count} record(s) up to "
                f"{self.head_number}, the store holds {len(rows)}: records were deleted",
            )
        if self.count == 0:
            return None
        row = rows[self.count - 1]
        if row["hash"] != self.head_hash or row["number"] != self.head_number:
            return ChainProblem(
                self.count,
                str(row["number"]),
                "hash",
                f"the checkpoint of {when} has {self.head_number} with hash {self.head_hash}; "
                f"the store has {row['number']} with {row['hash']}: this record or one before "
                f"it was rewritten",
            )
        return None
