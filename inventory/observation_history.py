"""The history of each device's observations: appended with every batch the store records, the
newest `keep` kept per device.

`device_status` holds a device's latest observation only; this keeps the ones before it too, so
the device detail can show when it stopped answering or when a license changed. Retention is by
count, not age: a device scanned nightly and one probed every minute both keep their last `keep`
(default 50), and the table stays near `keep` x devices rows. Pruning rides on the append without
a query per device. Per 900 serials of a batch one query reads each device's last `seq` (an index
seek each); then one executemany delete drops what fell out. A device is pruned every `step`
observations (a fifth of `keep`), `step` rows at once, on a turn set by a hash of its serial, so a
nightly scan prunes 1/`step` of the fleet each night rather than one row of every device:
deleting a device's few oldest rows costs little more than deleting one (on SQLite, 100,000
devices: 2.7 s for one row each, 4.0 s for nine each). Readers see exactly the newest `keep`;
the store holds up to `keep + step - 1` a device.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from inventory.async_engine import AsyncConnection, AsyncEngine
from inventory.license_read_columns import license_read_from_row, license_read_row
from inventory.models import License, LicenseRead, LicenseState
from inventory.schema import devices, observation_history

if TYPE_CHECKING:
    from inventory.observation_store import DeviceObservation

DEFAULT_KEEP = 50
"""Observations kept per device unless the `observation_history` setting says otherwise."""
_CHUNK = 900  # below SQLite's bound-parameter limit on every build we support
_compact = json.JSONEncoder(separators=(",", ":")).encode
"""One encoder for every row: json.dumps with options builds a new one per call."""


@dataclass(frozen=True, slots=True)
class FeatureState:
    """One feature's license state as one observation read it."""

    feature: str
    state: LicenseState
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One stored observation of a device."""

    observed_at: datetime
    reachable: bool
    driver: str | None
    error_kind: str | None
    error: str | None
    identity_mismatch: str | None
    licenses: list[FeatureState] | None
    """None when this observation did not read the licenses (`license_read` says why)."""
    license_read: LicenseRead | None


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """Some of a device's kept observations, newest first, and how many are kept in all."""

    total: int
    entries: list[HistoryEntry]


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def prune_step(keep: int) -> int:
    """How many observations a device gathers beyond `keep` before its oldest are dropped."""
    return max(1, keep // 5)


async def append_history(
    conn: AsyncConnection, observations: Sequence[DeviceObservation], keep: int
) -> None:
    """Append `observations` (in order) in the caller's transaction and drop, for the devices
    whose turn it is, what falls beyond their newest `keep`."""
    if not observations:
        return
    h = observation_history
    last_seq = (
        sa.select(sa.func.max(h.c.seq)).where(h.c.serial == devices.c.serial).scalar_subquery()
    )
    last: dict[str, int] = {}
    for chunk in _chunks(list(dict.fromkeys(o.serial for o in observations))):
        found = await conn.execute(
            sa.select(devices.c.serial, last_seq).where(devices.c.serial.in_(chunk))
        )
        for serial, seq in found:
            last[serial] = seq or 0
    rows = []
    for o in observations:
        seq = last[o.serial] = last.get(o.serial, 0) + 1
        rows.append(_history_row(o, seq))
    await conn.execute(h.insert(), rows)
    step = prune_step(keep)
    due = [
        {"_serial": serial, "_cut": seq - keep}
        for serial, seq in last.items()
        if seq > keep and (seq + zlib.crc32(serial.encode())) % step == 0
    ]
    if due:
        older = h.delete().where(
            h.c.serial == sa.bindparam("_serial"), h.c.seq <= sa.bindparam("_cut")
        )
        await conn.execute(older, due)


async def read_history(
    engine: AsyncEngine, serial: str, *, keep: int, limit: int, offset: int
) -> HistoryPage:
    """The device's newest `keep` observations, [offset, offset+limit) of them, newest first."""
    h = observation_history
    limit = max(0, min(limit, keep - offset))
    query = (
        sa.select(h)
        .where(h.c.serial == serial)
        .order_by(h.c.seq.desc(), h.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    async with engine.connect() as conn:
        total = (
            await conn.execute(sa.select(sa.func.count()).where(h.c.serial == serial))
        ).scalar_one()
        rows = (await conn.execute(query)).mappings().all() if limit else []
    return HistoryPage(min(total, keep), [_entry(row) for row in rows])


def licenses_json(licenses: Sequence[License] | None) -> str | None:
    """The `licenses` column of a history row: `[[feature, state, expires_at], ...]` in compact
    JSON (a nightly row per device adds up: keys and spaces would double it), None when that
    observation did not read them."""
    if licenses is None:
        return None
    return _compact(
        [
            [
                lic.feature,
                lic.state.value,
                lic.expires_at.astimezone(UTC).isoformat() if lic.expires_at else None,
            ]
            for lic in licenses
        ]
    )


def _history_row(o: DeviceObservation, seq: int) -> dict[str, Any]:
    return {
        "serial": o.serial,
        "seq": seq,
        "observed_at": o.observed_at,
        "reachable": o.reachable,
        "driver": o.driver,
        "error_kind": o.error_kind,
        "error": o.error,
        "identity_mismatch": o.identity_mismatch,
        "licenses": licenses_json(o.licenses),
        **license_read_row(o.license_read),
    }


def _entry(row: sa.RowMapping) -> HistoryEntry:
    stored = row["licenses"]
    licenses = None
    if stored is not None:
        licenses = [
            FeatureState(
                feature=feature,
                state=LicenseState(state),
                expires_at=datetime.fromisoformat(expires) if expires else None,
            )
            for feature, state, expires in json.loads(stored)
        ]
    return HistoryEntry(
        observed_at=row["observed_at"],
        reachable=row["reachable"],
        driver=row["driver"],
        error_kind=row["error_kind"],
        error=row["error"],
        identity_mismatch=row["identity_mismatch"],
        licenses=licenses,
        license_read=license_read_from_row(row),
    )
