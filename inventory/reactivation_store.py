"""Re-activation operations as a persisted state machine (one row per operation + its events).

Every transition is committed before the next side effect, and each one is guarded by the state
it leaves (`WHERE state = :from`), so two processes can never both advance the same operation.
While an operation is unfinished its `open_key` (`serial|feature`) is set, and that column is
unique: there is at most one unfinished operation per device feature, and a rerun resumes it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from inventory.errors import InventoryError
from inventory.schema import reactivation_events, reactivations


class OpState(StrEnum):
    """States of a re-activation (ARCHITECTURE.md), in the order they are reached."""

    REQUESTED = "requested"
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"
    QUOTED = "quoted"
    APPROVED = "approved"
    KEY_OBTAINED = "key_obtained"
    APPLIED = "applied"
    VERIFIED = "verified"
    CONFIRMED = "confirmed"
    FAILED = "failed"


FINISHED = frozenset({OpState.INELIGIBLE, OpState.CONFIRMED, OpState.FAILED})

ALLOWED: dict[OpState, frozenset[OpState]] = {
    OpState.REQUESTED: frozenset({OpState.ELIGIBLE, OpState.INELIGIBLE, OpState.FAILED}),
    OpState.ELIGIBLE: frozenset({OpState.QUOTED, OpState.FAILED}),
    OpState.QUOTED: frozenset({OpState.APPROVED, OpState.FAILED}),
    OpState.APPROVED: frozenset({OpState.KEY_OBTAINED, OpState.FAILED}),
    OpState.KEY_OBTAINED: frozenset({OpState.APPLIED, OpState.FAILED}),
    OpState.APPLIED: frozenset({OpState.VERIFIED, OpState.FAILED}),
    OpState.VERIFIED: frozenset({OpState.CONFIRMED, OpState.FAILED}),
}


class TransitionRefused(InventoryError):
    """The operation is not in the state the transition starts from (another run moved it)."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One re-activation as stored."""

    id: str
    serial: str
    feature: str
    state: OpState
    actor: str
    requested_at: datetime
    updated_at: datetime
    reason: str | None = None
    state_before: str | None = None
    state_after: str | None = None
    driver: str | None = None
    fee: Decimal | None = None
    currency: str | None = None
    contract: str | None = None
    key_id: int | None = None
    key_ref: str | None = None
    confirmation: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


_FIELDS = (
    "reason",
    "state_before",
    "state_after",
    "driver",
    "fee",
    "currency",
    "contract",
    "key_id",
    "key_ref",
    "confirmation",
)


def _operation(row: sa.RowMapping) -> Operation:
    return Operation(
        id=row["id"],
        serial=row["serial"],
        feature=row["feature"],
        state=OpState(row["state"]),
        actor=row["actor"],
        requested_at=row["requested_at"],
        updated_at=row["updated_at"],
        **{name: row[name] for name in _FIELDS},
    )


def open_key(serial: str, feature: str) -> str:
    return f"{serial}|{feature}"


class OperationStore:
    """Create, resume and advance re-activation operations."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def open(self, serial: str, feature: str, actor: str) -> tuple[Operation, bool]:
        """The unfinished operation for serial+feature, or a new one: (operation, created)."""
        existing = await self.unfinished(serial, feature)
        if existing is not None:
            return existing, False
        now = datetime.now(UTC)
        op_id = f"RA-{now:%Y%m%d}-{uuid.uuid4().hex[:12]}"
        row = {
            "id": op_id,
            "serial": serial,
            "feature": feature,
            "state": OpState.REQUESTED.value,
            "actor": actor,
            "requested_at": now,
            "updated_at": now,
            "open_key": open_key(serial, feature),
        }
        try:
            async with self.engine.begin() as conn:
                await conn.execute(reactivations.insert().values(row))
                await conn.execute(
                    reactivation_events.insert().values(
                        reactivation_id=op_id, state=OpState.REQUESTED.value, at=now, detail=None
                    )
                )
        except IntegrityError:  # another run opened it between our read and write
            raced = await self.unfinished(serial, feature)
            if raced is None:
                raise
            return raced, False
        return await self.get(op_id), True

    async def get(self, op_id: str) -> Operation:
        async with self.engine.connect() as conn:
            row = (
                (await conn.execute(sa.select(reactivations).where(reactivations.c.id == op_id)))
                .mappings()
                .first()
            )
        if row is None:
            raise InventoryError(f"no re-activation operation {op_id!r}")
        return _operation(row)

    async def unfinished(self, serial: str, feature: str) -> Operation | None:
        query = sa.select(reactivations).where(
            reactivations.c.open_key == open_key(serial, feature)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _operation(row)

    async def latest(self, serial: str, feature: str, state: OpState) -> Operation | None:
        """The most recent operation for serial+feature that ended in `state`."""
        query = (
            sa.select(reactivations)
            .where(
                reactivations.c.serial == serial,
                reactivations.c.feature == feature,
                reactivations.c.state == state.value,
            )
            .order_by(reactivations.c.updated_at.desc())
            .limit(1)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _operation(row)

    async def advance(
        self, op: Operation, to: OpState, *, detail: str | None = None, **fields: Any
    ) -> Operation:
        """Move `op` to `to` (recording `fields`), committed, or raise TransitionRefused."""
        if to not in ALLOWED.get(op.state, frozenset()):
            raise TransitionRefused(f"operation {op.id}: {op.state} → {to} is not a transition")
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise ValueError(f"unknown operation fields: {sorted(unknown)}")
        now = datetime.now(UTC)
        values: dict[str, Any] = {"state": to.value, "updated_at": now, **fields}
        if to in FINISHED:
            values["open_key"] = None
        async with self.engine.begin() as conn:
            result = await conn.execute(
                reactivations.update()
                .where(reactivations.c.id == op.id, reactivations.c.state == op.state.value)
                .values(values)
            )
            if result.rowcount != 1:
                raise TransitionRefused(
                    f"operation {op.id} is no longer {op.state}: another run advanced it"
                )
            await conn.execute(
                reactivation_events.insert().values(
                    reactivation_id=op.id, state=to.value, at=now, detail=detail
                )
            )
        return replace(op, state=to, updated_at=now, **fields)

    async def events(self, op_id: str) -> list[tuple[str, datetime, str | None]]:
        """(state, at, detail) of every transition of an operation, oldest first."""
        query = (
            sa.select(reactivation_events)
            .where(reactivation_events.c.reactivation_id == op_id)
            .order_by(reactivation_events.c.id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [(row["state"], row["at"], row["detail"]) for row in rows]
