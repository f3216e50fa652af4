"""The health check's reads: every device with its latest status and its (notable) licenses,
streamed in batches straight from the tables, because the check must stay fast on a
100,000-device store (the general `InventoryStore` reads build a pydantic model per row).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from inventory.async_engine import AsyncConnection, AsyncEngine
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
    100,000s of values; on PostgreSQL the driver's aware datetimes as they come. `value` and
    `required` are plain functions picked per dialect: one Python call per value, not two."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        self.value: Callable[[Any], datetime | None] = (
            _stored_value if self.sqlite else _driver_value
        )
        self.required: Callable[[Any], datetime] = (
            _stored_required if self.sqlite else _driver_required
        )

    def column(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        kind: sa.types.TypeEngine[Any] = sa.String() if self.sqlite else sa.DateTime(timezone=True)
        return sa.type_coerce(column, kind).label(column.name)


def _stored_required(raw: str | None) -> datetime:
    """SQLite's text of a NOT NULL timestamp column."""
    try:
        return _fromisoformat(raw + "+00:00")  # type: ignore[operator]  # stored as naive UTC
    except TypeError:
        raise ValueError("NULL in a NOT NULL timestamp column") from None
    except ValueError:  # not the storage format we know: parse it the general way
        return _general(raw)  # type: ignore[arg-type]


def _stored_value(raw: str | None) -> datetime | None:
    return None if raw is None else _stored_required(raw)


def _general(raw: str) -> datetime:
    parsed = datetime.fromisoformat(raw)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _driver_required(raw: datetime | None) -> datetime:
    """PostgreSQL's datetime of a NOT NULL timestamp column."""
    if raw is None:
        raise ValueError("NULL in a NOT NULL timestamp column")
    return raw if raw.tzinfo is not None else raw.replace(tzinfo=UTC)


def _driver_value(raw: datetime | None) -> datetime | None:
    return None if raw is None else _driver_required(raw)


_fromisoformat = datetime.fromisoformat


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
    found nothing for classification to weigh, so the check takes it as it is. One flat tuple
    (a `DeviceLike` itself, and its license counts inline): most of a fleet comes this way, and
    every object built per row costs 100,000 times over."""

    serial: str
    mac: str | None
    site: str | None
    model: str | None
    driver: str | None
    observed_at: datetime
    total: int
    """How many licenses the device has (none notable)."""
    next_expiry: datetime | None
    license_read: LicenseRead | None

    @property
    def last_seen(self) -> datetime | None:
        """Not read: the latest observation read the device, so nothing looks further back."""
        return None

    @property
    def summary(self) -> LicenseSummary:
        return LicenseSummary(self.total, self.next_expiry, None)


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
    CleanRead, without the columns that only classification of the others needs.

    What classification looks back to when the latest observation did not read the device
    (when it was last seen, its newest license observation) is read for those few devices
    only, a batch at a time: two timestamps fewer per row are a fifth of the query on SQLite."""
    s = device_status.c
    ts = FastTimestamps(engine.dialect.name)
    columns: list[sa.ColumnElement[Any]] = [
        devices.c.serial,
        devices.c.mac,
        devices.c.site,
        devices.c.model,
        devices.c.driver,
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
    reads = _LicenseReads()
    async with engine.connect() as conn:
        result = await conn.stream(query.execution_options(yield_per=_BATCH))
        async for part in result.partitions():
            # rows: serial mac site model driver | observed_at reachable error_kind error
            # mismatch | 4 license read columns | total next_expiry | clean
            unread = [
                row[0]
                for row in part
                if not (flagged and row[16]) and row[5] is not None and _not_read(*row[6:10])
            ]
            back = await _looked_back(conn, ts, unread, summarized=summarized)
            batch: list[HealthRow | CleanRead] = []
            append = batch.append
            for row in part:
                if flagged and row[16]:  # read cleanly, nothing notable: nothing to weigh
                    serial, mac, site_, model, driver, observed_at = row[:6]
                    append(
                        CleanRead(
                            serial, mac, site_, model, driver, required(observed_at), row[14],
                            value(row[15]), reads.of(row[10:14]),
                        )
                    )  # fmt: skip
                    continue
                serial, mac, site_, model, driver, observed_at = row[:6]
                last_seen, newest = back.get(serial, (None, None))
                device = HealthDevice(serial, mac, site_, model, driver, last_seen)
                summary = None
                if summarized:
                    summary = LicenseSummary(row[14] or 0, value(row[15]), newest)
                if observed_at is None:
                    append((device, None, summary))
                    continue
                lics = licensed.get(serial, ())
                reachable, error_kind, error, mismatch = row[6:10]
                status = HealthStatus(
                    required(observed_at), bool(reachable), error_kind, error, mismatch, lics,
                    reads.of(row[10:14]),
                )  # fmt: skip
                append((device, status, summary))
            yield batch


def _not_read(reachable: Any, error_kind: Any, error: Any, mismatch: Any) -> bool:
    """The observation did not read the device (unreached, an error, another identity), so
    classification looks back to when it last was: `classify`'s `failed or mismatch`."""
    return not (reachable and error is None and not mismatch)


async def _looked_back(
    conn: AsyncConnection, ts: FastTimestamps, serials: list[str], *, summarized: bool
) -> dict[str, tuple[datetime | None, datetime | None]]:
    """serial -> (last_seen, the newest license observation or None unless `summarized`) of
    `serials`, the few devices of a batch whose latest observation did not read them."""
    if not serials:
        return {}
    newest: sa.ColumnElement[Any] = sa.null()
    if summarized:
        newest = (
            sa.select(sa.func.max(licenses.c.observed_at))
            .where(licenses.c.serial == devices.c.serial)
            .scalar_subquery()
        )
    query = sa.select(
        devices.c.serial,
        ts.column(devices.c.last_seen),
        ts.column(newest.label("newest")),
    ).where(devices.c.serial.in_(serials))
    value = ts.value
    rows = (await conn.execute(query)).all()  # the batch's connection: SQLite pools one
    return {serial: (value(last_seen), value(newest)) for serial, last_seen, newest in rows}


class _LicenseReads:
    """The LicenseRead of each distinct license_read_* tuple, built once: a fleet has few, and
    a pydantic model per row would cost more than the rest of the row."""

    def __init__(self) -> None:
        self._known: dict[tuple[Any, ...], LicenseRead | None] = {}

    def of(self, columns: Sequence[Any]) -> LicenseRead | None:
        if columns[0] is None:  # none recorded
            return None
        key = tuple(columns)
        read = self._known.get(key)
        if read is None:
            read = self._known[key] = license_read_from_row(
                dict(zip(_READ_COLUMNS, key, strict=True))
            )
        return read
