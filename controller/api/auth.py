"""Who is calling: Bearer tokens, the role hierarchy, and slowing down failed authentication.

`viewer` < `technician` < `admin`, each allowed what the ones before it are; an `agent` token is
apart: it reaches only agent routes, and only for its own site. A client address that fails
authentication `limit` times within `window` seconds is answered 429 (with Retry-After) until
the window has passed, so guessing tokens costs a window per `limit` tries.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from controller.api.problems import Problem
from inventory.token_store import ApiToken, Role, TokenStore

_RANK = {Role.VIEWER: 1, Role.TECHNICIAN: 2, Role.ADMIN: 3}
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="polyfleet"'}


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request."""

    token_id: str
    role: Role
    site: str | None
    name: str | None
    store_generation: int | None = None
    """The store's data generation read with the token (PostgreSQL; None on SQLite)."""

    @classmethod
    def of(cls, token: ApiToken) -> Principal:
        return cls(token.id, token.role, token.site, token.name, token.store_generation)

    def may(self, needed: Role) -> bool:
        """Whether this caller's role covers `needed` (agent only for agent routes)."""
        if needed is Role.AGENT or self.role is Role.AGENT:
            return self.role is needed
        return _RANK[self.role] >= _RANK[needed]

    def require_site(self, site: str | None) -> None:
        """403 unless an agent caller is bound to `site` (other roles span every site)."""
        if self.role is Role.AGENT and site != self.site:
            raise Problem(403, f"this agent token is bound to site {self.site!r}")


class FailedAuthThrottle:
    """Failed authentications per client address in a sliding window."""

    def __init__(
        self,
        *,
        limit: int = 10,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str) -> deque[float] | None:
        failures = self._failures.get(client)
        if failures is None:
            return None
        cutoff = self._clock() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        return failures

    def retry_after(self, client: str) -> int | None:
        """Seconds until `client` may try again, or None if it is not throttled."""
        failures = self._recent(client)
        if failures is None or len(failures) < self.limit:
            return None
        return max(1, math.ceil(failures[-self.limit] + self.window - self._clock()))

    def failed(self, client: str) -> None:
        if client not in self._failures and len(self._failures) >= self._max_clients:
            # bounded memory under a spray of addresses: forget the oldest client
            self._failures.pop(next(iter(self._failures)))
        self._failures.setdefault(client, deque(maxlen=self.limit)).append(self._clock())


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


class Authenticator:
    """Resolves a request's Bearer token to a Principal, or raises the problem to answer."""

    def __init__(self, tokens: TokenStore, throttle: FailedAuthThrottle) -> None:
        self.tokens = tokens
        self.throttle = throttle

    async def principal(self, request: web.Request, needed: Role) -> Principal:
        client = request.remote or "unknown"
        wait = self.throttle.retry_after(client)
        if wait is not None:
            raise Problem(
                429,
                "too many failed authentications from this address; retry later",
                headers={"Retry-After": str(wait)},
            )
        token = _bearer(request)
        if token is None:
            raise Problem(
                401, "an 'Authorization: Bearer <token>' header is required", headers=_CHALLENGE
            )
        found = await self.tokens.authenticate(token)
        if found is None:
            self.throttle.failed(client)
            raise Problem(
                401,
                "the token is unknown or revoked",
                headers={
                    **_CHALLENGE,
                    "WWW-Authenticate": 'Bearer realm="polyfleet", error="invalid_token"',
                },
            )
        principal = Principal.of(found)
        if not principal.may(needed):
            raise Problem(
                403, f"this {principal.role} token may not use this route (it needs {needed})"
            )
        return principal
