"""The fleet overview's aggregates, counted by the store (one query each), so the dashboard's
overview stays cheap on a 100,000-device store: product group per device, licenses expiring
within a number of days, and when the last scan observed anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa

from inventory.async_engine import AsyncEngine
from inventory.health_rows import FastTimestamps
from inventory.models import LicenseState
from inventory.schema import device_status, devices, licenses


class ExpiringWindow(NamedTuple):
    """Active licenses (and the devices holding them) that expire within `days` from now."""

    days: int
    licenses: int
    devices: int


async def product_groups(engine: AsyncEngine, site: str | None = None) -> dict[str, str | None]:
    """Each device's product group by serial (None: not known yet)."""
    query = sa.select(devices.c.serial, devices.c.product_group)
    if site is not None:
        query = query.where(devices.c.site == site)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {row.serial: row.product_group for row in rows}


async def expiring_licenses(
    engine: AsyncEngine, now: datetime, windows: Sequence[int], site: str | None = None
) -> list[ExpiringWindow]:
    """For each window of days: active licenses expiring after `now` and within the window."""
    found = []
    async with engine.connect() as conn:
        for days in windows:
            query = sa.select(sa.func.count(), sa.func.count(sa.distinct(licenses.c.serial))).where(
                licenses.c.state == LicenseState.ACTIVE.value,
                licenses.c.expires_at > now,
                licenses.c.expires_at <= now + timedelta(days=days),
            )
            if site is not None:
                query = query.join(devices, devices.c.serial == licenses.c.serial).where(
                    devices.c.site == site
                )
            count, holders = (await conn.execute(query)).one()
            found.append(ExpiringWindow(days, count, holders))
    return found


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
