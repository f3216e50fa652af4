"""Bearer tokens of the HTTP API: created once, kept only as a SHA-256, checked, revoked.

A token is `pfk_<12 hex id>_<43 urlsafe chars>` (256 random bits). Its id is public (listings,
logs, revocation); the whole token is shown once at creation and the store keeps its hash, so
a leaked database or backup grants no access.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from inventory import pg_direct
from inventory.async_engine import AsyncEngine
from inventory.errors import InventoryError
from inventory.reads import autocommit_read
from inventory.schema import api_tokens

PREFIX = "pfk_"
_TOKEN = re.compile(r"^pfk_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$")
_TOUCH_EVERY = 60.0
"""Seconds between writes of `last_used_at`: a busy script must not write on every request."""


class Role(StrEnum):
    """What a token may do; `viewer` < `technician` < `admin`, `agent` is apart (one site)."""

    VIEWER = "viewer"
    TECHNICIAN = "technician"
    ADMIN = "admin"
    AGENT = "agent"


class TokenError(InventoryError, ValueError):
    """A token request that cannot be honoured (agent without site, unknown id)."""


class TokenNotFound(TokenError, LookupError):
    """No token has that id."""

    def __init__(self, token_id: str) -> None:
        self.token_id = token_id
        super().__init__(f"no API token with id {token_id!r}")


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A stored token without its secret."""

    id: str
    role: Role
    site: str | None
    name: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    store_generation: int | None = None
    """The store's data generation read with the token (PostgreSQL, when authenticated): a
    response computed after it is current until it changes (controller.api.response_cache)."""


def token_hash(token: str) -> str:
    """SHA-256 of the whole token, hex: right for 256-bit random secrets (no slow KDF needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_id_of(token: str) -> str | None:
    """The id inside a well-formed token, or None for anything else."""
    match = _TOKEN.match(token)
    return match.group(1) if match else None


def _row_to_token(row: sa.RowMapping) -> ApiToken:
    return ApiToken(
        id=row["id"],
        role=Role(row["role"]),
        site=row["site"],
        name=row["name"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
        store_generation=row.get("store_generation"),
    )


class TokenStore:
    """Create, authenticate, list and revoke API tokens."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(
        self, role: Role, *, site: str | None = None, name: str | None = None
    ) -> tuple[ApiToken, str]:
        """A new token and its secret text (shown once, never stored)."""
        if role is Role.AGENT and not site:
            raise TokenError("an agent token is bound to one site: give its site")
        token_id = secrets.token_hex(6)
        token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        now = datetime.now(UTC)
        row = {
            "id": token_id,
            "token_hash": token_hash(token),
            "role": role.value,
            "site": site or None,
            "name": name or None,
            "created_at": now,
        }
        async with self.engine.begin() as conn:
            await conn.execute(api_tokens.insert().values(row))
        return ApiToken(token_id, role, site or None, name or None, now, None, None), token

    async def authenticate(self, token: str) -> ApiToken | None:
        """The live (not revoked) token whose text is `token`, or None."""
        token_id = token_id_of(token)
        if token_id is None:
            return None
        row = await self._by_id(token_id)
        if row is None or row["revoked_at"] is not None:
            return None
        if not hmac.compare_digest(row["token_hash"], token_hash(token)):
            return None
        found = _row_to_token(row)
        now = datetime.now(UTC)
        last = found.last_used_at
        if last is None or (now - last).total_seconds() >= _TOUCH_EVERY:
            if pg_direct.is_postgres(self.engine):
                await pg_direct.execute(self.engine, pg_direct.TOKEN_USED, token_id, now)
                return found
            async with self.engine.begin() as conn:
                await conn.execute(
                    api_tokens.update().where(api_tokens.c.id == token_id).values(last_used_at=now)
                )
        return found

    async def _by_id(self, token_id: str) -> Any:
        """The token's row (a mapping), or None; on PostgreSQL one bare statement (every API
        request checks its token: inventory.pg_direct)."""
        if pg_direct.is_postgres(self.engine):
            return await pg_direct.fetchrow(self.engine, pg_direct.TOKEN_BY_ID, token_id)
        async with autocommit_read(self.engine) as conn:
            query = sa.select(api_tokens).where(api_tokens.c.id == token_id)
            return (await conn.execute(query)).mappings().first()

    async def list(self) -> list[ApiToken]:
        """Every token (revoked ones too, with `revoked_at`), oldest first."""
        query = sa.select(api_tokens).order_by(api_tokens.c.created_at, api_tokens.c.id)
        async with self.engine.connect() as conn:
            return [_row_to_token(row) for row in (await conn.execute(query)).mappings()]

    async def revoke(self, token_id: str) -> ApiToken:
        """Revoke a token (kept for the record); revoking twice keeps the first time."""
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            await conn.execute(
                api_tokens.update()
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            row = (
                (await conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)))
                .mappings()
                .first()
            )
        if row is None:
            raise TokenNotFound(token_id)
        return _row_to_token(row)
