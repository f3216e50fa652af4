"""Devices, stored statuses and fleets with a fixed `now`, for the health and rendering tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.health import DeviceHealth, FleetHealth, Health, HealthPolicy
from inventory.models import Device, License, LicenseRead, LicenseState
from inventory.observation_store import DeviceStatus

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = HealthPolicy()


def device(serial: str = "SN1", **fields: object) -> Device:
    values: dict[str, object] = {
        "mac": "0004f2000001",
        "model": "VVX 450",
        "driver": "poly-uc",
        "site": "hq",
    }
    values.update(fields)
    return Device.model_validate({"serial": serial, **values})


def lic(
    feature: str = "base",
    state: LicenseState = LicenseState.ACTIVE,
    expires_at: datetime | None = None,
    observed_at: datetime = NOW - timedelta(hours=1),
    serial: str = "SN1",
) -> License:
    return License(
        serial=serial,
        feature=feature,
        state=state,
        expires_at=expires_at,
        source="test",
        observed_at=observed_at,
    )


def status(
    *licenses: License,
    observed_at: datetime = NOW - timedelta(hours=1),
    reachable: bool = True,
    error_kind: str | None = None,
    error: str | None = None,
    mismatch: str | None = None,
    read: LicenseRead | None = None,
) -> DeviceStatus:
    return DeviceStatus(
        serial="SN1",
        observed_at=observed_at,
        reachable=reachable,
        driver="poly-uc",
        error_kind=error_kind,
        error=error,
        identity_mismatch=mismatch,
        licenses=list(licenses),
        license_read=read,
    )


UNREAD = LicenseRead(
    ok=False, call="GET /api/v1/mgmt/license/info", detail="HTTP 404", modeled=True
)


def fleet_of(*statuses: Health) -> FleetHealth:
    fleet = FleetHealth(checked_at=NOW)
    for index, health in enumerate(statuses):
        fleet.add(DeviceHealth(f"S{index}", None, None, health, "why"))
    return fleet
