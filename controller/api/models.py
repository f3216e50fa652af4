"""Pydantic models of the API's requests and responses shared by several routes.

Request models forbid unknown fields, so a typo (`?stat=ok`, `{"rol": ...}`) is a 400 naming
it rather than a silently ignored filter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from inventory.token_store import ApiToken, Role

T = TypeVar("T")
MAX_LIMIT = 500


class Strict(BaseModel):
    """A request model: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


class PageQuery(Strict):
    """`?limit=&offset=` of every listing."""

    limit: int = Field(default=50, ge=1, le=MAX_LIMIT, description="items per page")
    offset: int = Field(default=0, ge=0, le=10_000_000, description="items to skip")


class Page(BaseModel, Generic[T]):
    """One page of a listing and the number of items in all pages."""

    items: list[T]
    total: int
    limit: int
    offset: int


class Me(BaseModel):
    """The caller's token: its role, site (agents) and name."""

    role: Role
    site: str | None
    name: str | None


class TokenCreate(Strict):
    """`POST /tokens`: an agent token needs its site."""

    role: Role
    site: str | None = Field(default=None, min_length=1, max_length=128)
    name: str | None = Field(default=None, min_length=1, max_length=128)


class TokenCreated(BaseModel):
    """The new token's id and the token itself, shown this once."""

    id: str
    token: str


class TokenInfo(BaseModel):
    """A token as listed: never its secret."""

    id: str
    role: Role
    site: str | None
    name: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenInfo:
        return cls(
            id=token.id,
            role=token.role,
            site=token.site,
            name=token.name,
            created_at=token.created_at,
            last_used_at=token.last_used_at,
            revoked_at=token.revoked_at,
        )


class TokenList(BaseModel):
    items: list[TokenInfo]


class Status(BaseModel):
    """`/healthz`, `/readyz`: `{"status": "ok"}` (a failed check is a 503 problem)."""

    status: str
