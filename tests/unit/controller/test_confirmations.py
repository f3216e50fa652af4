"""The confirmation hash chain, pure: canonical JSON, hashes, links and what verify names; record
signatures, the cross-check against operations and signed checkpoints."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from controller.confirmations import (
    CONFIRMATION_FIELDS,
    ChainReport,
    Checkpoint,
    CheckpointError,
    CheckpointForged,
    canonical_json,
    canonical_record,
    cross_check,
    format_fee,
    format_timestamp,
    record_hash,
    record_message,
    verify_chain,
)
from inventory.confirmation_store import expected_number
from inventory.signing_key import SigningKey

T0 = datetime(2026, 11, 23, 9, 30, 0, 123456, tzinfo=UTC)


def _record(seq: int, prev_hash: str | None, **changes: Any) -> dict[str, Any]:
    confirmed_at = T0 + timedelta(minutes=seq)
    record: dict[str, Any] = {
        "seq": seq,
        "number": expected_number(seq, confirmed_at),
        "serial": f"SN{seq:04d}",
        "mac": f"0004f2aabb{seq:02x}",
        "feature": "productivity_suite",
        "state_before": "expired",
        "state_after": "active",
        "key_ref": "0123456789ab",
        "driver": "poly-uc",
        "fee": Decimal("195.00"),
        "currency": "USD",
        "contract": "C-1",
        "requested_at": confirmed_at - timedelta(seconds=5),
        "confirmed_at": confirmed_at,
        "actor": "tech@example.com",
        "prev_hash": prev_hash,
    }
    record.update(changes)
    record["hash"] = record_hash(record)
    return record


def _chain(length: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    prev: str | None = None
    for seq in range(1, length + 1):
        records.append(_record(seq, prev))
        prev = records[-1]["hash"]
    return records


def test_canonical_json_is_sorted_compact_utf8_with_fixed_spellings() -> None:
    record = _record(1, None, actor="Zoë", mac=None, contract=None)
    text = canonical_json(record).decode("utf-8")
    parsed = json.loads(text)
    assert list(parsed) == sorted(parsed)
    assert set(parsed) == set(CONFIRMATION_FIELDS) - {"hash"}
    assert " " not in text.replace("Zoë", "")
    assert '"actor":"Zoë"' in text  # UTF-8, not \u escapes
    assert parsed["fee"] == "195.00"
    assert parsed["confirmed_at"] == "2026-11-23T09:31:00.123456Z"
    assert parsed["prev_hash"] is None
    assert parsed["mac"] is None
    assert "seq" not in parsed
    assert record_hash(record) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_spellings_do_not_depend_on_the_input_form() -> None:
    plus_two = timezone(timedelta(hours=2))
    local = T0.astimezone(plus_two)
    assert format_timestamp(local) == format_timestamp(T0) == "2026-11-23T09:30:00.123456Z"
    assert format_timestamp(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000000Z"
    assert format_fee(Decimal("195")) == format_fee("195.0") == "195.00"
    a = _record(1, None)
    b = _record(1, None, fee=Decimal("195"), confirmed_at=a["confirmed_at"].astimezone(plus_two))
    assert a["hash"] == b["hash"]
    with pytest.raises(ValueError, match="timezone"):
        format_timestamp(datetime(2026, 1, 1))


def test_prev_hash_is_part_of_the_hash() -> None:
    assert _record(2, "a" * 64)["hash"] != _record(2, "b" * 64)["hash"]


def test_intact_chain_reports_count_and_head() -> None:
    records = _chain(5)
    report = verify_chain(records)
    assert report.intact
    assert report.count == 5
    assert report.head_hash == records[-1]["hash"]
    empty = verify_chain([])
    assert empty.intact
    assert empty.count == 0
    assert empty.head_hash is None


def test_a_changed_field_names_that_record() -> None:
    records = _chain(5)
    records[2]["fee"] = Decimal("0.00")
    report = verify_chain(records)
    assert not report.intact
    assert report.problem is not None
    assert report.problem.number == records[2]["number"]
    assert report.problem.field == "hash"
    assert report.count == 2


def test_a_rehashed_record_breaks_the_next_link() -> None:
    records = _chain(4)
    records[1]["fee"] = Decimal("1.00")
    records[1]["hash"] = record_hash(records[1])
    report = verify_chain(records)
    assert report.problem is not None
    assert report.problem.number == records[2]["number"]
    assert report.problem.field == "prev_hash"


def test_missing_record_and_wrong_number_and_first_link() -> None:
    records = _chain(4)
    del records[1]
    problem = verify_chain(records).problem
    assert problem is not None
    assert problem.field == "seq"
    assert problem.number == records[1]["number"]

    renumbered = _chain(2)
    renumbered[1]["number"] = "RC-2026-000009"
    problem = verify_chain(renumbered).problem
    assert problem is not None
    assert (problem.field, problem.number) == ("number", "RC-2026-000009")

    first = _record(1, "c" * 64)
    problem = verify_chain([first]).problem
    assert problem is not None
    assert problem.field == "prev_hash"


def test_canonical_record_keeps_product_keys_in_order() -> None:
    record = _record(1, None)
    exported = canonical_record(record)
    assert tuple(exported) == CONFIRMATION_FIELDS
    assert exported["hash"] == record["hash"]
    # an auditor can recompute the hash from the exported values alone
    recomputed = hashlib.sha256(
        json.dumps(
            {k: v for k, v in exported.items() if k != "hash"},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
    ).hexdigest()
    assert recomputed == record["hash"]


def test_numbers_use_the_year_of_confirmation_and_six_digits() -> None:
    assert expected_number(123, datetime(2026, 12, 31, 23, 0, tzinfo=UTC)) == "RC-2026-000123"
    new_year = datetime(2027, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert expected_number(124, new_year) == "RC-2026-000124"  # UTC year


# -- signatures, the cross-check and checkpoints -------------------------------------------------


def _signed_chain(length: int, key: SigningKey | None) -> list[dict[str, Any]]:
    """The chain tests' `length` linked records, of operations op-1…, signed with `key` unless
    it is None."""
    records = _chain(length)
    for seq, record in enumerate(records, start=1):
        record["reactivation_id"] = f"op-{seq}"
        record["signature"] = None if key is None else key.sign(record_message(record["hash"]))
    return records


def test_verify_names_the_first_unsigned_or_foreign_record() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    records = _signed_chain(4, key)
    assert verify_chain(records, key=key.public).intact
    records[2]["signature"] = other.sign(record_message(records[2]["hash"]))
    problem = verify_chain(records, key=key.public).problem
    assert problem is not None
    assert (problem.number, problem.field) == (records[2]["number"], "signature")
    assert verify_chain(records).intact  # without a key only the hashes are checked

    legacy = _signed_chain(3, None)
    problem = verify_chain(legacy, key=key.public).problem
    assert problem is not None
    assert (problem.seq, problem.field) == (1, "signature")
    assert verify_chain(legacy, key=key.public, unsigned_until=3).intact


def test_cross_check_names_the_first_missing_or_replaced_record() -> None:
    records = _signed_chain(5, None)
    references = [(f"op-{n}", r["number"]) for n, r in enumerate(records, start=1)]
    assert cross_check(records, references) is None
    problem = cross_check(records[:3], references)
    assert problem is not None
    assert (problem.number, problem.field) == (records[3]["number"], "missing")
    problem = cross_check([], references)
    assert problem is not None
    assert problem.number == records[0]["number"]
    swapped = [*records[:4], {**records[4], "reactivation_id": "op-forged"}]
    problem = cross_check(swapped, references)
    assert problem is not None
    assert (problem.number, problem.field) == (records[4]["number"], "reactivation_id")


def _checkpoint(records: list[dict[str, Any]], key: SigningKey) -> Checkpoint:
    report = verify_chain(records, key=key.public)
    return Checkpoint.sign(report, records[-1]["number"] if records else None, key)


def test_checkpoint_round_trips_and_finds_deleted_or_rewritten_records() -> None:
    key = SigningKey.generate()
    records = _signed_chain(5, key)
    made = _checkpoint(records, key)
    text = made.to_json()
    assert "\n" not in text
    read = Checkpoint.parse(text, key.public)
    assert read == made
    assert read.check(records) is None
    assert read.check([*records, *_signed_chain(6, key)[5:]]) is None  # appended since: fine

    gone = read.check(records[:4])
    assert gone is not None
    assert (gone.number, gone.field) == (records[4]["number"], "missing")
    all_gone = read.check([])
    assert all_gone is not None
    assert (all_gone.seq, all_gone.field) == (1, "missing")

    rewritten = _signed_chain(5, key)
    rewritten[4] = {**rewritten[4], "hash": "0" * 64}
    changed = read.check(rewritten)
    assert changed is not None
    assert (changed.number, changed.field) == (records[4]["number"], "hash")


def test_a_forged_or_foreign_checkpoint_is_rejected() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    records = _signed_chain(5, key)
    text = _checkpoint(records, key).to_json()
    shortened = json.dumps({**json.loads(text), "count": 4})
    with pytest.raises(CheckpointForged, match="not valid"):
        Checkpoint.parse(shortened, key.public)
    with pytest.raises(CheckpointForged, match=f"signed by key {other.public.key_id}"):
        Checkpoint.parse(_checkpoint(_signed_chain(5, other), other).to_json(), key.public)
    with pytest.raises(CheckpointError, match="not JSON"):
        Checkpoint.parse("count=5", key.public)
    with pytest.raises(CheckpointError, match="malformed"):
        Checkpoint.parse(json.dumps({**json.loads(text), "count": "5"}), key.public)
    tampered = ChainReport(2, "a" * 64, verify_chain([{"seq": 9}]).problem)
    with pytest.raises(CheckpointError, match="not intact"):
        Checkpoint.sign(tampered, None, key)
