"""Issue 9's attacks on the audit record, each reproduced, and `confirmations verify` catching it.

Someone with database access shortens or rewrites the record: TRUNCATE, REPLACE, deleting the
newest records or inserting one in the middle with every later hash recomputed, with the
append-only triggers bypassed (PostgreSQL: `session_replication_role = replica` as superuser;
SQLite: drop the triggers, tamper, recreate them). What the database refuses is shown refused;
what gets past it, `verify` names (exit 1), through signatures, the cross-check against the
re-activation operations, or a checkpoint taken before.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from controller.confirmations import (
    record_hash,
    record_message,
    verify_chain,
)
from inventory.confirmation_store import expected_number
from inventory.database import DatabaseTarget
from inventory.schema import confirmations, reactivations
from inventory.signing_key import SigningKey
from inventory.store import InventoryStore
from tests.e2e.cli import Outcome, polyfleet
from tests.e2e.test_cli_confirmations import T0, seed

Rows = list[dict[str, Any]]


def seed_confirmed(db_target: DatabaseTarget, count: int = 5, first: int = 0) -> list[str]:
    """`seed`'s records, each referenced by its re-activation operation (op-N, confirmed)."""
    numbers = seed(db_target, count, first)
    operations = [
        {
            "id": f"op-{n}",
            "serial": f"SN-{n}",
            "feature": "productivity_suite",
            "state": "confirmed",
            "actor": "tech",
            "requested_at": T0,
            "updated_at": T0,
            "confirmation": number,
        }
        for n, number in enumerate(numbers, start=first)
    ]

    async def go() -> None:
        async with await InventoryStore.open(db_target) as store, store.engine.begin() as conn:
            await conn.execute(reactivations.insert(), operations)

    asyncio.run(go())
    return numbers


def sql(db_target: DatabaseTarget, statement: str) -> None:
    """Run one statement as the store's (superuser) connection would."""

    async def go() -> None:
        async with await InventoryStore.open(db_target) as store, store.engine.begin() as conn:
            await conn.execute(sa.text(statement))

    asyncio.run(go())


@asynccontextmanager
async def guards_off(db_target: DatabaseTarget) -> AsyncIterator[AsyncConnection]:
    """A transaction in which the append-only triggers do not fire."""
    async with await InventoryStore.open(db_target) as store, store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            yield conn
            return
        triggers = (
            await conn.execute(
                sa.text(
                    "SELECT name, sql FROM sqlite_master "
                    "WHERE type = 'trigger' AND tbl_name = 'confirmations'"
                )
            )
        ).all()
        assert len(triggers) == 3
        for name, _ in triggers:
            await conn.execute(sa.text(f"DROP TRIGGER {name}"))
        yield conn
        for _, sql in triggers:
            await conn.execute(sa.text(sql))


def tamper(db_target: DatabaseTarget, change: Callable[[Rows], Rows]) -> None:
    """Replace the whole record, behind the triggers, with `change(current rows)`."""

    async def go() -> None:
        async with guards_off(db_target) as conn:
            rows = [
                dict(row)
                for row in (
                    await conn.execute(sa.select(confirmations).order_by(confirmations.c.seq))
                ).mappings()
            ]
            await conn.execute(confirmations.delete())
            for row in change(rows):
                await conn.execute(confirmations.insert().values(**row))

    asyncio.run(go())


def rechain(rows: Rows, start: int, signer: SigningKey | None = None) -> Rows:
    """Renumber and rehash rows from index `start` on, as an attacker would; re-signed with
    `signer` if given, else keeping each row's old signature."""
    prev = rows[start - 1]["hash"] if start else None
    for seq, row in enumerate(rows[start:], start=start + 1):
        row.update(seq=seq, number=expected_number(seq, row["confirmed_at"]), prev_hash=prev)
        row["hash"] = prev = record_hash(row)
        if signer is not None:
            row["signature"] = signer.sign(record_message(prev))
    return rows


def verify(db_url: str, *args: str) -> Outcome:
    return polyfleet(db_url, "confirmations", "verify", *args)


def assert_tampered(result: Outcome, number: str, seq: int, field: str) -> None:
    """Exit 1, one line naming the first bad record, and no traceback."""
    assert result.code == 1, result.stdout + result.stderr
    assert f"TAMPERED: confirmation {number} (seq {seq}), {field}:" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def take_checkpoint(db_url: str, tmp_path: Path) -> Path:
    made = polyfleet(db_url, "confirmations", "checkpoint")
    assert made.code == 0, made.stderr
    path = tmp_path / "checkpoint.json"
    path.write_text(made.stdout, encoding="utf-8")
    return path


def test_truncate_behind_the_triggers_is_found(
    db_url: str, db_target: DatabaseTarget, tmp_path: Path
) -> None:
    numbers = seed_confirmed(db_target)
    checkpoint = take_checkpoint(db_url, tmp_path)

    async def truncate() -> None:
        async with guards_off(db_target) as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(sa.text("TRUNCATE confirmations"))
            else:  # SQLite has no TRUNCATE; its "truncate optimisation" is an unfiltered DELETE
                await conn.execute(sa.text("DELETE FROM confirmations"))

    asyncio.run(truncate())
    assert polyfleet(db_url, "confirmations", "list", "-o", "json").json() == []
    assert_tampered(verify(db_url), numbers[0], 1, "missing")

    sql(db_target, "DELETE FROM reactivations")  # the attacker covers the operations' tracks
    assert verify(db_url).code == 0  # nothing in the store contradicts an empty record…
    found = verify(db_url, "--checkpoint", str(checkpoint))  # …but the checkpoint kept elsewhere
    assert_tampered(found, "RC-????-000001", 1, "missing")
    assert "covers 5 record(s) up to RC-2026-000005, the store holds 0" in found.stderr


def test_deleting_the_newest_record_behind_the_triggers_is_found(
    db_url: str, db_target: DatabaseTarget, tmp_path: Path
) -> None:
    numbers = seed_confirmed(db_target)
    checkpoint = take_checkpoint(db_url, tmp_path)
    tamper(db_target, lambda rows: rows[:-1])
    listed = polyfleet(db_url, "confirmations", "list", "-o", "json").json()
    assert [r["number"] for r in listed] == numbers[:-1]
    assert_tampered(verify(db_url), numbers[-1], 5, "missing")
    assert_tampered(verify(db_url, "--checkpoint", str(checkpoint)), numbers[-1], 5, "missing")


def test_a_middle_insert_with_recomputed_hashes_is_found(
    db_url: str, db_target: DatabaseTarget
) -> None:
    numbers = seed_confirmed(db_target)
    forged_rows: Rows = []

    def insert_third(rows: Rows) -> Rows:
        forged = {**rows[2], "reactivation_id": "op-forged", "serial": "SN-X", "fee": 0}
        forged_rows[:] = rechain([*rows[:2], forged, *rows[2:]], 2)
        return forged_rows

    tamper(db_target, insert_third)
    assert verify_chain(forged_rows).intact  # hashes and links alone no longer show it
    assert len(polyfleet(db_url, "confirmations", "list", "-o", "json").json()) == 6
    assert_tampered(verify(db_url), numbers[2], 3, "signature")


def test_a_record_signed_with_another_key_is_found(
    db_url: str, db_target: DatabaseTarget, tmp_path: Path
) -> None:
    numbers = seed_confirmed(db_target)
    attacker = SigningKey.generate()

    def rewrite_second(rows: Rows) -> Rows:
        rows[1]["fee"] = Decimal("0.00")
        return rechain(rows, 1, attacker)

    tamper(db_target, rewrite_second)
    found = verify(db_url)
    assert_tampered(found, numbers[1], 2, "signature")
    assert f"signed by key {attacker.public.key_id}" in found.stderr

    # an auditor who trusts the attacker's key is told so by the exported public key
    exported = polyfleet(db_url, "confirmations", "public-key")
    assert exported.code == 0
    assert "PRIVATE" not in exported.stdout
    public = tmp_path / "polyfleet.pub"
    public.write_text(exported.stdout, encoding="utf-8")
    assert_tampered(verify(db_url, "--public-key", str(public)), numbers[1], 2, "signature")
    foreign = tmp_path / "attacker.pub"
    foreign.write_text(attacker.public.pem(), encoding="utf-8")
    assert_tampered(verify(db_url, "--public-key", str(foreign)), numbers[0], 1, "signature")


# Statements that would rewrite or empty the record, per backend, with the refusal each gets.
_UPSERT = (
    "INSERT INTO confirmations SELECT * FROM confirmations WHERE seq = 2 "
    "ON CONFLICT (seq) DO UPDATE SET fee = 0"
)
REFUSED_STATEMENTS = {
    "postgresql": [
        ("TRUNCATE confirmations", "TRUNCATE refused"),
        (_UPSERT, "append-only"),
    ],
    "sqlite": [
        ("REPLACE INTO confirmations SELECT * FROM confirmations WHERE seq = 2", "REPLACE refused"),
        (
            "INSERT OR REPLACE INTO confirmations SELECT * FROM confirmations WHERE seq = 2",
            "REPLACE refused",
        ),
        (_UPSERT, "append-only"),
    ],
}


def test_truncate_replace_and_upsert_are_refused(db_url: str, db_target: DatabaseTarget) -> None:
    seed(db_target, 3)
    for statement, refusal in REFUSED_STATEMENTS[db_target.dialect]:
        with pytest.raises(DBAPIError, match=refusal):
            sql(db_target, statement)
    intact = verify(db_url)
    assert intact.code == 0, intact.stderr
    assert "intact: 3 record(s)" in intact.stdout


def test_checkpoint_then_verify_and_a_forged_checkpoint(
    db_url: str, db_target: DatabaseTarget, tmp_path: Path
) -> None:
    seed_confirmed(db_target, 2)
    checkpoint = take_checkpoint(db_url, tmp_path)
    seed_confirmed(db_target, 1, first=2)  # records appended since the checkpoint are no tampering
    ok = verify(db_url, "--checkpoint", str(checkpoint))
    assert ok.code == 0, ok.stderr
    assert "matches the checkpoint of 2 record(s)" in ok.stdout

    forged = tmp_path / "forged.json"
    forged.write_text(checkpoint.read_text().replace('"count": 2', '"count": 1'))
    refused = verify(db_url, "--checkpoint", str(forged))
    assert refused.code == 1
    assert "signature is not valid" in refused.stderr
    garbage = tmp_path / "garbage.json"
    garbage.write_text("hello")
    unusable = verify(db_url, "--checkpoint", str(garbage))
    assert unusable.code == 2
    assert "not a polyfleet checkpoint" in unusable.stderr
    assert verify(db_url, "--checkpoint", str(tmp_path / "none.json")).code == 2


def test_a_tampered_chain_gets_no_checkpoint(db_url: str, db_target: DatabaseTarget) -> None:
    seed_confirmed(db_target, 3)
    assert polyfleet(db_url, "confirmations", "checkpoint").code == 0
    tamper(db_target, lambda rows: rows[:-1])
    refused = polyfleet(db_url, "confirmations", "checkpoint")
    assert refused.code == 1
    assert refused.stdout == ""
    assert "the chain is not intact" in refused.stderr


def test_verify_without_any_key_says_how_to_check(
    db_url: str, db_target: DatabaseTarget, tmp_path: Path
) -> None:
    seed(db_target, 1)
    exported = polyfleet(db_url, "confirmations", "public-key").stdout
    (tmp_path / "polyfleet.pub").write_text(exported)
    for key_file in tmp_path.glob("confirmations-signing.key"):
        key_file.unlink()
    missing = verify(db_url)
    assert missing.code == 2
    assert "--public-key" in missing.stderr
    assert verify(db_url, "--public-key", str(tmp_path / "polyfleet.pub")).code == 0


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_an_export_verifies_on_its_own_and_an_edit_to_it_is_found(
    db_url: str, db_target: DatabaseTarget, tmp_path: Path, fmt: str
) -> None:
    """An auditor checks a copy without the database; CSV cells neutralised against formulas
    (an actor of `=HYPERLINK(…)`) still verify, because hashes are of the stored values."""
    numbers = seed_confirmed(db_target, 3)
    formula = '=HYPERLINK("http://evil.example","x")'

    def formula_actor(rows: Rows) -> Rows:  # written so through the product, it would hash so
        rows[1]["actor"] = formula
        return rechain(rows, 1, SigningKey.load_or_create())

    tamper(db_target, formula_actor)
    assert verify(db_url).code == 0
    export = tmp_path / f"record.{fmt}"
    assert polyfleet(db_url, "confirmations", "export", str(export), "--format", fmt).code == 0
    if fmt == "csv":
        assert "'=HYPERLINK" in export.read_text(encoding="utf-8")  # neutralised in the file
    intact = verify(db_url, "--export", str(export))
    assert intact.code == 0, intact.stderr
    assert "intact: 3 record(s)" in intact.stdout

    edited = export.read_text(encoding="utf-8").replace("195.00", "0.00", 1)
    assert edited != export.read_text(encoding="utf-8")
    export.write_text(edited, encoding="utf-8")
    assert_tampered(verify(db_url, "--export", str(export)), numbers[0], 1, "hash")
