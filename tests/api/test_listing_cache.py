"""`GET /devices` from the controller's answer cache (PostgreSQL): every answer is one the store
would give. A write by another process shows on the next request, a license crossing its expiry
changes the verdict, scopes never share an answer, the token is checked every time. SQLite does
not cache: the same requests show the same writes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from controller.api.app import create_app
from controller.api.auth import FailedAuthThrottle
from controller.api.routes.devices import LISTING_CACHE
from controller.api.services import SERVICES
from controller.settings import PolyfleetSettings, ServeSettings
from inventory.database import DatabaseTarget
from inventory.models import Device, License, LicenseState
from inventory.observation_store import DeviceObservation, ObservationStore
from inventory.schema import devices
from inventory.store import InventoryStore
from inventory.token_store import Role, TokenStore, token_id_of
from tests.api.conftest import Client, MakeToken, bearer
from tests.api.fleet import seed_fleet

LISTING = "/api/v1/devices"
ON_POSTGRES = pytest.mark.parametrize(
    "db_target", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
"""What only the cache does: PostgreSQL (SQLite does not cache)."""


@pytest.fixture
async def client(store: InventoryStore, throttle: FailedAuthThrottle) -> AsyncIterator[Client]:
    """The app with a long max age: only the generation and the verdicts' times expire an
    answer here."""
    settings = PolyfleetSettings(serve=ServeSettings(list_cache_max_age=60))
    app = create_app(store, settings=settings, throttle=throttle)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


@pytest.fixture
async def other_process(db_target: DatabaseTarget) -> AsyncIterator[InventoryStore]:
    """The same store through an engine of its own, as another controller or the CLI."""
    async with await InventoryStore.open(db_target) as opened:
        yield opened


def cached(client: Client) -> bool:
    return client.app[LISTING_CACHE] is not None


async def results(client: Client) -> dict[str, int]:
    """The listing's cache counters of /metrics, by result."""
    text = await client.app[SERVICES].metrics.render()
    found = re.findall(
        r'polyfleet_response_cache_total\{result="(\w+)",route="[^"]+"\} (\d+)', text
    )
    return {result: int(count) for result, count in found}


async def page(client: Client, token: str, **params: Any) -> Any:
    response = await client.get(LISTING, headers=bearer(token), params=params)
    assert response.status == 200, await response.text()
    return await response.json()


def models(listing: Any) -> dict[str, str]:
    return {item["serial"]: item["model"] for item in listing["items"]}


async def test_a_write_by_another_process_shows_on_the_next_request(
    client: Client, store: InventoryStore, other_process: InventoryStore, make_token: MakeToken
) -> None:
    await seed_fleet(store)
    token = await make_token(Role.VIEWER)
    first = await page(client, token, site="hq")
    assert await page(client, token, site="hq") == first
    if cached(client):
        assert (await results(client))["hit"] == 1
    else:
        assert (await results(client)) == {"bypass": 2}
    moved = (await other_process.get_device("A1000")).model_copy(update={"model": "VVX 601"})
    await other_process.update_device(moved)
    assert models(await page(client, token, site="hq"))["A1000"] == "VVX 601"
    await other_process.add_device(Device(serial="A1009", site="hq", model="CCX 400"))
    after = await page(client, token, site="hq")
    assert after["total"] == first["total"] + 1
    assert models(after)["A1009"] == "CCX 400"


@ON_POSTGRES
async def test_a_license_crossing_its_expiry_changes_the_status(
    client: Client, store: InventoryStore, make_token: MakeToken
) -> None:
    now = datetime.now(UTC)
    await store.add_device(Device(serial="E1", site="hq", model="VVX 450", driver="poly-uc"))
    license_ = License(
        serial="E1", feature="base", state=LicenseState.ACTIVE,
        expires_at=now + timedelta(hours=2), source="test", observed_at=now,
    )  # fmt: skip
    seen = DeviceObservation(
        serial="E1", observed_at=now, reachable=True, driver="poly-uc", licenses=[license_]
    )
    await ObservationStore(store.engine).record([seen])
    token = await make_token(Role.VIEWER)
    for _ in range(2):
        assert (await page(client, token, site="hq"))["items"][0]["status"] == "WARNING"
    assert (await results(client))["hit"] == 1
    cache = client.app[LISTING_CACHE]
    assert cache is not None
    cache.clock = lambda: datetime.now(UTC) + timedelta(hours=3)  # the listing's `now` too
    after = (await page(client, token, site="hq"))["items"][0]
    assert after["status"] == "CRITICAL", after["reason"]


@ON_POSTGRES
async def test_scopes_never_share_an_answer(
    client: Client, store: InventoryStore, make_token: MakeToken
) -> None:
    await seed_fleet(store)
    everywhere = await make_token(Role.VIEWER)
    await page(client, everywhere, site="hq")
    await page(client, everywhere, site="hq")
    at_hq, at_branch = (
        await make_token(Role.VIEWER, site="hq"),
        await make_token(Role.VIEWER, site="branch"),
    )
    admin = await make_token(Role.ADMIN)
    for token in (at_hq, at_branch, admin):
        await page(client, token, site="hq")
    assert await results(client) == {"hit": 1, "miss": 4}  # one per scope, none shared


@ON_POSTGRES
async def test_an_answer_computed_while_a_write_was_uncommitted_expires_at_the_max_age(
    store: InventoryStore, other_process: InventoryStore, make_token: MakeToken
) -> None:
    """The write advanced the generation before the answer was computed, and commits after:
    the next request has the same generation, and only the max age shows the write."""
    await seed_fleet(store)
    token = await make_token(Role.VIEWER)
    settings = PolyfleetSettings(serve=ServeSettings(list_cache_max_age=0.001))
    app = create_app(store, settings=settings)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        async with other_process.engine.begin() as conn:
            await conn.execute(
                devices.update().where(devices.c.serial == "A1000").values(model="VVX 601")
            )
            assert models(await page(client, token, site="hq"))["A1000"] == "VVX 450"
        assert models(await page(client, token, site="hq"))["A1000"] == "VVX 601"


async def test_a_revoked_token_is_refused_although_its_answer_is_cached(
    client: Client, store: InventoryStore, other_process: InventoryStore, make_token: MakeToken
) -> None:
    await seed_fleet(store)
    token = await make_token(Role.VIEWER)
    await page(client, token, site="hq")
    await page(client, token, site="hq")
    token_id = token_id_of(token)
    assert token_id is not None
    await TokenStore(other_process.engine).revoke(token_id)
    response = await client.get(LISTING, headers=bearer(token), params={"site": "hq"})
    assert response.status == 401


async def test_an_unchanged_answer_is_not_sent_again(
    client: Client, store: InventoryStore, make_token: MakeToken
) -> None:
    await seed_fleet(store)
    token = await make_token(Role.VIEWER)
    first = await client.get(LISTING, headers=bearer(token))
    etag = first.headers["ETag"]
    again = await client.get(LISTING, headers={**bearer(token), "If-None-Match": etag})
    assert (again.status, again.headers["ETag"], await again.read()) == (304, etag, b"")
    await store.add_device(Device(serial="Z9", site="hq"))
    changed = await client.get(LISTING, headers={**bearer(token), "If-None-Match": etag})
    assert changed.status == 200
    assert changed.headers["ETag"] != etag


async def test_status_queries_are_answered_uncached(
    client: Client, store: InventoryStore, make_token: MakeToken
) -> None:
    await seed_fleet(store)
    token = await make_token(Role.VIEWER)
    for _ in range(2):
        assert [d["serial"] for d in (await page(client, token, status="WARNING"))["items"]] == [
            "B2001"
        ]
    assert (await results(client)) == {"bypass": 2}
