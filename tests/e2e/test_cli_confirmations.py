"""`polyfleet confirmations …`: listings, show, export (json, csv) and verify's exit codes."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from controller.confirmations import (
    RECORD_FIELDS,
    ConfirmationDraft,
    confirmation_store,
    record_hash,
)
from inventory.confirmation_store import ConfirmationStore
from inventory.database import DatabaseTarget
from inventory.models import LicenseState
from inventory.store import InventoryStore
from tests.e2e.cli import polyfleet
from tests.integration.test_confirmation_store import draft

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def seed(db_target: DatabaseTarget, count: int = 3, first: int = 0) -> list[str]:
    """`count` confirmations of operations op-FIRST.. for devices SN-FIRST.., SN-0 with a MAC;
    returns their numbers."""

    async def go() -> list[str]:
        async with await InventoryStore.open(db_target) as store:
            confirmations = confirmation_store(store.engine)
            numbers = []
            for n in range(first, first + count):
                made = await confirmations.append(
                    ConfirmationDraft(
                        reactivation_id=f"op-{n}",
                        serial=f"SN-{n}",
                        mac="0004f2aabb01" if n == 0 else None,
                        feature="productivity_suite",
                        state_before=LicenseState.EXPIRED,
                        state_after=LicenseState.ACTIVE,
                        key_ref="0123456789ab",
                        driver="poly-uc",
                        fee=Decimal("195.00"),
                        contract="C-1" if n else None,
                        requested_at=T0,
                        confirmed_at=T0 + timedelta(minutes=n),
                        actor="tech",
                    )
                )
                numbers.append(made.number)
            return numbers

    return asyncio.run(go())


def tamper(db_target: DatabaseTarget, number: str) -> None:
    """Change a fee behind the append-only triggers (as someone with database access could)."""

    async def go() -> None:
        async with await InventoryStore.open(db_target) as store, store.engine.begin() as conn:
            update = sa.text("UPDATE confirmations SET fee = 0 WHERE number = :n")
            if conn.dialect.name == "postgresql":
                guard = "confirmations_append_only"
                await conn.execute(sa.text(f"ALTER TABLE confirmations DISABLE TRIGGER {guard}"))
                await conn.execute(update, {"n": number})
                await conn.execute(sa.text(f"ALTER TABLE confirmations ENABLE TRIGGER {guard}"))
            else:
                await conn.execute(sa.text("DROP TRIGGER confirmations_no_update"))
                await conn.execute(update, {"n": number})

    asyncio.run(go())


def test_list_show_and_filter(
    db_url: str, db_target: DatabaseTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # a wide terminal: the table's cells are not elided
    numbers = seed(db_target)
    listed = polyfleet(db_url, "confirmations", "list", "-o", "json")
    assert listed.code == 0, listed.stderr
    records = listed.json()
    assert [r["number"] for r in records] == numbers == [
        "RC-2026-000001", "RC-2026-000002", "RC-2026-000003",
    ]  # fmt: skip
    assert list(records[0]) == list(RECORD_FIELDS)
    assert records[0]["fee"] == "195.00"
    assert records[0]["confirmed_at"] == "2026-11-23T10:00:00.000000Z"
    assert records[1]["prev_hash"] == records[0]["hash"]

    by_mac = polyfleet(
        db_url, "confirmations", "list", "--serial", "00-04-F2-AA-BB-01", "-o", "json"
    )
    assert [r["number"] for r in by_mac.json()] == [numbers[0]]
    by_serial = polyfleet(db_url, "confirmations", "list", "--serial", "sn-2", "-o", "csv")
    lines = by_serial.stdout.splitlines()
    assert lines[0] == ",".join(RECORD_FIELDS)
    assert len(lines) == 2
    assert lines[1].startswith(numbers[2])
    table = polyfleet(db_url, "confirmations", "list")
    assert "RC-2026-000003" in table.stdout
    assert "00:04:f2:aa:bb:01" in table.stdout

    shown = polyfleet(db_url, "confirmations", "show", "rc-2026-000002", "-o", "json")
    assert shown.code == 0
    assert shown.json() == [records[1]]
    assert "RC-2026-000002" in polyfleet(db_url, "confirmations", "show", numbers[1]).stdout
    missing = polyfleet(db_url, "confirmations", "show", "RC-2026-000099")
    assert missing.code == 1
    assert "no confirmation numbered" in missing.stderr
    assert polyfleet(db_url, "confirmations", "show", "nonsense").code == 1


def test_export_json_and_csv_atomically_and_recomputable(
    db_url: str, db_target: DatabaseTarget, tmp_path: Path
) -> None:
    seed(db_target)
    out = tmp_path / "confirmations.json"
    result = polyfleet(db_url, "confirmations", "export", str(out), "--format", "json")
    assert result.code == 0, result.stderr
    assert "exported 3 confirmation(s)" in result.stderr
    exported = json.loads(out.read_text(encoding="utf-8"))
    assert [list(r) for r in exported] == [list(RECORD_FIELDS)] * 3
    assert not list(tmp_path.glob(".*.tmp"))
    prev = None
    for record in exported:  # an auditor needs nothing but the export to check the chain
        body = {k: v for k, v in record.items() if k not in ("hash", "signature")}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(canonical.encode()).hexdigest() == record["hash"]
        assert record["prev_hash"] == prev
        prev = record["hash"]

    to_stdout = polyfleet(db_url, "confirmations", "export", "--format", "csv")
    assert to_stdout.code == 0
    rows = list(csv.DictReader(io.StringIO(to_stdout.stdout)))
    assert [r["hash"] for r in rows] == [r["hash"] for r in exported]
    assert rows[0]["contract"] == ""
    assert polyfleet(db_url, "confirmations", "export").json() == exported

    nowhere = polyfleet(db_url, "confirmations", "export", str(tmp_path / "no" / "x.json"))
    assert nowhere.code == 1
    assert "does not exist" in nowhere.stderr


def test_verify_intact_then_tampered(db_url: str, db_target: DatabaseTarget) -> None:
    assert polyfleet(db_url, "db", "upgrade").code == 0  # `verify` only reads: it creates nothing
    empty = polyfleet(db_url, "confirmations", "verify")
    assert empty.code == 0
    assert "0 record(s)" in empty.stdout
    numbers = seed(db_target, 4)
    intact = polyfleet(db_url, "confirmations", "verify")
    assert intact.code == 0, intact.stderr
    head = polyfleet(db_url, "confirmations", "list", "-o", "json").json()[-1]["hash"]
    assert f"intact: 4 record(s), head hash {head}" in intact.stdout

    tamper(db_target, numbers[1])
    broken = polyfleet(db_url, "confirmations", "verify")
    assert broken.code == 1
    assert f"confirmation {numbers[1]} (seq 2), hash:" in broken.stderr
    as_json = polyfleet(db_url, "confirmations", "verify", "-o", "json")
    assert as_json.code == 1
    report = as_json.json()
    assert report["intact"] is False
    assert report["problem"]["number"] == numbers[1]
    assert report["problem"]["field"] == "hash"
    assert report["count"] == 1


def test_records_from_before_signing_verify_only_when_accepted(
    db_url: str, db_target: DatabaseTarget
) -> None:
    async def write_unsigned() -> None:  # as the store wrote them before revision 0004
        async with await InventoryStore.open(db_target) as store:
            unsigned = ConfirmationStore(store.engine, record_hash)
            for n in range(2):
                await unsigned.append(draft(f"op-{n}"))

    asyncio.run(write_unsigned())
    no_key = polyfleet(db_url, "confirmations", "verify")
    assert no_key.code == 2
    assert "no signing key" in no_key.stderr
    accepted = polyfleet(db_url, "confirmations", "verify", "--unsigned-until", "RC-2026-000002")
    assert accepted.code == 0, accepted.stderr
    seed(db_target, 1, first=2)  # the first signed record: the key is made now
    unsigned = polyfleet(db_url, "confirmations", "verify")
    assert unsigned.code == 1
    assert "confirmation RC-2026-000001 (seq 1), signature: the record is not signed" in (
        unsigned.stderr
    )
    too_few = polyfleet(db_url, "confirmations", "verify", "--unsigned-until", "RC-2026-000001")
    assert too_few.code == 1
    assert "RC-2026-000002 (seq 2), signature" in too_few.stderr
    accepted = polyfleet(db_url, "confirmations", "verify", "--unsigned-until", "RC-2026-000002")
    assert accepted.code == 0, accepted.stderr
    assert "intact: 3 record(s)" in accepted.stdout
