"""The API's hot statements on PostgreSQL, run on the bare asyncpg connection of the pool.

A statement through SQLAlchemy's async layer costs about 0.3-0.4 ms of CPU in the controller
(compiling or fetching the cached form, the greenlet hop, result objects), the same statement on
the asyncpg connection underneath about 0.13-0.15 ms with its pool checkout (measured here, on a
busy machine): on two cores, that is most of what a token
check, a device listing or an agent's claim costs (bench/RESULTS.md, issue 12). So the few
statements run on every API request are written out here as PostgreSQL text and run on the
driver connection of a connection checked out of the engine's own pool (same settings,
search_path and limits). Each runs alone in autocommit: every one is a single statement that is
consistent (and, for a write, atomic) by itself. Rows come back as asyncpg records, which the
store modules turn into their models with their usual row functions (they read columns by name);
JSON columns are decoded by the codec SQLAlchemy installs on each connection. SQLite, and every
shape of query not covered here, keeps the SQLAlchemy path.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

from sqlalchemy.util import greenlet_spawn

from inventory.async_engine import AsyncEngine

Row = Any
"""An asyncpg Record: read by column name, as a SQLAlchemy RowMapping."""


def is_postgres(engine: AsyncEngine) -> bool:
    """Whether `engine` is PostgreSQL (through asyncpg), where these statements apply."""
    return engine.dialect.name == "postgresql"


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """The asyncpg connection of a connection checked out of `engine`'s pool, for the block.

    Straight from the pool (SQLAlchemy's Connection object around it costs as much as the
    statement). No transaction is begun, so each statement commits by itself and the pool's
    reset on return has nothing to roll back. A connection left in an unknown state (broken,
    or a statement cancelled under it) is invalidated, as SQLAlchemy does for its own; an
    error PostgreSQL answered leaves it usable."""
    # Imported here, not with the module: the SQLite store's commands import this module for
    # `is_postgres` and never come here, and asyncpg costs them 12-17 ms of start-up. On
    # PostgreSQL, SQLAlchemy's dialect has imported it already.
    import asyncpg

    async with _turns(engine):
        fairy = await greenlet_spawn(engine.sync_engine.pool.connect)
        try:
            yield fairy.driver_connection
        except asyncpg.PostgresError:
            raise
        except BaseException:
            await greenlet_spawn(fairy.invalidate)
            raise
        finally:
            await greenlet_spawn(fairy.close)


MAX_AT_ONCE = 8
"""Statements here in flight at once per engine, at most (and never more than the pool keeps).
Dozens of requests at once would otherwise take the pool's overflow connections, which it
closes again on return: a new PostgreSQL backend, and SQLAlchemy's set-up of it, every few
requests (43 connections opened in a 10 s load of 50 clients). PostgreSQL on a few cores gains
nothing from more statements at once than these."""
_TURNS: weakref.WeakKeyDictionary[AsyncEngine, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _turns(engine: AsyncEngine) -> asyncio.Semaphore:
    turns = _TURNS.get(engine)
    if turns is None:
        size = getattr(engine.sync_engine.pool, "size", None)  # a QueuePool's pool_size
        kept = size() if callable(size) else MAX_AT_ONCE
        turns = _TURNS[engine] = asyncio.Semaphore(max(1, min(MAX_AT_ONCE, kept)))
    return turns


async def fetchrow(engine: AsyncEngine, sql: str, *args: Any) -> Row | None:
    async with driver_connection(engine) as conn:
        return await conn.fetchrow(sql, *args)


async def fetch(engine: AsyncEngine, sql: str, *args: Any) -> list[Row]:
    async with driver_connection(engine) as conn:
        rows: list[Row] = await conn.fetch(sql, *args)
    return rows


async def execute(engine: AsyncEngine, sql: str, *args: Any) -> int:
    """Run one statement; how many rows it changed."""
    async with driver_connection(engine) as conn:
        status: str = await conn.execute(sql, *args)
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def as_json(value: Any) -> str:
    """A JSON column's parameter (the codec SQLAlchemy installs sends text as is); None is
    JSON null, as SQLAlchemy's JSON type stores it."""
    return json.dumps(value)


# --- tokens and agents -----------------------------------------------------------------------

# (S105: statements that name the tokens table, not secrets)
TOKEN_BY_ID = (
    "SELECT t.*, g.last_value AS store_generation"  # noqa: S105
    " FROM api_tokens t, store_generation g WHERE t.id = $1"
)
"""The token's row and, in the same round trip, the store's data generation (migration 0013:
advanced by every write to what the device listing reads; read by the response cache)."""
TOKEN_USED = "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1"  # noqa: S105
AGENT_BY_TOKEN = "SELECT * FROM agents WHERE token_id = $1 LIMIT 1"  # noqa: S105
AGENT_SEEN = "UPDATE agents SET last_seen_at = $2 WHERE id = $1"

WRITES_IN_FLIGHT = "SELECT EXISTS (SELECT pg_snapshot_xip(pg_current_snapshot()))"
"""Whether a transaction with an id (one that has written) was running when this statement's
snapshot was taken, in any database of the server."""


async def writes_in_flight(engine: AsyncEngine) -> bool:
    """Whether some write was uncommitted just now: if not, every write whose effects were
    counted before this call (e.g. in the store generation) is visible to later snapshots."""
    async with driver_connection(engine) as conn:
        return bool(await conn.fetchval(WRITES_IN_FLIGHT))


# --- jobs --------------------------------------------------------------------------------------

JOB_BY_ID = "SELECT * FROM jobs WHERE id = $1"
REQUEUE_EXPIRED = (
    "UPDATE jobs SET state = 'queued', lease_id = NULL, lease_agent = NULL,"
    " lease_expires_at = NULL WHERE state = 'running' AND lease_expires_at <= $1"
)
CLAIM_AT_SITE = """
UPDATE jobs SET state = 'running', lease_id = $3, lease_agent = $4, lease_expires_at = $5,
    attempts = attempts + 1, started_at = coalesce(started_at, $6)
WHERE id = (
    SELECT id FROM jobs
    WHERE state = 'queued' AND site = $1 AND kind = ANY($2::text[])
    ORDER BY created_at LIMIT 1
    FOR UPDATE SKIP LOCKED
) AND state = 'queued'
RETURNING *
"""
"""The oldest queued job of a site, of the given kinds, leased (as JobStore.claim's statement
for an agent's scope)."""


COMPLETE = (
    "UPDATE jobs SET state = $2, result = $3, error = $4, finished_at = $5, lease_id = NULL,"
    " lease_expires_at = NULL, started_at = coalesce(started_at, $5)"
    " WHERE id = $1 AND state IN ('queued', 'running')"
)
"""JobStore.complete's guarded UPDATE ($1 job, $2 state, $3 result JSON, $4 error, $5 now)."""
COMPLETE_UNDER_LEASE = COMPLETE + " AND lease_id = $6"
"""COMPLETE only while the lease $6 is the job's."""


# --- devices -----------------------------------------------------------------------------------

DEVICES_BY_SERIAL_OR_MAC = "SELECT * FROM devices WHERE serial = $1 OR mac = $2"

LISTING_FILTERS = ("site", "model", "product_group")
"""The equality filters a listing statement here takes (others: the SQLAlchemy path)."""

STATUS_PREFIX = "status_"
"""`device_status` columns in a listing row (but the `license_read_*` ones, which `devices`
lacks) carry this prefix; `status_licenses` is the device's licenses, (feature, state,
expires_at, source, observed_at) by feature."""


@cache
def listing_sql(filters: tuple[str, ...], descending: bool) -> str:
    """How many devices match `filters` (columns of LISTING_FILTERS equal to $1..$n), and the
    page (LIMIT $n+1 OFFSET $n+2) in serial order with each device's latest status and its
    licenses: one statement. Every row carries the total; no device on the page gives one row
    of NULLs but the total."""
    unknown = set(filters) - set(LISTING_FILTERS)
    if unknown:
        raise ValueError(f"not a listing filter: {sorted(unknown)}")
    where = " AND ".join(f"{c} = ${i}" for i, c in enumerate(filters, start=1)) or "TRUE"
    order = "DESC" if descending else "ASC"
    n = len(filters)
    status = ", ".join(
        f"s.{c}" if c.startswith("license_read_") else f"s.{c} AS {STATUS_PREFIX}{c}"
        for c in (
            "serial", "observed_at", "reachable", "driver", "error_kind", "error",
            "identity_mismatch", "license_read_ok", "license_read_call", "license_read_detail",
            "license_read_modeled",
        )
    )  # fmt: skip
    # S608: only the fixed column names above and placeholders are put in; values are parameters
    return f"""
WITH page AS MATERIALIZED (
    SELECT * FROM devices WHERE {where} ORDER BY serial {order} LIMIT ${n + 1} OFFSET ${n + 2}
)
SELECT t.total, p.*, {status},
    (SELECT array_agg(ROW(l.feature, l.state, l.expires_at, l.source, l.observed_at)
                      ORDER BY l.feature)
     FROM licenses l WHERE l.serial = s.serial) AS {STATUS_PREFIX}licenses
FROM (SELECT count(*) AS total FROM devices WHERE {where}) t
LEFT JOIN page p ON TRUE
LEFT JOIN device_status s ON s.serial = p.serial
ORDER BY p.serial {order}
"""  # noqa: S608


async def listing_rows(
    engine: AsyncEngine,
    filters: dict[str, str],
    *,
    descending: bool,
    limit: int,
    offset: int,
) -> tuple[int, Sequence[Row]]:
    """The total of devices matching `filters` and the page's rows (see listing_sql)."""
    names = tuple(sorted(filters))
    sql = listing_sql(names, descending)
    async with driver_connection(engine) as conn:
        rows = await conn.fetch(sql, *(filters[n] for n in names), limit, offset)
    total = int(rows[0]["total"]) if rows else 0
    return total, [row for row in rows if row["serial"] is not None]
