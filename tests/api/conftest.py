"""Fixtures of the API tests: the app over the store fixture (SQLite and PostgreSQL), a client
on loopback, and tokens of each role."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from controller.api.app import create_app
from controller.api.auth import FailedAuthThrottle
from inventory.store import InventoryStore
from inventory.token_store import Role, TokenStore

MakeToken = Callable[..., Awaitable[str]]
Client = TestClient[web.Request, web.Application]


class FakeClock:
    """The throttle's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def throttle(clock: FakeClock) -> FailedAuthThrottle:
    return FailedAuthThrottle(limit=5, window=600.0, clock=clock)


@pytest.fixture
async def client(store: InventoryStore, throttle: FailedAuthThrottle) -> AsyncIterator[Client]:
    app = create_app(store, throttle=throttle)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


@pytest.fixture
def make_token(store: InventoryStore) -> MakeToken:
    """`await make_token(Role.VIEWER)` -> a live token's text."""

    async def make(role: Role, site: str | None = None, name: str | None = None) -> str:
        _, secret = await TokenStore(store.engine).create(role, site=site, name=name)
        return secret

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
