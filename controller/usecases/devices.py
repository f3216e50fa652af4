"""The device listing and detail of the API: inventory rows with their health verdicts.

The store pages in SQL and only the page is classified (for the reasons), so a page of a
100,000-device store costs a page. Filtering or ordering by health has the store decide every
matching device's status (inventory.health_sql, by the rules of `classify` for now and the
policy) and page by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from controller.health import BY_RANK, DeviceHealth, Health, HealthPolicy, classify
from controller.usecases.health import status_rules
from inventory.async_engine import AsyncEngine
from inventory.device_queries import (
    DeviceFilter,
    DeviceSort,
    count_matching,
    page_devices,
    page_with_statuses,
    total_and_page,
)
from inventory.health_sql import StatusRules, count_of_rank, of_rank, page_of_rank
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
    if status is None and sort == DeviceSort.SERIAL:
        fast = await page_with_statuses(
            engine, matching, descending=descending, limit=limit, offset=offset
        )
        if fast is not None:
            total, paged = fast
            rows = [(device, seen, classify(device, seen, now, policy)) for device, seen in paged]
            return DeviceListing(total, rows)
    if status is None and sort != "status":
        total, page = await total_and_page(
            engine, matching, sort=DeviceSort(sort), descending=descending, limit=limit,
            offset=offset,
        )  # fmt: skip
        return DeviceListing(total, await _with_health(store, page, now, policy))
    rules = await status_rules(engine, now, policy)
    order = DeviceSort.SERIAL if sort == "status" else DeviceSort(sort)
    if status is not None:
        page, total = await page_of_rank(
            engine, rules, matching, status.rank, sort=order, descending=descending,
            limit=limit, offset=offset,
        )  # fmt: skip
    else:  # by status: worst last (ascending) or first, each status's devices by serial
        total = await count_matching(engine, matching)
        ranks = sorted(BY_RANK, reverse=descending)
        page = await _page_by_status(
            engine, matching, rules, ranks, descending=descending, limit=limit, offset=offset
        )
    return DeviceListing(total, await _with_health(store, page, now, policy))


async def _page_by_status(
    engine: AsyncEngine,
    matching: DeviceFilter,
    rules: StatusRules,
    ranks: list[int],
    *,
    descending: bool,
    limit: int,
    offset: int,
) -> list[Device]:
    """The page of the devices of `ranks` in turn, each status's devices by serial."""
    page: list[Device] = []
    skip = offset
    for rank in ranks:
        wanted = limit - len(page)
        if wanted <= 0:
            break
        part = await page_devices(
            engine, matching, descending=descending, limit=wanted, offset=skip,
            narrow=of_rank(rules, matching, rank),
        )  # fmt: skip
        page += part
        if part or not skip:
            skip = 0
        else:  # the offset lies past this status's devices: counted only then
            skip = max(0, skip - await count_of_rank(engine, rules, matching, rank))
    return page


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
