"""The health check's reads: every device with its latest status and its (notable) licenses,
streamed in batches straight from the tables, because the check must stay fast on a
100,000-device store (the general `InventoryStore` reads build a pydantic model per row).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from inventory.device_queries import DeviceFilter
from inventory.models import LicenseRead, LicenseState
from inventory.observation_store import license_read_from_row
from inventory.schema import device_status, devices, licenses

_BATCH = 5000


class LicenseSummary(NamedTuple):
    """Aggregates over all of a device's licenses. With one, `status.licenses` may hold just
    the notable licenses (not active, or expiring within warn_days), which lets the store do
    the counting for 100,000 devices instead of Python."""

    total: int
    next_expiry: datetime | None
    newest_observation: datetime | None


class HealthDevice(NamedTuple):
    """What the health check reads of a device."""

    serial: str
    mac: str | None
    site: str | None
    model: str | None
    driver: str | None
    last_seen: datetime | None


class HealthLicense(NamedTuple):
    """What the health check reads of a license."""

    feature: str
    state: LicenseState
    expires_at: datetime | None
    observed_at: datetime


class HealthStatus(NamedTuple):
    """A device's latest stored observation, as the health check reads it."""

    observed_at: datetime
    reachable: bool
    error_kind: str | None
    error: str | None
    identity_mismatch: str | None
    licenses: Sequence[HealthLicense]
    license_read: LicenseRead | None


class FastTimestamps:
    """Timestamp columns read fast: on SQLite the stored UTC text parsed by `fromisoformat`
    (C, with the offset appended) instead of the per-value TypeDecorator, ten times faster over
    100,000s of values; on PostgreSQL the driver's aware datetimes as they come."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"

    def column(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        kind: sa.types.TypeEngine[Any] = sa.String() if self.sqlite else sa.DateTime(timezone=True)
        return sa.type_coerce(column, kind).label(column.name)

    def required(self, raw: Any) -> datetime:
        moment = self.value(raw)
        if moment is None:
            raise ValueError("NULL in a NOT NULL timestamp column")
        return moment

    def value(self, raw: Any) -> datetime | None:
        if raw is None:
            return None
        if not self.sqlite:
            moment: datetime = raw
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        try:
            return datetime.fromisoformat(raw + "+00:00")  # stored as naive UTC
        except ValueError:  # not the storage format we know: parse it the general way
            parsed = datetime.fromisoformat(raw)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


async def licenses_by_serial(
    engine: AsyncEngine,
    site: str | None,
    *,
    notable_before: datetime | None = None,
    matching: DeviceFilter | None = None,
) -> dict[str, list[HealthLicense]]:
    """Licenses per serial: all of them, or with `notable_before` only those not active or
    expiring before then (the few that classification has something to say about); of the
    devices of `site` and `matching` (an API listing's filter or page)."""
    ts = FastTimestamps(engine.dialect.name)
    query = sa.select(
        licenses.c.serial,
        licenses.c.feature,
        licenses.c.state,
        ts.column(licenses.c.expires_at),
        ts.column(licenses.c.observed_at),
    ).order_by(licenses.c.serial, licenses.c.feature)
    if notable_before is not None:
        query = query.where(
            sa.or_(
                licenses.c.state != LicenseState.ACTIVE.value,
                licenses.c.expires_at <= notable_before,
            )
        )
    if site is not None or matching is not None:
        query = query.join(devices, devices.c.serial == licenses.c.serial)
    if site is not None:
        query = query.where(devices.c.site == site)
    if matching is not None:
        query = query.where(matching.clause())
    states = {s.value: s for s in LicenseState}
    found: dict[str, list[HealthLicense]] = defaultdict(list)
    async with engine.connect() as conn:
        result = await conn.stream(query.execution_options(yield_per=_BATCH))
        # Whole partitions, not rows: each async step is a greenlet switch, too dear per row.
        value, required = ts.value, ts.required
        async for part in result.partitions():
            for serial, feature, state, expires_at, observed_at in part:
                found[serial].append(
                    HealthLicense(feature, states[state], value(expires_at), required(observed_at))
                )
    return found


HealthRow = tuple[HealthDevice, HealthStatus | None, LicenseSummary | None]
_READ_COLUMNS = (
    "license_read_ok", "license_read_call", "license_read_detail", "license_read_modeled",
)  # fmt: skip


async def devices_with_status(
    engine: AsyncEngine,
    site: str | None,
    licensed: dict[str, list[HealthLicense]],
    *,
    summarized: bool,
    matching: DeviceFilter | None = None,
) -> AsyncIterator[list[HealthRow]]:
    """Devices (by serial) with their latest status, streamed in batches, never held whole.
    With `summarized` the store counts each device's licenses (LicenseSummary) and `licensed`
    need only hold the notable ones."""
    s = device_status.c
    ts = FastTimestamps(engine.dialect.name)
    columns: list[sa.ColumnElement[Any]] = [
        devices.c.serial,
        devices.c.mac,
        devices.c.site,
        devices.c.model,
        devices.c.driver,
        ts.column(devices.c.last_seen),
        ts.column(s.observed_at),
        s.reachable,
        s.error_kind,
        s.error,
        s.identity_mismatch,
        s.license_read_ok,
        s.license_read_call,
        s.license_read_detail,
        s.license_read_modeled,
    ]
    joined = devices.outerjoin(device_status, s.serial == devices.c.serial)
    if summarized:
        counts = (
            sa.select(
                licenses.c.serial,
                sa.func.count().label("total"),
                sa.func.min(licenses.c.expires_at).label("next_expiry"),
                sa.func.max(licenses.c.observed_at).label("newest"),
            )
            .group_by(licenses.c.serial)
            .subquery("license_counts")
        )
        joined = joined.outerjoin(counts, counts.c.serial == devices.c.serial)
        columns += [
            counts.c.total,
            ts.column(counts.c.next_expiry),
            ts.column(counts.c.newest),
        ]
    query = sa.select(*columns).select_from(joined).order_by(devices.c.serial)
    if site is not None:
        query = query.where(devices.c.site == site)
    if matching is not None:
        query = query.where(matching.clause())
    value, required = ts.value, ts.required
    async with engine.connect() as conn:
        result = await conn.stream(query.execution_options(yield_per=_BATCH))
        async for part in result.partitions():
            batch: list[HealthRow] = []
            for row in part:
                serial, mac, site_, model, driver, last_seen, observed_at, *rest = row
                reachable, error_kind, error, mismatch = rest[:4]
                read_columns = dict(zip(_READ_COLUMNS, rest[4:8], strict=True))
                # When the latest scan read the device, classification never looks further back:
                # skip parsing last_seen and the newest license time (most of the fleet).
                read_now = observed_at is None or (reachable and error is None and not mismatch)
                device = HealthDevice(
                    serial, mac, site_, model, driver, None if read_now else value(last_seen)
                )
                summary = None
                if summarized:
                    total, next_expiry, newest = rest[8:]
                    newest_at = None if read_now else value(newest)
                    summary = LicenseSummary(total or 0, value(next_expiry), newest_at)
                if observed_at is None:
                    batch.append((device, None, summary))
                    continue
                lics = licensed.get(serial, ())
                status = HealthStatus(
                    required(observed_at), bool(reachable), error_kind, error, mismatch, lics,
                    license_read_from_row(read_columns),
                )  # fmt: skip
                batch.append((device, status, summary))
            yield batch
