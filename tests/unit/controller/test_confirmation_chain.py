"""The confirmation hash chain, pure: canonical JSON, hashes, links and what verify names."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from controller.confirmations import (
    CONFIRMATION_FIELDS,
    canonical_json,
    canonical_record,
    format_fee,
    format_timestamp,
    record_hash,
    verify_chain,
)
from inventory.confirmation_store import expected_number

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
