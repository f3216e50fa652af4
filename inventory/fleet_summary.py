"""The fleet overview's aggregates, counted by the store (one query each), so the dashboard's
overview stays cheap on a 100,000-device store: devices by product group and health status,
those whose license state could not be read, licenses expiring within a number of days, and
when the last scan observed anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa

from inventory.async_engine import AsyncEngine
from inventory.device_queries import DeviceFilter
from inventory.health_rows import FastTimestamps
from inventory.health_sql import NOT_OK, RANK_OK, RANK_UNKNOWN, StatusRules, scored, unscanned
from inventory.models import LicenseRead, LicenseState
from inventory.observation_store import license_read_from_row
from inventory.schema import device_status, devices, licenses


class ExpiringWindow(NamedTuple):
    """Active licenses (and the devices holding them) that expire within `days` from now."""

    days: int
    licenses: int
    devices: int


class Unreadable(NamedTuple):
    """A device not OK whose last scan could not read its license state."""

    serial: str
    mac: str | None
    site: str | None
    rank: int
    read: LicenseRead


async def status_by_group(
    engine: AsyncEngine, rules: StatusRules, matching: DeviceFilter
) -> tuple[dict[str | None, dict[int, int]], int]:
    """Devices per product group (None: not known yet) and status rank (every rank present),
    and how many are not OK with a license state the last scan could not read."""
    bad = scored(rules, matching, NOT_OK)
    group = devices.c.product_group
    weighed = (
        sa.select(group, bad.c.rank, sa.func.count(), sa.func.sum(bad.c.unreadable))
        .select_from(bad.join(devices, devices.c.serial == bad.c.serial))
        .group_by(group, bad.c.rank)
    )
    every = sa.select(group, sa.func.count()).where(matching.clause()).group_by(group)
    found: dict[str | None, dict[int, int]] = {}

    def add(name: str | None, rank: int, count: int) -> None:
        """`count` devices of group `name` have status `rank` (not OK: taken from the OK)."""
        counts = found.setdefault(name, dict.fromkeys((RANK_OK, *sorted(NOT_OK)), 0))
        counts[rank] += count
        if rank != RANK_OK:
            counts[RANK_OK] -= count

    unreadable = 0
    async with engine.connect() as conn:
        for name, count in (await conn.execute(every)).all():
            add(name, RANK_OK, int(count))
        for name, rank, count, unread in (await conn.execute(weighed)).all():
            add(name, int(rank), int(count))
            unreadable += int(unread or 0)
        for name, count in (await conn.execute(every.where(unscanned(rules)))).all():
            add(name, RANK_UNKNOWN, int(count))
    return found, unreadable


async def unreadable_devices(
    engine: AsyncEngine, rules: StatusRules, matching: DeviceFilter, limit: int
) -> list[Unreadable]:
    """The first `limit` by serial of the devices `status_by_group` counts as unreadable."""
    bad = scored(rules, matching, NOT_OK, unreadable_only=True)
    s = device_status.c
    query = (
        sa.select(
            devices.c.serial,
            devices.c.mac,
            devices.c.site,
            bad.c.rank,
            s.license_read_ok,
            s.license_read_call,
            s.license_read_detail,
            s.license_read_modeled,
        )
        .select_from(
            bad.join(devices, devices.c.serial == bad.c.serial).join(
                device_status, device_status.c.serial == devices.c.serial
            )
        )
        .order_by(devices.c.serial)
        .limit(limit)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    found = []
    for row in rows:
        read = license_read_from_row(row)
        if read is not None:  # unreadable: recorded, and not ok
            found.append(Unreadable(row["serial"], row["mac"], row["site"], row["rank"], read))
    return found


async def expiring_licenses(
    engine: AsyncEngine, now: datetime, windows: Sequence[int], site: str | None = None
) -> list[ExpiringWindow]:
    """For each window of days: active licenses expiring after `now` and within the window.

    One range of the expiry index for all windows; the state is tested on the rows found
    (`|| ''`: not through the state index, which would read nearly every license)."""
    if not windows:
        return []
    lic = licenses.c
    longest = now + timedelta(days=max(windows, default=0))
    counts: list[sa.ColumnElement[Any]] = []
    for days in windows:
        within = lic.expires_at <= now + timedelta(days=days)
        counts += [
            sa.func.count().filter(within),
            sa.func.count(sa.distinct(lic.serial)).filter(within),
        ]
    query = sa.select(*counts).where(
        (lic.state + "") == LicenseState.ACTIVE.value,
        lic.expires_at > now,
        lic.expires_at <= longest,
    )
    if site is not None:
        query = query.join(devices, devices.c.serial == lic.serial).where(devices.c.site == site)
    async with engine.connect() as conn:
        found = (await conn.execute(query)).one()
    return [
        ExpiringWindow(days, int(found[2 * i]), int(found[2 * i + 1]))
        for i, days in enumerate(windows)
    ]


async def last_observation(engine: AsyncEngine, site: str | None = None) -> datetime | None:
    """When a scan last recorded a device's state (None: never scanned)."""
    ts = FastTimestamps(engine.dialect.name)
    query = sa.select(ts.column(sa.func.max(device_status.c.observed_at).label("observed_at")))
    if site is not None:
        query = query.join(devices, devices.c.serial == device_status.c.serial).where(
            devices.c.site == site
        )
    async with engine.connect() as conn:
        return ts.value((await conn.execute(query)).scalar())
