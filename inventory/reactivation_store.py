"""Re-activation operations as a persisted state machine (one row per operation + its events).

Every transition is committed before the next side effect, and each one is guarded by the state
it leaves (`WHERE state = :from`), so two processes can never both advance the same operation.
While an operation is unfinished its `open_key` (`serial|feature`) is set, and that column is
unique: there is at most one unfinished operation per device feature, and a rerun resumes it.

A run also *claims* the operation it drives (`claim`, a lease renewed by every transition), so
two runs at once never both drive one operation through a side effect: the second one is told
the operation is held. A claim whose process is gone (same host) or whose lease ran out is free.
A job's run (a site agent's, which the controller records for it) claims as the job's lease
(`job_claim_owner`): that claim is free as soon as the lease is no longer the job's, so the run
that takes the job over after an agent died resumes the operation at once.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from inventory.async_engine import AsyncConnection, AsyncEngine
from inventory.errors import InventoryError
from inventory.job_store import JobState
from inventory.schema import jobs, reactivation_events, reactivations


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


def _operation(row: sa.RowMapping | Mapping[str, Any]) -> Operation:
    """The operation of a `reactivations` row (as read, or as just inserted)."""
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


CLAIM_LEASE = timedelta(minutes=10)
"""How long a claim holds without a transition; only a run on another host ever waits it out
(on the same host a claim of a process that is gone is free at once)."""


def claim_owner(run: str) -> str:
    """The claim of run `run` of this process: host/pid/run (see `_claim_is_stale`)."""
    return f"{socket.gethostname()}/{os.getpid()}/{run}"


JOB_CLAIM = "job:"


def job_claim_owner(job_id: str, lease_id: str) -> str:
    """The claim of job `job_id`'s run under lease `lease_id` (see `_job_lease_gone`)."""
    return f"{JOB_CLAIM}{job_id}/{lease_id}"


def _describe(holder: str) -> str:
    """A claim as people read it: "process 4242 on host-a", "job job-20261206-…"."""
    if holder.startswith(JOB_CLAIM):
        return f"job {holder.removeprefix(JOB_CLAIM).partition('/')[0]}"
    host, _, rest = holder.partition("/")
    pid = rest.partition("/")[0]
    return f"process {pid} on {host}" if pid else holder


def _claim_is_stale(holder: str, until: datetime | None, now: datetime) -> bool:
    """A claim left behind: its lease ran out, or its process on this host no longer exists
    (killed mid-run: a rerun resumes at once instead of waiting for the lease)."""
    if until is None or until <= now:
        return True
    host, _, rest = holder.partition("/")
    pid = rest.partition("/")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


async def _job_lease_gone(conn: AsyncConnection, holder: str, now: datetime) -> bool:
    """A job's claim whose lease is no longer the job's running one (it expired, or the job
    was taken over or finished): the run behind it can no longer record anything."""
    if not holder.startswith(JOB_CLAIM):
        return False
    job_id, _, lease_id = holder.removeprefix(JOB_CLAIM).partition("/")
    row = (
        await conn.execute(
            sa.select(jobs.c.state, jobs.c.lease_id, jobs.c.lease_expires_at).where(
                jobs.c.id == job_id
            )
        )
    ).first()
    if row is None or row.state != JobState.RUNNING.value or row.lease_id != lease_id:
        return True
    expires: datetime | None = row.lease_expires_at
    return expires is None or expires <= now


class OperationStore:
    """Create, resume and advance re-activation operations; with `owner` (a run's
    `claim_owner`), claim them too: transitions then hold only while that claim does."""

    def __init__(self, engine: AsyncEngine, *, owner: str | None = None) -> None:
        self.engine = engine
        self.owner = owner

    async def open(self, serial: str, feature: str, actor: str) -> tuple[Operation, bool]:
        """The unfinished operation for serial+feature, or a new one: (operation, created).
        A new operation is claimed by our owner from the start (an existing one is not).
        The insert comes first: the unique open key refuses it while one is unfinished, so the
        usual case (none) costs no look-up, and a new operation is returned as inserted (every
        other field empty), not read back."""
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
            "claimed_by": self.owner,
            "claimed_until": now + CLAIM_LEASE if self.owner else None,
        }
        try:
            async with self.engine.begin() as conn:
                await conn.execute(reactivations.insert().values(row))
                await conn.execute(
                    reactivation_events.insert().values(
                        reactivation_id=op_id, state=OpState.REQUESTED.value, at=now, detail=None
                    )
                )
        except IntegrityError:  # one is unfinished (opened earlier, or just now by another run)
            raced = await self.unfinished(serial, feature)
            if raced is None:
                raise
            return raced, False
        return _operation({**dict.fromkeys(_FIELDS), **row}), True

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

    async def unfinished_else_latest(
        self, serial: str, feature: str, state: OpState
    ) -> tuple[Operation | None, Operation | None]:
        """(the unfinished operation, None), else (None, the latest that ended in `state` or
        None): what `unfinished` and then `latest` answer, in one statement."""
        c = reactivations.c
        query = (
            sa.select(reactivations)
            .where(
                c.serial == serial,
                c.feature == feature,
                sa.or_(c.open_key == open_key(serial, feature), c.state == state.value),
            )
            .order_by(c.open_key.is_(None), c.updated_at.desc())  # the unfinished one first
            .limit(1)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None, None
        found = _operation(row)
        return (found, None) if row["open_key"] is not None else (None, found)

    async def advance(
        self, op: Operation, to: OpState, *, detail: str | None = None, **fields: Any
    ) -> Operation:
        """Move `op` to `to` (recording `fields`), committed, or raise TransitionRefused.
        With an owner, only while its claim holds; the transition renews the lease."""
        if to not in ALLOWED.get(op.state, frozenset()):
            raise TransitionRefused(f"operation {op.id}: {op.state} → {to} is not a transition")
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise ValueError(f"unknown operation fields: {sorted(unknown)}")
        now = datetime.now(UTC)
        values: dict[str, Any] = {"state": to.value, "updated_at": now, **fields}
        guard = [reactivations.c.id == op.id, reactivations.c.state == op.state.value]
        if self.owner is not None:
            guard.append(reactivations.c.claimed_by == self.owner)
            values["claimed_until"] = now + CLAIM_LEASE
        if to in FINISHED:
            values |= {"open_key": None, "claimed_by": None, "claimed_until": None}
        async with self.engine.begin() as conn:
            result = await conn.execute(reactivations.update().where(*guard).values(values))
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

    def _owner(self) -> str:
        if self.owner is None:
            raise ValueError("claims need an OperationStore with an owner")
        return self.owner

    async def claim(self, op_id: str, *, now: datetime | None = None) -> str | None:
        """Claim the operation for our owner: None when claimed, else who holds it.

        On PostgreSQL the row is read `FOR UPDATE SKIP LOCKED`, so a run that finds another in
        the middle of claiming it moves on at once; the update itself is a compare-and-set on
        the holder read, so on either backend only one of two claimants can win.
        """
        owner = self._owner()
        moment = now or datetime.now(UTC)
        c = reactivations.c
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.select(c.claimed_by, c.claimed_until)
                    .where(c.id == op_id)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                return "it is claiming it right now"
            holder: str | None = row.claimed_by
            if (
                holder not in (None, owner)
                and not _claim_is_stale(holder, row.claimed_until, moment)
                and not await _job_lease_gone(conn, holder, moment)
            ):
                return _describe(holder)
            seen = c.claimed_by.is_(None) if holder is None else c.claimed_by == holder
            result = await conn.execute(
                reactivations.update()
                .where(c.id == op_id, seen)
                .values(claimed_by=owner, claimed_until=moment + CLAIM_LEASE)
            )
        return None if result.rowcount == 1 else "it claimed it first"

    async def release(self, op_id: str) -> None:
        """Give up our claim (the operation stays as it is, for a rerun to resume)."""
        owner = self._owner()
        c = reactivations.c
        async with self.engine.begin() as conn:
            await conn.execute(
                reactivations.update()
                .where(c.id == op_id, c.claimed_by == owner)
                .values(claimed_by=None, claimed_until=None)
            )

    async def withdraw(self, op_id: str) -> bool:
        """Delete an operation we opened and never advanced (it turned out another run had
        just done the work): no side effect happened under it, so nothing is lost."""
        owner = self._owner()
        c = reactivations.c
        mine = (c.id == op_id, c.state == OpState.REQUESTED.value, c.claimed_by == owner)
        events = reactivation_events.c
        async with self.engine.begin() as conn:
            await conn.execute(
                reactivation_events.delete().where(
                    events.reactivation_id.in_(sa.select(c.id).where(*mine))
                )
            )
            result = await conn.execute(reactivations.delete().where(*mine))
            if result.rowcount != 1:
                return False
        return True

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
