"""A small fleet in the store for the API tests: two sites, three models, each health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inventory.catalog import ProductGroup
from inventory.models import Device, License, LicenseState
from inventory.observation_store import DeviceObservation, ObservationStore
from inventory.store import InventoryStore

# serial -> (site, model, product group, what its last scan found)
FLEET = {
    "A1000": ("hq", "VVX 450", ProductGroup.SOUNDPOINT_IP, "ok"),
    "A1001": ("hq", "VVX 450", ProductGroup.SOUNDPOINT_IP, "expired"),
    "A1002": ("hq", "Trio 8800", ProductGroup.SOUNDSTATION_IP, "never"),
    "B2000": ("branch", "Trio 8800", ProductGroup.SOUNDSTATION_IP, "ok"),
    "B2001": ("branch", "G7500", ProductGroup.VIDEO, "expiring"),
    "B2002": ("branch", "G7500", ProductGroup.VIDEO, "ok"),
}
EXPECTED_STATUS = {
    "A1000": "OK", "A1001": "CRITICAL", "A1002": "UNKNOWN",
    "B2000": "OK", "B2001": "WARNING", "B2002": "OK",
}  # fmt: skip


def mac_of(index: int) -> str:
    return f"0004f2aa00{index:02x}"


async def seed_fleet(store: InventoryStore) -> None:
    now = datetime.now(UTC)
    devices = [
        Device(serial=serial, mac=mac_of(index), site=site, model=model, product_group=group,
               driver="poly-uc", host=f"10.0.0.{index + 1}")
        for index, (serial, (site, model, group, _)) in enumerate(FLEET.items())
    ]  # fmt: skip
    assert not (await store.upsert_devices(devices)).conflicts
    expiry = {"ok": timedelta(days=365), "expired": -timedelta(days=3),
              "expiring": timedelta(days=5)}  # fmt: skip
    observations = [
        DeviceObservation(
            serial=serial,
            observed_at=now - timedelta(hours=1),
            reachable=True,
            driver="poly-uc",
            licenses=[
                License(
                    serial=serial,
                    feature="base",
                    state=LicenseState.EXPIRED if kind == "expired" else LicenseState.ACTIVE,
                    expires_at=now + expiry[kind],
                    source="test",
                    observed_at=now - timedelta(hours=1),
                )
            ],
        )
        for serial, (_, _, _, kind) in FLEET.items()
        if kind != "never"
    ]
    await ObservationStore(store.engine).record(observations)
