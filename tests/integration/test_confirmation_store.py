"""Confirmations on both backends: numbering, chaining, idempotency, concurrency, append-only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from controller.confirmations import (
    ConfirmationDraft,
    confirmation_store,
    record_hash,
    record_message,
    verify_chain,
)
from inventory.confirmation_store import ConfirmationNotFound
from inventory.database import DatabaseTarget, _alembic_config, create_engine
from inventory.models import LicenseState
from inventory.schema import confirmations as confirmations_table
from inventory.signing_key import SigningKey
from inventory.store import InventoryStore

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def draft(op: str, **changes: Any) -> ConfirmationDraft:
    data: dict[str, Any] = {
        "reactivation_id": op,
        "serial": "sn-" + op,
        "mac": "00:04:F2:AA:BB:01",
        "feature": "productivity_suite",
        "state_before": "expired",
        "state_after": "active",
        "key_ref": "0123456789ab",
        "driver": "poly-uc",
        "fee": Decimal("195"),
        "currency": "USD",
        "contract": "C-1",
        "requested_at": T0,
        "confirmed_at": T0 + timedelta(seconds=3),
        "actor": "tech",
    }
    data.update(changes)
    return ConfirmationDraft.model_validate(data)


async def test_append_numbers_chains_and_is_idempotent(store: InventoryStore) -> None:
    confirmations = confirmation_store(store.engine)
    first = await confirmations.append(draft("op-1"))
    assert first.number == "RC-2026-000001"
    assert first.prev_hash is None
    assert first.fee == Decimal("195.00")
    assert first.state_before is LicenseState.EXPIRED
    second = await confirmations.append(
        draft("op-2", confirmed_at=datetime(2027, 1, 2, tzinfo=UTC), mac=None, contract=None)
    )
    assert second.number == "RC-2027-000002"  # one global sequence, year of confirmation
    assert second.prev_hash == first.hash

    again = await confirmations.append(draft("op-1", fee=Decimal("1.00")))
    assert again == first  # the stored record, not a second one
    assert await confirmations.get("rc-2026-000001") == first
    assert await confirmations.by_reactivation("op-2") == second
    assert await confirmations.by_reactivation("op-3") is None
    with pytest.raises(ConfirmationNotFound):
        await confirmations.get("RC-2026-000099")
    assert [c.number for c in await confirmations.list(serial="SN-OP-2")] == [second.number]
    assert [c.number for c in await confirmations.list(mac="0004f2aabb01")] == [first.number]

    report = verify_chain(await confirmations.rows())
    assert report.intact
    assert (report.count, report.head_hash) == (2, second.hash)


def test_drafts_refuse_bad_money_and_naive_input() -> None:
    with pytest.raises(ValidationError, match="decimal"):
        draft("x", fee=Decimal("1.005"))
    with pytest.raises(ValidationError, match="greater than or equal"):
        draft("x", fee=Decimal("-1"))
    with pytest.raises(ValidationError, match="currency"):
        draft("x", currency="usd")
    with pytest.raises(ValidationError, match="state_after"):
        draft("x", state_after="shiny")


async def test_concurrent_appenders_never_fork_the_chain(db_target: DatabaseTarget) -> None:
    stores = [await InventoryStore.open(db_target) for _ in range(4)]
    try:

        async def append_many(index: int, store: InventoryStore) -> None:
            confirmations = confirmation_store(store.engine)
            for n in range(5):
                await confirmations.append(draft(f"op-{index}-{n}"))
            await confirmations.append(draft("op-shared"))  # same operation from every writer

        await asyncio.gather(*(append_many(i, s) for i, s in enumerate(stores)))
        rows = await confirmation_store(stores[0].engine).rows()
    finally:
        for opened in stores:
            await opened.close()
    assert [row["seq"] for row in rows] == list(range(1, 22))
    assert len({row["reactivation_id"] for row in rows}) == 21
    report = verify_chain(rows)
    assert report.intact, report.problem
    assert report.count == 21


@pytest.mark.parametrize(
    "statement",
    ["UPDATE confirmations SET fee = 0", "DELETE FROM confirmations"],
)
async def test_database_refuses_updates_and_deletes(store: InventoryStore, statement: str) -> None:
    await confirmation_store(store.engine).append(draft("op-1"))
    with pytest.raises(DBAPIError, match="append-only"):
        async with store.engine.begin() as conn:
            await conn.execute(sa.text(statement))
    assert len(await confirmation_store(store.engine).rows()) == 1


async def test_records_are_signed_with_the_key_made_on_first_use(store: InventoryStore) -> None:
    assert SigningKey.load() is None
    made = await confirmation_store(store.engine).append(draft("op-1"))
    key = SigningKey.load()
    assert key is not None
    assert made.signature is not None
    assert key.public.check(record_message(made.hash), made.signature) is None
    rows = await confirmation_store(store.engine).rows()
    assert rows[0]["signature"] == made.signature
    assert verify_chain(rows, key=key.public).intact
    assert not verify_chain(rows, key=SigningKey.generate().public).intact


async def test_store_has_no_way_to_change_a_record(store: InventoryStore) -> None:
    confirmations = confirmation_store(store.engine)
    public = {name for name in dir(confirmations) if not name.startswith("_")}
    assert not {n for n in public if any(w in n for w in ("update", "delete", "remove", "set"))}


async def _tamper(store: InventoryStore, statement: str) -> None:
    """Change a row behind the triggers' back, as an attacker with database access could."""
    async with store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(
                sa.text("ALTER TABLE confirmations DISABLE TRIGGER confirmations_append_only")
            )
            await conn.execute(sa.text(statement))
            await conn.execute(
                sa.text("ALTER TABLE confirmations ENABLE TRIGGER confirmations_append_only")
            )
        else:
            await conn.execute(sa.text("DROP TRIGGER confirmations_no_update"))
            await conn.execute(sa.text("DROP TRIGGER confirmations_no_delete"))
            await conn.execute(sa.text(statement))


async def test_tampering_behind_the_triggers_is_found(store: InventoryStore) -> None:
    confirmations = confirmation_store(store.engine)
    made = [await confirmations.append(draft(f"op-{n}")) for n in range(4)]
    await _tamper(store, "UPDATE confirmations SET fee = 1.00 WHERE seq = 3")
    assert made[2].number.endswith("000003")
    report = verify_chain(await confirmations.rows())
    assert report.problem is not None
    assert (report.problem.number, report.problem.field) == (made[2].number, "hash")
    assert report.count == 2


async def test_a_deleted_middle_record_is_found(store: InventoryStore) -> None:
    confirmations = confirmation_store(store.engine)
    made = [await confirmations.append(draft(f"op-{n}")) for n in range(3)]
    await _tamper(store, "DELETE FROM confirmations WHERE seq = 2")
    report = verify_chain(await confirmations.rows())
    assert report.problem is not None
    assert report.problem.number == made[2].number
    assert report.problem.field == "seq"


def _migrate_to(connection: sa.Connection, revision: str) -> None:
    from alembic import command

    command.upgrade(_alembic_config(connection), revision)


async def test_records_from_before_signing_survive_the_upgrade_and_verify_when_accepted(
    db_target: DatabaseTarget,
) -> None:
    engine = create_engine(db_target)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_migrate_to, "0003")
        record = {**draft("op-old").model_dump(exclude={"fee_once_per_contract"}), "seq": 1}
        record.update(number="RC-2026-000001", prev_hash=None, fee=Decimal("195.00"))
        record["hash"] = record_hash(record)
        async with engine.begin() as conn:  # as 0003's store wrote it: no signature column
            await conn.execute(confirmations_table.insert().values(**record))
    finally:
        await engine.dispose()
    async with await InventoryStore.open(db_target) as store:  # upgrades to HEAD
        confirmations = confirmation_store(store.engine)
        await confirmations.append(draft("op-new"))
        rows = await confirmations.rows()
        key = SigningKey.load()
        assert key is not None
        assert [row["signature"] is None for row in rows] == [True, False]
        problem = verify_chain(rows, key=key.public).problem
        assert problem is not None
        assert (problem.number, problem.field) == ("RC-2026-000001", "signature")
        assert verify_chain(rows, key=key.public, unsigned_until=1).intact
        guarded = {  # 0004's guards are in place
            "postgresql": "TRUNCATE confirmations",
            "sqlite": "REPLACE INTO confirmations SELECT * FROM confirmations WHERE seq = 1",
        }[db_target.dialect]
        with pytest.raises(DBAPIError, match="append-only"):
            async with store.engine.begin() as conn:
                await conn.execute(sa.text(guarded))
