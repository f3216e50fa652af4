"""Confirmation records in the store: append-only, numbered and hash-chained in one transaction.

There is deliberately no update or delete here; the database refuses them too (triggers from
migration 0003 on both backends). Appends are serialised so two writers can never fork the chain:
PostgreSQL takes a transaction-scoped advisory lock, SQLite opens the transaction with
`BEGIN IMMEDIATE` (the write lock up front). The hash and its signature are computed by the
functions given to the store (`controller.confirmations`), which keeps the chain's definition in
one place without the inventory depending on the controller.

Numbering: `RC-<year of confirmed_at, UTC>-<seq, 6 digits>`, where `seq` is one global sequence
(1, 2, 3, ... in chain order, never reset per year), so numbers sort like the chain and never
repeat across years.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from inventory.async_engine import AsyncConnection, AsyncEngine
from inventory.errors import InventoryError
from inventory.identifiers import normalize_mac, normalize_serial
from inventory.models import AwareDatetime, Confirmation, LicenseState, Mac, Serial
from inventory.schema import confirmations, reactivations

Hasher = Callable[[Mapping[str, Any]], str]
"""Computes a record's hash from its fields (all but `hash`, including `prev_hash`)."""
Signer = Callable[[str], str]
"""Signs a record's hash; the result is stored as the record's `signature`."""

MAX_SEQ = 999_999
_CHAIN_LOCK_ID = 0x52434841  # "RCHA": serialises appenders on PostgreSQL


class ConfirmationNotFound(InventoryError, LookupError):
    """No confirmation has that number."""

    def __init__(self, number: str) -> None:
        self.number = number
        super().__init__(f"no confirmation numbered {number!r}")


class ConfirmationDraft(BaseModel):
    """What the workflow knows when a re-activation is confirmed; the store adds the rest."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    reactivation_id: str = Field(min_length=1, max_length=64)
    serial: Serial
    mac: Mac | None = None
    feature: str = Field(min_length=1, max_length=64)
    state_before: LicenseState
    state_after: LicenseState
    key_ref: str = Field(min_length=1, max_length=32)
    driver: str = Field(min_length=1, max_length=64)
    fee: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    contract: str | None = Field(default=None, max_length=64)
    requested_at: AwareDatetime
    confirmed_at: AwareDatetime | None = None
    actor: str = Field(min_length=1, max_length=128)
    fee_once_per_contract: bool = False
    """A per-term fee: charged by the first record under `contract` only; `append` records
    0.00 once another record charged it (decided under the chain lock, so concurrent
    re-activations under one contract never charge the term twice). Not part of the record."""


def expected_number(seq: int, confirmed_at: datetime) -> str:
    """The number a record with this `seq` and `confirmed_at` carries."""
    return f"RC-{confirmed_at.astimezone(UTC).year:04d}-{seq:06d}"


def row_to_confirmation(row: Mapping[str, Any] | sa.RowMapping) -> Confirmation:
    """A Confirmation from a `confirmations` row."""
    return Confirmation.model_validate(
        {name: row[name] for name in Confirmation.model_fields if name in row}
    )


def _charged_query(contract: str) -> sa.Select[Any]:
    """The number of the first confirmation that charged a fee under `contract`."""
    return (
        sa.select(confirmations.c.number)
        .where(confirmations.c.contract == contract, confirmations.c.fee > 0)
        .order_by(confirmations.c.seq)
        .limit(1)
    )


class ConfirmationStore:
    """Append and read confirmations; nothing else (the record is an audit trail)."""

    def __init__(self, engine: AsyncEngine, hasher: Hasher, signer: Signer | None = None) -> None:
        self.engine = engine
        self.hasher = hasher
        self.signer = signer

    async def append(
        self, draft: ConfirmationDraft, *, now: datetime | None = None
    ) -> Confirmation:
        """Number, chain and store one record; the same reactivation_id returns the stored one."""
        async with self.engine.connect() as conn:
            await self._lock(conn)
            try:
                existing = (
                    (
                        await conn.execute(
                            sa.select(confirmations).where(
                                confirmations.c.reactivation_id == draft.reactivation_id
                            )
                        )
                    )
                    .mappings()
                    .first()
                )
                if existing is not None:
                    await conn.rollback()
                    return row_to_confirmation(existing)
                last = (
                    await conn.execute(
                        sa.select(confirmations.c.seq, confirmations.c.hash)
                        .order_by(confirmations.c.seq.desc())
                        .limit(1)
                    )
                ).first()
                fee = draft.fee.quantize(Decimal("0.01"))
                if draft.fee_once_per_contract and draft.contract and fee > 0:
                    charged = (await conn.execute(_charged_query(draft.contract))).scalar()
                    if charged is not None:
                        fee = Decimal("0.00")
                seq = 1 if last is None else last.seq + 1
                if seq > MAX_SEQ:
                    raise InventoryError(
                        f"the confirmation sequence is exhausted ({MAX_SEQ} records)"
                    )
                confirmed_at = (draft.confirmed_at or now or datetime.now(UTC)).astimezone(UTC)
                record: dict[str, Any] = {
                    "number": expected_number(seq, confirmed_at),
                    "serial": draft.serial,
                    "mac": draft.mac,
                    "feature": draft.feature,
                    "state_before": draft.state_before.value,
                    "state_after": draft.state_after.value,
                    "key_ref": draft.key_ref,
                    "driver": draft.driver,
                    "fee": fee,
                    "currency": draft.currency,
                    "contract": draft.contract,
                    "requested_at": draft.requested_at.astimezone(UTC),
                    "confirmed_at": confirmed_at,
                    "actor": draft.actor,
                    "prev_hash": None if last is None else last.hash,
                }
                record["hash"] = self.hasher(record)
                record["signature"] = None if self.signer is None else self.signer(record["hash"])
                await conn.execute(
                    confirmations.insert().values(
                        seq=seq, reactivation_id=draft.reactivation_id, **record
                    )
                )
                await conn.commit()
            except BaseException:
                await conn.rollback()
                raise
        return row_to_confirmation(record)

    async def charged_for_contract(self, contract: str) -> str | None:
        """The number of the first confirmation that charged a fee under `contract`, if any
        (a per-term fee is charged once per contract term)."""
        async with self.engine.connect() as conn:
            number: str | None = (await conn.execute(_charged_query(contract))).scalar()
        return number

    async def _lock(self, conn: AsyncConnection) -> None:
        """Take the chain's write lock for this transaction (see the module docstring)."""
        if conn.dialect.name == "postgresql":
            await conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_CHAIN_LOCK_ID})"))
        else:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")

    async def get(self, number: str) -> Confirmation:
        """The confirmation with that number (ConfirmationNotFound if none)."""
        async with self.engine.connect() as conn:
            row = (
                (
                    await conn.execute(
                        sa.select(confirmations).where(confirmations.c.number == number.upper())
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise ConfirmationNotFound(number)
        return row_to_confirmation(row)

    async def by_reactivation(self, reactivation_id: str) -> Confirmation | None:
        """The confirmation of one re-activation operation, if it was confirmed."""
        async with self.engine.connect() as conn:
            row = (
                (
                    await conn.execute(
                        sa.select(confirmations).where(
                            confirmations.c.reactivation_id == reactivation_id
                        )
                    )
                )
                .mappings()
                .first()
            )
        return None if row is None else row_to_confirmation(row)

    async def list(
        self,
        *,
        serial: str | None = None,
        mac: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> builtins.list[Confirmation]:
        """Confirmations in chain order; with `serial` and/or `mac`, those of records matching
        either (a UC phone's serial is its MAC, so one device ID may be both); with `limit`,
        one page of them."""
        query = sa.select(confirmations).order_by(confirmations.c.seq).offset(offset or None)
        if limit is not None:
            query = query.limit(limit)
        conditions = []
        if serial is not None:
            conditions.append(confirmations.c.serial == normalize_serial(serial))
        if mac is not None:
            conditions.append(confirmations.c.mac == normalize_mac(mac))
        if conditions:
            query = query.where(sa.or_(*conditions))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [row_to_confirmation(row) for row in rows]

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            total = await conn.scalar(sa.select(sa.func.count()).select_from(confirmations))
        return int(total or 0)

    async def rows(self) -> builtins.list[dict[str, Any]]:
        """Every row as stored, in `seq` order, unvalidated (what `verify` must check)."""
        async with self.engine.connect() as conn:
            result = await conn.execute(sa.select(confirmations).order_by(confirmations.c.seq))
            return [dict(row) for row in result.mappings()]

    async def references(self) -> builtins.list[tuple[str, str]]:
        """(operation id, number) of every re-activation that says it was confirmed, so
        `verify` can show records deleted from the end of the chain."""
        query = (
            sa.select(reactivations.c.id, reactivations.c.confirmation)
            .where(reactivations.c.confirmation.is_not(None))
            .order_by(reactivations.c.confirmation)
        )
        async with self.engine.connect() as conn:
            return [(str(row.id), str(row.confirmation)) for row in await conn.execute(query)]
