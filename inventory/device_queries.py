"""Filtered, sorted, paginated device listings for the API, done in SQL.

`GET /devices` on a 100,000-device store must answer in milliseconds: filters are WHERE
clauses on indexed columns, and only the requested page is read and turned into models.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from inventory.async_engine import AsyncEngine
from inventory.errors import InvalidIdentifier
from inventory.identifiers import normalize_mac, normalize_serial
from inventory.models import Device, License, LicenseState
from inventory.observation_store import DeviceStatus, status_from_row
from inventory.pg_direct import LISTING_FILTERS, STATUS_PREFIX, Row, is_postgres, listing_rows
from inventory.reads import autocommit_read
from inventory.schema import devices, licenses
from inventory.store import row_to_device

_SEPARATORS = str.maketrans("", "", ":-. ")
_HEX = frozenset("0123456789abcdef")


class DeviceSort(StrEnum):
    """Orders of a device listing (ties are broken by serial)."""

    SERIAL = "serial"
    SITE = "site"
    MODEL = "model"
    EXPIRES_AT = "expires_at"


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    """Which devices: exact site / model / product group, and `q` = serial prefix or MAC
    (whole or leading digits) in any spelling (`00:04:F2`, `0004.f2aa.bbcc`)."""

    site: str | None = None
    model: str | None = None
    product_group: str | None = None
    q: str | None = None
    serials: tuple[str, ...] | None = None
    """Only these devices (a page already chosen)."""

    def clause(self) -> sa.ColumnElement[bool]:
        conditions: list[sa.ColumnElement[bool]] = []
        if self.site is not None:
            conditions.append(devices.c.site == self.site)
        if self.model is not None:
            conditions.append(devices.c.model == self.model)
        if self.product_group is not None:
            conditions.append(devices.c.product_group == self.product_group)
        if self.q is not None:
            conditions.append(_search(self.q))
        if self.serials is not None:
            conditions.append(devices.c.serial.in_(self.serials))
        return sa.and_(sa.true(), *conditions)


def _search(q: str) -> sa.ColumnElement[bool]:
    """Serial prefix, or MAC: equal when `q` is a whole MAC, else its leading hex digits."""
    matches: list[sa.ColumnElement[bool]] = []
    with contextlib.suppress(InvalidIdentifier):
        matches.append(devices.c.serial.like(_like_prefix(normalize_serial(q)), escape="\\"))
    try:
        matches.append(devices.c.mac == normalize_mac(q))
    except InvalidIdentifier:
        digits = q.strip().translate(_SEPARATORS).lower()
        if digits and set(digits) <= _HEX and len(digits) < 12:
            matches.append(devices.c.mac.like(digits + "%"))
    return sa.or_(sa.false(), *matches)


def _next_expiry() -> sa.Subquery:
    return (
        sa.select(licenses.c.serial, sa.func.min(licenses.c.expires_at).label("next_expiry"))
        .group_by(licenses.c.serial)
        .subquery("next_expiry")
    )


def _count_query(matching: DeviceFilter) -> sa.Select[Any]:
    return sa.select(sa.func.count()).select_from(devices).where(matching.clause())


async def count_matching(engine: AsyncEngine, matching: DeviceFilter) -> int:
    """How many devices match."""
    async with autocommit_read(engine) as conn:
        return int((await conn.execute(_count_query(matching))).scalar_one())


def _ordered(query: sa.Select[Any], sort: DeviceSort, descending: bool) -> sa.Select[Any]:
    """`query` in the given order, NULLs last either way, ties by serial.

    Serial is never NULL and unique: ordered by it alone, so an index on it (or on site and
    serial) yields the page without sorting every matching row."""
    serial = devices.c.serial.desc() if descending else devices.c.serial.asc()
    if sort is DeviceSort.SERIAL:
        return query.order_by(serial)
    key: sa.ColumnElement[Any]
    if sort is DeviceSort.EXPIRES_AT:
        expiry = _next_expiry()
        query = query.outerjoin(expiry, expiry.c.serial == devices.c.serial)
        key = expiry.c.next_expiry
    else:
        key = devices.c[sort.value]
    ordered = key.desc() if descending else key.asc()
    return query.order_by(key.is_(None), ordered, serial)


Narrow = Callable[[sa.Select[Any]], sa.Select[Any]]
"""Narrows a query over `devices` further (to one health status: inventory.health_sql)."""


def _page_query(
    matching: DeviceFilter, sort: DeviceSort, descending: bool, narrow: Narrow | None
) -> sa.Select[Any]:
    query = sa.select(devices).where(matching.clause())
    return _ordered(narrow(query) if narrow else query, sort, descending)


async def page_devices(
    engine: AsyncEngine,
    matching: DeviceFilter,
    *,
    sort: DeviceSort = DeviceSort.SERIAL,
    descending: bool = False,
    limit: int,
    offset: int,
    narrow: Narrow | None = None,
) -> list[Device]:
    """One page of the matching devices in the given order."""
    query = _page_query(matching, sort, descending, narrow).limit(limit).offset(offset)
    async with autocommit_read(engine) as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [row_to_device(row) for row in rows]


async def total_and_page(
    engine: AsyncEngine,
    matching: DeviceFilter,
    *,
    sort: DeviceSort = DeviceSort.SERIAL,
    descending: bool = False,
    limit: int,
    offset: int,
) -> tuple[int, list[Device]]:
    """How many devices match, and one page of them in the given order (one connection for
    both, no transaction: the total of a listing and its page need not be one snapshot, as a
    page fetched later would not be either)."""
    query = _page_query(matching, sort, descending, None)
    async with autocommit_read(engine) as conn:
        total = int((await conn.execute(_count_query(matching))).scalar_one())
        if total <= offset:
            return total, []
        rows = (await conn.execute(query.limit(limit).offset(offset))).mappings().all()
    return total, [row_to_device(row) for row in rows]


async def counted_page(
    engine: AsyncEngine,
    matching: DeviceFilter,
    *,
    sort: DeviceSort,
    descending: bool,
    limit: int,
    offset: int,
    narrow: Narrow,
) -> tuple[list[Device], int | None]:
    """`page_devices` and, from the same query, how many devices match (None when the page
    is empty): one pass where the narrowed set is small and costly to find."""
    query = _page_query(matching, sort, descending, narrow)
    query = query.add_columns(sa.func.count().over().label("_matching")).limit(limit)
    async with autocommit_read(engine) as conn:
        rows = (await conn.execute(query.offset(offset))).mappings().all()
    return [row_to_device(row) for row in rows], rows[0]["_matching"] if rows else None


async def page_with_statuses(
    engine: AsyncEngine,
    matching: DeviceFilter,
    *,
    descending: bool,
    limit: int,
    offset: int,
) -> tuple[int, list[tuple[Device, DeviceStatus | None]]] | None:
    """`total_and_page` in serial order, each device with its latest status as
    `ObservationStore.statuses` gives it, in one statement on PostgreSQL (inventory.pg_direct:
    the hot listing of the API); None where that statement does not apply (SQLite, a search,
    a chosen set of serials), for the caller to take the general path."""
    if not is_postgres(engine) or matching.q is not None or matching.serials is not None:
        return None
    filters = {
        name: value for name in LISTING_FILTERS if (value := getattr(matching, name)) is not None
    }
    total, rows = await listing_rows(
        engine, filters, descending=descending, limit=limit, offset=offset
    )
    return total, [(row_to_device(row), _status_of(row)) for row in rows]


def _status_of(row: Row) -> DeviceStatus | None:
    """The latest status in a listing row of `pg_direct.listing_sql` (None: never scanned)."""
    serial = row[STATUS_PREFIX + "serial"]
    if serial is None:
        return None
    licenses = [
        License(
            serial=serial,
            feature=feature,
            state=LicenseState(state),
            expires_at=expires_at,
            source=source,
            observed_at=observed_at,
        )
        for feature, state, expires_at, source, observed_at in row[STATUS_PREFIX + "licenses"] or ()
    ]
    return status_from_row(row, prefix=STATUS_PREFIX, with_licenses=licenses)
