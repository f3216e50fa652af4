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

from inventory.async_engine import AsyncEngine
from inventory.device_queries import DeviceFilter
from inventory.health_sql import clean_observation, notable_license
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
        query = query.where(notable_license(notable_before))
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


class CleanRead(NamedTuple):
    """A device whose latest scan read it cleanly (reached, no error, identity confirmed, license
    state read), recently (at or after `clean_since`) and with no notable license: the store
    found nothing for classification to weigh, so the check takes it as it is."""

    device: HealthDevice
    observed_at: datetime
    summary: LicenseSummary
    license_read: LicenseRead | None


HealthRow = tuple[HealthDevice, HealthStatus | None, LicenseSummary | None]
_READ_COLUMNS = (
    "license_read_ok", "license_read_call", "license_read_detail", "license_read_modeled",
)  # fmt: skip


def _clean_read(notable_before: datetime, clean_since: datetime) -> sa.ColumnElement[Any]:
    """1 where the latest observation read the device cleanly since `clean_since` and none of
    its licenses is notable (not active, or expiring before `notable_before`), else 0."""
    notable = sa.func.coalesce(
        sa.func.sum(sa.case((notable_license(notable_before), 1), else_=0)), 0
    )
    clean = sa.and_(clean_observation(clean_since), notable == 0)
    return sa.case((clean, 1), else_=0).label("clean")


async def devices_with_status(
    engine: AsyncEngine,
    site: str | None,
    licensed: dict[str, list[HealthLicense]],
    *,
    summarized: bool,
    matching: DeviceFilter | None = None,
    clean_since: datetime | None = None,
    notable_before: datetime | None = None,
) -> AsyncIterator[list[HealthRow | CleanRead]]:
    """Devices (by serial) with their latest status, streamed in batches, never held whole.
    With `summarized` the store counts each device's licenses (LicenseSummary) and `licensed`
    need only hold the notable ones. With `clean_since` and `notable_before` as well, the store
    also tells which devices were read cleanly since then with nothing notable: those come as
    CleanRead, without the columns that only classification of the others needs."""
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
    query = sa.select(*columns)
    if summarized:
        # One pass over the licenses by their primary key, grouped per device: no aggregate
        # table materialised and joined back (a third of the query's time on SQLite).
        joined = joined.outerjoin(licenses, licenses.c.serial == devices.c.serial)
        query = query.add_columns(
            sa.func.count(licenses.c.serial).label("total"),
            ts.column(sa.func.min(licenses.c.expires_at).label("next_expiry")),
            ts.column(sa.func.max(licenses.c.observed_at).label("newest")),
        )
        if ts.sqlite:  # in the serial index's order: no sort
            query = query.group_by(devices.c.serial)
        else:  # PostgreSQL takes the other columns only as functions of the primary keys
            query = query.group_by(devices.c.id, s.serial)
    flagged = summarized and clean_since is not None and notable_before is not None
    if flagged and clean_since is not None and notable_before is not None:
        query = query.add_columns(_clean_read(notable_before, clean_since))
    query = query.select_from(joined).order_by(devices.c.serial)
    if site is not None:
        query = query.where(devices.c.site == site)
    if matching is not None:
        query = query.where(matching.clause())
    value, required = ts.value, ts.required
    reads: dict[tuple[Any, ...], LicenseRead | None] = {}  # a fleet has few distinct ones
    async with engine.connect() as conn:
        result = await conn.stream(query.execution_options(yield_per=_BATCH))
        async for part in result.partitions():
            batch: list[HealthRow | CleanRead] = []
            for row in part:
                serial, mac, site_, model, driver, last_seen, observed_at, *rest = row
                if flagged and rest[11]:  # read cleanly, nothing notable: nothing to weigh
                    read_key = tuple(rest[4:8])
                    if read_key not in reads:
                        read_row = dict(zip(_READ_COLUMNS, read_key, strict=True))
                        reads[read_key] = license_read_from_row(read_row)
                    batch.append(
                        CleanRead(
                            HealthDevice(serial, mac, site_, model, driver, None),
                            required(observed_at),
                            LicenseSummary(rest[8], value(rest[9]), None),
                            reads[read_key],
                        )
                    )
                    continue
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
                    total, next_expiry, newest = rest[8:11]
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
