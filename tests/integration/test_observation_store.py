"""The observation store on SQLite and PostgreSQL: recorders of the same devices at once (two
controllers scanning one site, a scan beside a re-activation) all land."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from inventory.models import Device, License, LicenseState
from inventory.observation_store import DeviceObservation, ObservationStore
from inventory.store import InventoryStore

DEVICES = [Device(serial=f"SS2-{i:04d}", model="SoundStation 2", site="hq") for i in range(20)]
RECORDERS = 8
START = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def batch(n: int) -> list[DeviceObservation]:
    """Recorder n's observations of every device, each a second later than recorder n-1's."""
    at = START + timedelta(seconds=n)
    return [
        DeviceObservation(
            serial=d.serial,
            observed_at=at,
            reachable=True,
            licenses=[
                License(
                    serial=d.serial,
                    feature="base",
                    state=LicenseState.ACTIVE,
                    source="scan",
                    observed_at=at,
                )
            ],
        )
        for d in DEVICES
    ]


async def test_recorders_of_the_same_devices_at_once_all_land(store: InventoryStore) -> None:
    await store.upsert_devices(DEVICES)
    observations = ObservationStore(store.engine)
    await asyncio.gather(*(observations.record(batch(n)) for n in range(RECORDERS)))
    statuses = await observations.statuses()
    assert sorted(statuses) == [d.serial for d in DEVICES]
    assert all(len(s.licenses) == 1 for s in statuses.values())
