"""The fleet health check: classify every inventory device (of a site) from the store."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from controller.health import FleetHealth, HealthPolicy, classify
from inventory.device_queries import DeviceFilter
from inventory.health_rows import devices_with_status, licenses_by_serial


async def check_fleet(
    engine: AsyncEngine,
    site: str | None,
    now: datetime,
    policy: HealthPolicy,
    *,
    all_licenses: bool = False,
    matching: DeviceFilter | None = None,
) -> FleetHealth:
    """Classify every inventory device (of `site`) from the store.

    Unless `all_licenses` is asked for (Prometheus shows every license) or features are
    required, only notable licenses are loaded and the store counts the rest: a fleet of
    100,000 healthy devices then costs one row per device, not one per license.
    `matching` narrows the devices further (the API's filters, or one page of them).
    """
    full = all_licenses or bool(policy.required_features)
    notable_before = None if full else now + policy.warn
    licensed = await licenses_by_serial(
        engine, site, notable_before=notable_before, matching=matching
    )
    fleet = FleetHealth(now)
    async for batch in devices_with_status(
        engine, site, licensed, summarized=not full, matching=matching
    ):
        for device, status, summary in batch:
            fleet.add(classify(device, status, now, policy, summary))
    return fleet
