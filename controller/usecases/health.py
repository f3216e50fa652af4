"""The fleet health check: classify every inventory device (of a site) from the store."""

from __future__ import annotations

from datetime import datetime

from controller.health import FleetHealth, HealthPolicy, classify, clean_verdict, is_networked
from inventory.async_engine import AsyncEngine
from inventory.device_queries import DeviceFilter
from inventory.health_rows import CleanRead, devices_with_status, licenses_by_serial


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
    required, only notable licenses are loaded and the store counts the rest, and tells which
    devices were read cleanly and recently with nothing notable: those are OK without being
    classified one by one, so 100,000 healthy devices cost one short row each.
    `matching` narrows the devices further (the API's filters, or one page of them).
    """
    full = all_licenses or bool(policy.required_features)
    notable_before = None if full else now + policy.warn
    licensed = await licenses_by_serial(
        engine, site, notable_before=notable_before, matching=matching
    )
    fleet = FleetHealth(checked_at=now)
    reasons: dict[tuple[int, str, int], str] = {}
    rows = devices_with_status(
        engine,
        site,
        licensed,
        summarized=not full,
        clean_since=None if full else now - policy.max_age,
        notable_before=notable_before,
        matching=matching,
    )
    async for batch in rows:
        for row in batch:
            if isinstance(row, CleanRead) and is_networked(row.device):
                fleet.add(clean_verdict(row, now, reasons))
            elif isinstance(row, CleanRead):  # analog: its own rules
                device = row.device
                fleet.add(classify(device, None, now, policy, row.summary))
            else:
                device, status, summary = row
                fleet.add(classify(device, status, now, policy, summary))
    return fleet
