"""The device listing's one-statement path on PostgreSQL (inventory.pg_direct) answers exactly
what the general path answers: the same `GET /devices` JSON for the same pages and filters, on
a fleet with every health case (test_health_sql's), tags, several licenses, unread and stale
observations and never-scanned devices, under several policies and moments."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

import controller.usecases.devices as device_usecases
from controller.api.routes.devices import device_page
from controller.health import HealthPolicy
from controller.usecases.devices import list_devices
from inventory.database import resolve_db
from inventory.device_queries import DeviceFilter, DeviceSort, page_with_statuses
from inventory.models import Device
from inventory.observation_store import ObservationStore
from inventory.store import InventoryStore
from tests.integration.test_health_sql import (
    BOTH,
    DAY,
    MOMENTS,
    POLICIES,
    fill,
    seen,
)

TAGGED = [
    Device(serial="TAGGED1", site="lab", model="VVX 450", host="10.0.0.9",
           tags={"room": "1.01", "owner": "ops"}),
    Device(serial="TAGGED2", site="hq", model="G7500", product_group="video", host="10.0.0.8",
           tags={"room": "2.02"}, mac="0004f2000099"),
]  # fmt: skip
FILTERS = [
    DeviceFilter(),
    DeviceFilter(site="lab"),
    DeviceFilter(site="hq"),
    DeviceFilter(site="nowhere"),
    DeviceFilter(model="VVX 450"),
    DeviceFilter(product_group="video"),
    DeviceFilter(site="lab", model="VVX 450", product_group="soundpoint-ip"),
]


async def _fleet(store: InventoryStore) -> None:
    await fill(store)
    await store.upsert_devices(TAGGED)
    three = (*BOTH, ("conference", BOTH[0][1], 40 * DAY))
    await ObservationStore(store.engine).record([seen("TAGGED2", *three)])


async def _page_json(
    store: InventoryStore,
    matching: DeviceFilter,
    now: datetime,
    policy: HealthPolicy,
    *,
    descending: bool,
    limit: int,
    offset: int,
) -> object:
    """The `GET /devices` body the route builds from this listing, parsed."""
    listing = await list_devices(
        store, matching, status=None, sort=DeviceSort.SERIAL, descending=descending,
        limit=limit, offset=offset, now=now, policy=policy,
    )  # fmt: skip
    page = device_page(listing, limit=limit, offset=offset)
    return json.loads(page.model_dump_json(by_alias=True))


async def test_sqlite_has_no_direct_path(tmp_path: Path) -> None:
    """On SQLite the general path answers every listing."""
    async with await InventoryStore.open(resolve_db(str(tmp_path / "polyfleet.db"))) as store:
        await _fleet(store)
        found = await page_with_statuses(
            store.engine, DeviceFilter(), descending=False, limit=5, offset=0
        )
    assert found is None


async def test_the_direct_listing_answers_as_the_general_path(
    pg_store: InventoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = pg_store
    await _fleet(store)

    async def general_only(*_args: object, **_kwargs: object) -> None:
        return None

    compared = 0
    for policy in POLICIES.values():
        for now in MOMENTS:
            for matching in FILTERS:
                for descending in (False, True):
                    for offset in (0, 7, 21, 60):
                        args = (store, matching, now, policy)
                        kwargs = {"descending": descending, "limit": 7, "offset": offset}
                        direct = await _page_json(*args, **kwargs)  # type: ignore[arg-type]
                        with monkeypatch.context() as patched:
                            patched.setattr(device_usecases, "page_with_statuses", general_only)
                            general = await _page_json(*args, **kwargs)  # type: ignore[arg-type]
                        assert direct == general, (matching, descending, offset)
                        compared += len(direct["items"])  # type: ignore[index]
    assert compared > 1000  # the pages were not all empty


async def test_the_direct_listing_is_taken_for_equality_filters_only(
    pg_store: InventoryStore,
) -> None:
    store = pg_store
    await _fleet(store)
    direct = await page_with_statuses(
        store.engine, DeviceFilter(site="hq"), descending=False, limit=50, offset=0
    )
    assert direct is not None
    total, rows = direct
    assert total == len(rows) == sum(1 for d in await store.list_devices() if d.site == "hq")
    tagged = {device.serial: (device, status) for device, status in rows}["TAGGED2"]
    assert tagged[0].tags == {"room": "2.02"}
    assert tagged[1] is not None
    assert [lic.feature for lic in tagged[1].licenses] == ["base", "conference", "video"]
    for matching in (DeviceFilter(q="TAG"), DeviceFilter(serials=("TAGGED1",))):
        assert await page_with_statuses(
            store.engine, matching, descending=False, limit=5, offset=0
        ) is None  # fmt: skip
