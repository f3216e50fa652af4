"""The job queue: device work asked for through the API, claimed by agents or controllers.

A claim is a lease: the claimer gets a `lease_id` valid until `lease_expires_at` and renews it
while it works; a lease that runs out (a dead agent, a killed controller) puts the job back in
the queue. A result is stored once per job: a second delivery (a spooled result re-sent after a
lost answer) stores nothing and says so. On PostgreSQL several controllers claim at once with
`SELECT ... FOR UPDATE SKIP LOCKED`; on SQLite one controller runs, and each claim is guarded by
the state it leaves, so even two claimers never get the same job.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from inventory import pg_direct
from inventory.async_engine import AsyncEngine
from inventory.errors import InventoryError
from inventory.reads import autocommit_read
from inventory.schema import agents, jobs


class JobKind(StrEnum):
    SCAN = "scan"
    REACTIVATION = "reactivation"
    DISCOVERY = "discovery"
    PROBE = "probe"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


FINISHED_STATES = frozenset({JobState.DONE, JobState.FAILED})


class JobNotFound(InventoryError, LookupError):
    """No job has that id."""


class LeaseLost(InventoryError):
    """The lease named is not the job's current one (it expired and the job was re-queued, or
    the job is finished): the holder must stop working on the job."""


DEFAULT_LEASE = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Job:
    """One job as stored."""

    id: str
    kind: JobKind
    site: str | None
    payload: dict[str, Any]
    state: JobState
    created_at: datetime
    created_by: str | None = None
    lease_id: str | None = None
    lease_agent: str | None = None
    lease_expires_at: datetime | None = None
    attempts: int = 0
    progress: dict[str, int] | None = None
    result: Any = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def to_json(self, *, with_result: bool = True) -> dict[str, Any]:
        """The API's job JSON (API.md); without the result for event streams."""
        doc: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind.value,
            "site": self.site,
            "state": self.state.value,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "agent": self.lease_agent,
            "progress": self.progress or {"done": 0, "total": 0},
            "error": self.error,
        }
        if with_result:
            doc["result"] = self.result
        return doc


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _job(row: sa.RowMapping) -> Job:
    return Job(
        id=row["id"],
        kind=JobKind(row["kind"]),
        site=row["site"],
        payload=row["payload"],
        state=JobState(row["state"]),
        created_at=row["created_at"],
        created_by=row["created_by"],
        lease_id=row["lease_id"],
        lease_agent=row["lease_agent"],
        lease_expires_at=row["lease_expires_at"],
        attempts=row["attempts"],
        progress=row["progress"],
        result=row["result"],
        error=row["error"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


@dataclass(frozen=True, slots=True)
class ClaimScope:
    """Which queued jobs a claimer may take: an agent its own site's jobs of the kinds it runs;
    a controller jobs of sites without a live agent (none seen since `unattended_since`)."""

    site: str | None = None
    kinds: frozenset[JobKind] | None = None
    unattended_since: datetime | None = None

    def is_agents(self) -> bool:
        """An agent's scope: its site's jobs of the kinds it runs (`pg_direct.CLAIM_AT_SITE`)."""
        return self.site is not None and self.kinds is not None and self.unattended_since is None

    def where(self) -> list[sa.ColumnElement[bool]]:
        clauses: list[sa.ColumnElement[bool]] = [jobs.c.state == JobState.QUEUED.value]
        if self.site is not None:
            clauses.append(jobs.c.site == self.site)
        if self.kinds is not None:
            clauses.append(jobs.c.kind.in_(sorted(k.value for k in self.kinds)))
        if self.unattended_since is not None:
            attended = sa.select(agents.c.site).where(
                agents.c.last_seen_at >= self.unattended_since
            )
            clauses.append(sa.or_(jobs.c.site.is_(None), jobs.c.site.not_in(attended)))
        return clauses


def _requeue_expired(now: datetime) -> sa.Update:
    """Running jobs whose lease ran out go back to the queue (one statement)."""
    return (
        jobs.update()
        .where(jobs.c.state == JobState.RUNNING.value, jobs.c.lease_expires_at <= now)
        .values(state=JobState.QUEUED.value, lease_id=None, lease_agent=None, lease_expires_at=None)
    )


class JobStore:
    """Enqueue, claim (a lease; expired ones back to the queue first), renew, complete once,
    read."""

    def __init__(self, engine: AsyncEngine, *, lease: timedelta = DEFAULT_LEASE) -> None:
        self.engine = engine
        self.lease = lease

    async def enqueue(
        self,
        kind: JobKind,
        payload: dict[str, Any],
        *,
        site: str | None,
        created_by: str | None = None,
    ) -> Job:
        now = datetime.now(UTC)
        job_id = f"job-{now:%Y%m%d}-{uuid.uuid4().hex[:12]}"
        async with self.engine.begin() as conn:
            await conn.execute(
                jobs.insert().values(
                    id=job_id,
                    kind=kind.value,
                    site=site,
                    payload=payload,
                    state=JobState.QUEUED.value,
                    created_at=now,
                    created_by=created_by,
                    attempts=0,
                )
            )
        return await self.get(job_id)

    async def claim(
        self, scope: ClaimScope, agent: str, *, now: datetime | None = None
    ) -> Job | None:
        """The oldest queued job in scope, now `running` under a new lease held by `agent`;
        None when there is none. Expired leases are returned to the queue first.

        One transaction of two statements: the expiry sweep, then the claim itself as one
        `UPDATE ... WHERE id = (oldest candidate) RETURNING` (on PostgreSQL the candidate is
        locked with SKIP LOCKED, so concurrent claimers take different jobs without waiting;
        on SQLite the statement runs under the database's single write lock)."""
        now = now or datetime.now(UTC)
        if pg_direct.is_postgres(self.engine) and scope.is_agents():
            return await self._claim_direct(scope, agent, now)
        candidate = sa.select(jobs.c.id).where(*scope.where()).order_by(jobs.c.created_at).limit(1)
        if self.engine.dialect.name == "postgresql":
            candidate = candidate.with_for_update(skip_locked=True)
        take = (
            jobs.update()
            .where(jobs.c.id == candidate.scalar_subquery(), jobs.c.state == JobState.QUEUED.value)
            .values(
                state=JobState.RUNNING.value,
                lease_id=uuid.uuid4().hex,
                lease_agent=agent,
                lease_expires_at=now + self.lease,
                attempts=jobs.c.attempts + 1,
                started_at=sa.func.coalesce(jobs.c.started_at, now),
            )
            .returning(*jobs.c)
        )
        async with self.engine.begin() as conn:
            await conn.execute(_requeue_expired(now))
            row = (await conn.execute(take)).mappings().first()
        return None if row is None else _job(row)

    async def _claim_direct(self, scope: ClaimScope, agent: str, now: datetime) -> Job | None:
        """`claim` for an agent on PostgreSQL: the same two statements, each bare and in
        autocommit (inventory.pg_direct; the sweep and the claim are each atomic, and nothing
        ties them: a sweep that a claim failed after still stands, as another claim's)."""
        assert scope.site is not None
        assert scope.kinds is not None
        await pg_direct.execute(self.engine, pg_direct.REQUEUE_EXPIRED, now)
        row = await pg_direct.fetchrow(
            self.engine,
            pg_direct.CLAIM_AT_SITE,
            scope.site,
            sorted(k.value for k in scope.kinds),
            uuid.uuid4().hex,
            agent,
            now + self.lease,
            now,
        )
        return None if row is None else _job(row)

    async def renew(self, job_id: str, lease_id: str, *, now: datetime | None = None) -> datetime:
        """Extend the lease; raises LeaseLost when it is not the job's current running lease."""
        now = now or datetime.now(UTC)
        until = now + self.lease
        async with self.engine.begin() as conn:
            renewed = await conn.execute(
                jobs.update()
                .where(
                    jobs.c.id == job_id,
                    jobs.c.lease_id == lease_id,
                    jobs.c.state == JobState.RUNNING.value,
                    jobs.c.lease_expires_at > now,
                )
                .values(lease_expires_at=until)
            )
        if renewed.rowcount != 1:
            await self.get(job_id)  # JobNotFound first
            raise LeaseLost(f"job {job_id}: lease {lease_id} is no longer held")
        return until

    async def report_progress(self, job_id: str, lease_id: str, done: int, total: int) -> bool:
        """Record progress of a running job under its lease; False if the lease is gone."""
        async with self.engine.begin() as conn:
            updated = await conn.execute(
                jobs.update()
                .where(
                    jobs.c.id == job_id,
                    jobs.c.lease_id == lease_id,
                    jobs.c.state == JobState.RUNNING.value,
                )
                .values(progress={"done": done, "total": total})
            )
        return updated.rowcount == 1

    async def complete(
        self,
        job_id: str,
        *,
        state: JobState,
        result: Any = None,
        error: str | None = None,
        now: datetime | None = None,
        lease_id: str | None = None,
    ) -> bool:
        """Store a job's outcome once: True when stored, False when the job was already finished
        (a duplicate delivery). A result whose lease expired meanwhile is still the work done,
        so it is accepted as long as nobody stored one first; with `lease_id`, only while that
        lease is still the job's (a run that was taken over reports nothing: the run that took
        it over resumes the work and reports)."""
        if state not in FINISHED_STATES:
            raise ValueError(f"a job ends done or failed, not {state}")
        now = now or datetime.now(UTC)
        if pg_direct.is_postgres(self.engine):
            stored_count = await pg_direct.execute(
                self.engine,
                pg_direct.COMPLETE if lease_id is None else pg_direct.COMPLETE_UNDER_LEASE,
                job_id,
                state.value,
                pg_direct.as_json(result),
                error,
                now,
                *([lease_id] if lease_id is not None else []),
            )
            if stored_count != 1:
                await self.get(job_id)  # JobNotFound for an unknown id
                return False
            return True
        guard = [
            jobs.c.id == job_id,
            jobs.c.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]),
        ]
        if lease_id is not None:
            guard.append(jobs.c.lease_id == lease_id)
        async with self.engine.begin() as conn:
            stored = await conn.execute(
                jobs.update()
                .where(*guard)
                .values(
                    state=state.value,
                    result=result,
                    error=error,
                    finished_at=now,
                    lease_id=None,
                    lease_expires_at=None,
                    started_at=sa.func.coalesce(jobs.c.started_at, now),
                )
            )
        if stored.rowcount != 1:
            await self.get(job_id)  # JobNotFound for an unknown id
            return False
        return True

    async def get(self, job_id: str) -> Job:
        if pg_direct.is_postgres(self.engine):
            row = await pg_direct.fetchrow(self.engine, pg_direct.JOB_BY_ID, job_id)
        else:
            async with autocommit_read(self.engine) as conn:
                query = sa.select(jobs).where(jobs.c.id == job_id)
                row = (await conn.execute(query)).mappings().first()
        if row is None:
            raise JobNotFound(f"no job {job_id!r}")
        return _job(row)

    async def list_jobs(
        self,
        *,
        state: JobState | None = None,
        kind: JobKind | None = None,
        site: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Job], int]:
        """Jobs newest first, filtered; and how many match in all."""
        where = []
        if state is not None:
            where.append(jobs.c.state == state.value)
        if kind is not None:
            where.append(jobs.c.kind == kind.value)
        if site is not None:
            where.append(jobs.c.site == site)
        async with self.engine.connect() as conn:
            total = (
                await conn.execute(sa.select(sa.func.count()).select_from(jobs).where(*where))
            ).scalar_one()
            rows = (
                await conn.execute(
                    sa.select(jobs)
                    .where(*where)
                    .order_by(jobs.c.created_at.desc(), jobs.c.id)
                    .limit(limit)
                    .offset(offset)
                )
            ).mappings()
            return [_job(r) for r in rows], total

    async def active_or_finished_since(self, since: datetime) -> Sequence[Job]:
        """Jobs queued or running, and those finished after `since`: what an event stream polls."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(jobs).where(
                        sa.or_(
                            jobs.c.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]),
                            jobs.c.finished_at >= since,
                        )
                    )
                )
            ).mappings()
            return [_job(r) for r in rows]

    async def depth(self) -> dict[str, int]:
        """How many jobs are in each state (the queue depth is `queued`)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(jobs.c.state, sa.func.count()).group_by(jobs.c.state)
            )
            counts = {state.value: 0 for state in JobState}
            counts.update(rows.all())  # rows, not the Result: it has keys(), like a mapping
            return counts
