"""The device listing and detail of the API: inventory rows with their health verdicts.

Without a health filter (or status order) the store pages in SQL and only the page is
classified, so a page of a 100,000-device store costs a page. Filtering or ordering by health
needs every matching device classified first (health depends on now and the policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from controller.health import DeviceHealth, Health, HealthPolicy, classify
from controller.usecases.health import check_fleet
from inventory.device_queries import (
    DeviceFilter,
    DeviceSort,
    devices_by_serial,
    ordered_serials,
    page_devices,
)
from inventory.models import Device
from inventory.observation_history import HistoryPage
from inventory.observation_store import DeviceStatus, ObservationStore
from inventory.store import InventoryStore

Order = DeviceSort | Literal["status"]


@dataclass(frozen=True, slots=True)
class DeviceListing:
    """One page: each device with its latest status (None: never scanned) and verdict."""

    total: int
    rows: list[tuple[Device, DeviceStatus | None, DeviceHealth]]


async def _with_health(
    store: InventoryStore, page: list[Device], now: datetime, policy: HealthPolicy
) -> list[tuple[Device, DeviceStatus | None, DeviceHealth]]:
    if not page:
        return []
    statuses = await ObservationStore(store.engine).statuses([d.serial for d in page])
    rows = []
    for device in page:
        status = statuses.get(device.serial)
        rows.append((device, status, classify(device, status, now, policy)))
    return rows


async def list_devices(
    store: InventoryStore,
    matching: DeviceFilter,
    *,
    status: Health | None,
    sort: Order,
    descending: bool,
    limit: int,
    offset: int,
    now: datetime,
    policy: HealthPolicy,
) -> DeviceListing:
    """The page [offset, offset+limit) of the devices `matching` (and of health `status`)."""
    engine = store.engine
    if status is None and sort != "status":
        total, page = await page_devices(
            engine, matching, sort=DeviceSort(sort), descending=descending, limit=limit,
            offset=offset,
        )  # fmt: skip
        return DeviceListing(total, await _with_health(store, page, now, policy))
    fleet = await check_fleet(engine, None, now, policy, matching=matching)
    verdicts = {verdict.serial: verdict for verdict in fleet.devices}
    if sort == "status":
        ordered = sorted(verdicts, key=lambda s: (verdicts[s].status.rank, s), reverse=descending)
    else:
        ordered = await ordered_serials(engine, matching, DeviceSort(sort), descending)
    selected = [
        s for s in ordered if s in verdicts and (status is None or verdicts[s].status is status)
    ]
    chosen = selected[offset : offset + limit]
    found = await devices_by_serial(engine, chosen)
    page = [found[serial] for serial in chosen if serial in found]
    return DeviceListing(len(selected), await _with_health(store, page, now, policy))


async def device_detail(
    store: InventoryStore, device_id: str, now: datetime, policy: HealthPolicy
) -> tuple[Device, DeviceStatus | None, DeviceHealth]:
    """One device (serial or MAC, any spelling) with its latest status and verdict."""
    device = await store.get_device(device_id)
    [row] = await _with_health(store, [device], now, policy)
    return row


async def device_history(
    store: InventoryStore, device_id: str, *, limit: int, offset: int = 0
) -> tuple[Device, HistoryPage]:
    """One device (serial or MAC, any spelling) and its kept observations [offset,
    offset+limit), newest first."""
    device = await store.get_device(device_id)
    return device, await history_of(store, device.serial, limit=limit, offset=offset)


async def history_of(
    store: InventoryStore, serial: str, *, limit: int, offset: int = 0
) -> HistoryPage:
    """The kept observations [offset, offset+limit) of the device with `serial`, newest first."""
    observations = ObservationStore(store.engine, keep=store.observation_history)
    return await observations.history(serial, limit=limit, offset=offset)
