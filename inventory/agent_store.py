"""Site agents: who they are, their site, and when each last called in.

An agent is created with its token (`POST /agents`) and enrols when it first calls in; its
calls refresh `last_seen_at` (the API writes it at most every few seconds), which decides
whether its site's jobs wait for it or the controller runs them itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from inventory import pg_direct
from inventory.async_engine import AsyncEngine
from inventory.errors import InventoryError
from inventory.reads import autocommit_read
from inventory.schema import agents


class AgentNotFound(InventoryError, LookupError):
    """No agent has that id or token."""


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    name: str
    site: str
    token_id: str | None = None
    enrolled_at: datetime | None = None
    last_seen_at: datetime | None = None
    version: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "site": self.site,
            "enrolled_at": self.enrolled_at.isoformat() if self.enrolled_at else None,
            "last_seen_at": self.last_seen_at.isoformat() if self.last_seen_at else None,
            "version": self.version,
        }


def _agent(row: sa.RowMapping) -> Agent:
    return Agent(**{c.name: row[c.name] for c in agents.columns})


class AgentStore:
    """Create, enrol, mark seen, list."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self, name: str, site: str, *, token_id: str | None) -> Agent:
        agent_id = f"agt-{uuid.uuid4().hex[:12]}"
        async with self.engine.begin() as conn:
            await conn.execute(
                agents.insert().values(id=agent_id, name=name, site=site, token_id=token_id)
            )
        return await self.get(agent_id)

    async def get(self, agent_id: str) -> Agent:
        return await self._one(agents.c.id == agent_id, agent_id)

    async def by_token(self, token_id: str) -> Agent:
        """The agent of a token (every call of an agent looks it up: one bare statement on
        PostgreSQL, inventory.pg_direct)."""
        what = f"token {token_id}"
        if pg_direct.is_postgres(self.engine):
            row = await pg_direct.fetchrow(self.engine, pg_direct.AGENT_BY_TOKEN, token_id)
            if row is None:
                raise AgentNotFound(f"no agent {what!r}")
            return _agent(row)
        return await self._one(agents.c.token_id == token_id, what)

    async def _one(self, where: sa.ColumnElement[bool], what: str) -> Agent:
        async with autocommit_read(self.engine) as conn:
            row = (await conn.execute(sa.select(agents).where(where))).mappings().first()
        if row is None:
            raise AgentNotFound(f"no agent {what!r}")
        return _agent(row)

    async def enrol(
        self, agent_id: str, *, name: str, version: str | None, now: datetime | None = None
    ) -> Agent:
        """Record that the agent called in with this name and version (again after a restart)."""
        now = now or datetime.now(UTC)
        async with self.engine.begin() as conn:
            await conn.execute(
                agents.update()
                .where(agents.c.id == agent_id)
                .values(
                    name=name,
                    version=version,
                    enrolled_at=sa.func.coalesce(agents.c.enrolled_at, now),
                    last_seen_at=now,
                )
            )
        return await self.get(agent_id)

    async def seen(self, agent_id: str, *, now: datetime | None = None) -> None:
        if pg_direct.is_postgres(self.engine):
            await pg_direct.execute(
                self.engine, pg_direct.AGENT_SEEN, agent_id, now or datetime.now(UTC)
            )
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                agents.update()
                .where(agents.c.id == agent_id)
                .values(last_seen_at=now or datetime.now(UTC))
            )

    async def list_agents(self, *, site: str | None = None) -> list[Agent]:
        query = sa.select(agents).order_by(agents.c.site, agents.c.name)
        if site is not None:
            query = query.where(agents.c.site == site)
        async with self.engine.connect() as conn:
            return [_agent(r) for r in (await conn.execute(query)).mappings()]

    async def last_seen_by_site(self) -> dict[str, datetime]:
        """The most recent call of any agent of each site (for `GET /sites`)."""
        query = (
            sa.select(agents.c.site, sa.func.max(agents.c.last_seen_at))
            .where(agents.c.last_seen_at.is_not(None))
            .group_by(agents.c.site)
        )
        async with self.engine.connect() as conn:
            return dict(await conn.execute(query))
