"""The fleet health check: classify every inventory device (of a site) from the store; and the
rules by which the store decides statuses itself (the API's filters, sorts and counts)."""

from __future__ import annotations

from datetime import datetime

from controller.health import (
    DeviceHealth,
    FleetHealth,
    HealthPolicy,
    OkReasons,
    classify,
    clean_verdict,
    is_networked,
    model_networked,
)
from device_drivers.names import DriverName
from inventory.async_engine import AsyncEngine
from inventory.device_queries import DeviceFilter
from inventory.health_rows import CleanRead, devices_with_status, licenses_by_serial
from inventory.health_sql import StatusRules, model_names


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
    reasons = OkReasons(now)
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
        verdicts: list[DeviceHealth] = []
        verdict = verdicts.append
        for row in batch:
            if isinstance(row, CleanRead):
                if is_networked(row):
                    verdict(clean_verdict(row, reasons))
                else:  # analog: its own rules
                    verdict(classify(row, None, now, policy, row.summary))
            else:
                device, status, summary = row
                verdict(classify(device, status, now, policy, summary))
        fleet.extend(verdicts)
    return fleet


async def status_rules(engine: AsyncEngine, now: datetime, policy: HealthPolicy) -> StatusRules:
    """`policy` at `now` for the store: what `classify` decides by Python alone (a model's
    product family, the policy's model patterns) resolved for the store's model names, which
    are few."""
    models = await model_names(engine)
    declared = policy.no_licensed_features
    return StatusRules(
        now=now,
        warn=policy.warn,
        max_age=policy.max_age,
        required_features=policy.required_features,
        analog_driver=DriverName.ANALOG.value,
        not_networked_models=frozenset(m for m in models if m and not model_networked(m)),
        no_license_models=frozenset(
            m for m in models if m is not None and declared is not None and declared(m)
        ),
        no_license_unmodelled=bool(declared is not None and declared(None)),
    )
