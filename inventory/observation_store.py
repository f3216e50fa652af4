"""What scans saw: the latest status of each device and the license state of its features.

A scan writes results in batches as they arrive, so an interrupted scan keeps what it read. An
unreachable device keeps its last known licenses (with their old `observed_at`): health decides
how stale is too stale. A device that answered with someone else's identity is recorded as a
mismatch and its inventory record is left alone. Every recorded observation is also appended to
the device's history (`inventory.observation_history`), which keeps its newest `keep`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from inventory.async_engine import AsyncEngine

# re-exported: inventory.health_rows reads the license_read_* columns through this module
from inventory.license_read_columns import license_read_from_row as license_read_from_row
from inventory.license_read_columns import license_read_row
from inventory.models import License, LicenseRead, LicenseState
from inventory.observation_history import DEFAULT_KEEP, HistoryPage, append_history, read_history
from inventory.schema import device_status, devices, licenses
from inventory.value_lists import one_of

_CHUNK = 900


@dataclass(frozen=True, slots=True)
class DeviceObservation:
    """One device as one scan saw it."""

    serial: str
    observed_at: datetime
    reachable: bool
    driver: str | None = None
    error_kind: str | None = None
    error: str | None = None
    reported_serial: str | None = None
    reported_mac: str | None = None
    reported_model: str | None = None
    firmware: str | None = None
    identity_mismatch: str | None = None
    licenses: Sequence[License] | None = None
    """None when licenses were not read (keep the stored ones); [] when the device has none."""
    license_read: LicenseRead | None = None
    """Whether the license state was read, else the call that failed and what came back."""


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """The stored latest observation of a device, with its licenses."""

    serial: str
    observed_at: datetime
    reachable: bool
    driver: str | None
    error_kind: str | None
    error: str | None
    identity_mismatch: str | None
    licenses: list[License] = field(default_factory=list)
    license_read: LicenseRead | None = None
    """None for observations stored before scans recorded it (or that did not try)."""


class ObservationStore:
    """Writes and reads scan observations; `keep` is how many each device's history keeps."""

    def __init__(self, engine: AsyncEngine, *, keep: int = DEFAULT_KEEP) -> None:
        if keep < 1:
            raise ValueError(f"observation history must keep at least 1 per device, not {keep}")
        self.engine = engine
        self.keep = keep

    async def record(self, observations: Sequence[DeviceObservation]) -> None:
        """Store a batch of observations, and append them to the history, in one transaction."""
        if not observations:
            return
        serials = [o.serial for o in observations]
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Two recorders of one device (two controllers scanning a site, a scan and a
                # re-activation) would both delete, then both insert its status row: the
                # devices' rows, locked in one order, make the second wait for the first.
                ordered = sorted(set(serials))
                for start in range(0, len(ordered), _CHUNK):
                    chunk = ordered[start : start + _CHUNK]
                    await conn.execute(
                        sa.select(devices.c.serial)
                        .where(devices.c.serial.in_(chunk))
                        .order_by(devices.c.serial)
                        .with_for_update()
                    )
            for start in range(0, len(serials), _CHUNK):
                chunk = serials[start : start + _CHUNK]
                await conn.execute(device_status.delete().where(device_status.c.serial.in_(chunk)))
            await conn.execute(device_status.insert(), [_status_row(o) for o in observations])
            refreshed = [o for o in observations if o.licenses is not None]
            refreshed_serials = [o.serial for o in refreshed]
            for start in range(0, len(refreshed_serials), _CHUNK):
                chunk = refreshed_serials[start : start + _CHUNK]
                await conn.execute(licenses.delete().where(licenses.c.serial.in_(chunk)))
            license_rows = [_license_row(lic) for o in refreshed for lic in (o.licenses or ())]
            if license_rows:
                await conn.execute(licenses.insert(), license_rows)
            seen = [o for o in observations if o.reachable and o.identity_mismatch is None]
            if seen:
                await conn.execute(
                    devices.update()
                    .where(devices.c.serial == sa.bindparam("_serial"))
                    .values(
                        last_seen=sa.bindparam("_seen"),
                        first_seen=sa.func.coalesce(devices.c.first_seen, sa.bindparam("_seen")),
                        firmware=sa.func.coalesce(sa.bindparam("_firmware"), devices.c.firmware),
                        driver=sa.func.coalesce(devices.c.driver, sa.bindparam("_driver")),
                    ),
                    [
                        {
                            "_serial": o.serial,
                            "_seen": o.observed_at,
                            "_firmware": o.firmware,
                            "_driver": o.driver,
                        }
                        for o in seen
                    ],
                )
            await append_history(conn, observations, self.keep)

    async def statuses(self, serials: Sequence[str] | None = None) -> dict[str, DeviceStatus]:
        """Latest status (with licenses) per serial, for all devices or the given ones."""
        query = sa.select(device_status)
        lic_query = sa.select(licenses).order_by(licenses.c.serial, licenses.c.feature)
        if serials is not None:
            dialect = self.engine.dialect.name
            query = query.where(one_of(device_status.c.serial, serials, dialect))
            lic_query = lic_query.where(one_of(licenses.c.serial, serials, dialect))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
            lic_rows = (await conn.execute(lic_query)).mappings().all()
        result = {row["serial"]: status_from_row(row) for row in rows}
        for row in lic_rows:
            status = result.get(row["serial"])
            if status is not None:
                status.licenses.append(_license_from_row(row))
        return result

    async def history(self, serial: str, *, limit: int, offset: int = 0) -> HistoryPage:
        """The device's newest `keep` observations, [offset, offset+limit) of them, newest
        first."""
        return await read_history(self.engine, serial, keep=self.keep, limit=limit, offset=offset)

    async def licenses_of(self, serial: str) -> list[License]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(licenses)
                    .where(licenses.c.serial == serial)
                    .order_by(licenses.c.feature)
                )
            ).mappings()
            return [_license_from_row(row) for row in rows]


def status_from_row(
    row: Any, *, prefix: str = "", with_licenses: list[License] | None = None
) -> DeviceStatus:
    """The DeviceStatus of a `device_status` row (a mapping), its columns named with `prefix`
    (but the license_read_* ones), with `with_licenses`."""
    return DeviceStatus(
        serial=row[prefix + "serial"],
        observed_at=row[prefix + "observed_at"],
        reachable=row[prefix + "reachable"],
        driver=row[prefix + "driver"],
        error_kind=row[prefix + "error_kind"],
        error=row[prefix + "error"],
        identity_mismatch=row[prefix + "identity_mismatch"],
        licenses=with_licenses or [],
        license_read=license_read_from_row(row),
    )


def _status_row(o: DeviceObservation) -> dict[str, Any]:
    return {
        "serial": o.serial,
        "observed_at": o.observed_at,
        "reachable": o.reachable,
        "driver": o.driver,
        "error_kind": o.error_kind,
        "error": o.error,
        "reported_serial": o.reported_serial,
        "reported_mac": o.reported_mac,
        "reported_model": o.reported_model,
        "identity_mismatch": o.identity_mismatch,
        **license_read_row(o.license_read),
    }


def _license_row(lic: License) -> dict[str, Any]:
    return {
        "serial": lic.serial,
        "feature": lic.feature,
        "state": lic.state.value,
        "expires_at": lic.expires_at,
        "source": lic.source,
        "observed_at": lic.observed_at,
    }


def _license_from_row(row: sa.RowMapping) -> License:
    return License(
        serial=row["serial"],
        feature=row["feature"],
        state=LicenseState(row["state"]),
        expires_at=row["expires_at"],
        source=row["source"],
        observed_at=row["observed_at"],
    )
