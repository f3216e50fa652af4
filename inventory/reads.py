"""A connection for reads that need no transaction of their own.

SQLAlchemy begins a transaction on a connection's first statement and rolls it back when the
connection returns to the pool: on PostgreSQL that is a BEGIN and a ROLLBACK round trip around
every read. A single statement is consistent on its own, and some pairs of statements need not
agree with each other (a listing's total and its page), so these run in autocommit instead. On
SQLite nothing changes (its driver starts no transaction for a read).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from inventory.async_engine import AsyncConnection, AsyncEngine


@asynccontextmanager
async def autocommit_read(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection in autocommit on PostgreSQL (for reads only: a write here would
    commit statement by statement)."""
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn
