"""`polyfleet reactivate` when the inventory points at the wrong device, as DHCP leaves it after
two phones swapped addresses: the dry run and the real run are refused naming both identities,
no key is claimed or applied and no certificate pinned; once the record is repaired, the same
command simply works. On both backends."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from inventory.database import DatabaseTarget
from inventory.key_files import key_ref
from inventory.schema import devices as devices_table
from inventory.store import InventoryStore
from simulator.activation_keys import issue_key
from simulator.licensing import effective_state
from simulator.state import LicenseState, SimDevice
from tests.e2e.reactivation_fleet import (
    TODAY,
    ManagedFleet,
    expired_feature,
    issued_keys,
    make_devices,
    managed_fleet,
    operations,
)

ADDRESS = ("host", "https_port", "snmp_port")


async def record(fleet: ManagedFleet, serial: str) -> dict[str, Any]:
    shown = await fleet.cli("inventory", "show", serial, "-o", "json")
    assert shown.code == 0, shown.stderr
    [row] = shown.json()
    assert isinstance(row, dict)
    return row


async def point_at(fleet: ManagedFleet, serial: str, address: dict[str, Any]) -> None:
    """`polyfleet inventory add SERIAL --host … --https-port … --snmp-port …` (the repair)."""
    ports = address["ports"]
    done = await fleet.cli(
        "inventory", "add", serial, "--host", address["host"],
        "--https-port", str(ports["https"]), "--snmp-port", str(ports["snmp"]),
    )  # fmt: skip
    assert done.code == 0, done.stderr


async def forget_pins(target: DatabaseTarget, serials: list[str]) -> None:
    """As if the phones had never been contacted: no certificate pinned yet."""
    async with await InventoryStore.open(target) as store, store.engine.begin() as conn:
        await conn.execute(
            devices_table.update()
            .where(devices_table.c.serial.in_(serials))
            .values(tls_fingerprint=None)
        )


async def pins(target: DatabaseTarget, serial: str) -> str | None:
    async with await InventoryStore.open(target) as store, store.engine.connect() as conn:
        pinned: str | None = (
            await conn.execute(
                sa.select(devices_table.c.tls_fingerprint).where(devices_table.c.serial == serial)
            )
        ).scalar_one()
    return pinned


def untouched(device: SimDevice) -> bool:
    state = effective_state(device.licenses[expired_feature(device)])
    return device.applied_keys == [] and state is LicenseState.EXPIRED


async def test_swapped_phones_are_refused_until_the_inventory_is_repaired(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    devices = make_devices(4, expired=4)
    phone, other = [d for d in devices if d.family == "vvx"][:2]
    feature = expired_feature(phone)
    async with managed_fleet(
        tmp_path, db_url, devices, [d.serial for d in devices], target=db_target
    ) as fleet:
        # A key of the phone's own, imported: a run that went ahead would claim it.
        key = issue_key(
            fleet.running.secrets.portal_secret, phone.serial, feature, TODAY + timedelta(days=90)
        )
        keys = tmp_path / "keys.csv"
        keys.write_text(f"serial,feature,key\n{phone.serial},{feature},{key}\n")
        assert (await fleet.cli("keys", "import", str(keys))).code == 0
        mine, theirs = await record(fleet, phone.serial), await record(fleet, other.serial)
        await forget_pins(db_target, [phone.serial, other.serial])
        await point_at(fleet, phone.serial, theirs)  # DHCP swapped the two phones
        await point_at(fleet, other.serial, mine)

        args = ("reactivate", phone.serial, "--feature", feature, "-o", "json")
        for extra in (("--dry-run",), ("--yes",)):
            refused = await fleet.cli(*args, *extra)
            assert refused.code == 1, refused.stderr
            [row] = refused.json()
            assert row["status"] == "failed"
            reason = row["reason"]
            assert f"reports serial {other.serial} (inventory: {phone.serial})" in reason
            assert f"MAC {other.mac} (inventory: {phone.mac})" in reason
            assert "polyfleet discover" in reason
            assert f"polyfleet inventory add {phone.serial} --host" in reason
            assert row["plan"] == []  # no plan made against the other phone's state
        assert untouched(phone)
        assert untouched(other)
        assert issued_keys(fleet, phone.serial) == issued_keys(fleet, other.serial) == []
        [stored] = (await fleet.cli("keys", "list", "-o", "json")).json()
        assert stored["used_by"] is None  # the imported key was not claimed
        assert await operations(db_target, phone.serial) == []
        assert await pins(db_target, phone.serial) is None  # not the other's certificate
        assert await pins(db_target, other.serial) is None

        await point_at(fleet, phone.serial, mine)  # the admin repairs the records
        await point_at(fleet, other.serial, theirs)
        fixed = await fleet.cli(*args, "--yes")
        assert fixed.code == 0, fixed.stderr
        [row] = fixed.json()
        assert row["status"] == "confirmed"
        assert row["confirmation"]["key_ref"] == key_ref(key)
        assert phone.applied_keys == [key]
        assert effective_state(phone.licenses[feature]) is LicenseState.ACTIVE
        assert untouched(other)
        assert await pins(db_target, phone.serial) is not None  # learnt from the right phone
        assert await pins(db_target, other.serial) is None


async def test_a_device_swapped_after_the_key_was_obtained_gets_no_key_and_the_rerun_resumes(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    devices = make_devices(4, expired=4)
    phone, other = [d for d in devices if d.family == "vvx"][:2]
    feature = expired_feature(phone)
    identity = (phone.serial, phone.mac)

    def swap_when_issued(serial: str, _feature: str) -> Any:
        """While the portal issues the key, another phone takes this one's address."""
        issued = issue(serial, _feature)
        phone.serial, phone.mac = other.serial, other.mac
        return issued

    async with managed_fleet(
        tmp_path, db_url, devices, [d.serial for d in devices], target=db_target
    ) as fleet:
        portal = fleet.running.portal
        issue = portal.issue
        args = ("reactivate", identity[0], "--feature", feature, "--yes", "-o", "json")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(portal, "issue", swap_when_issued)
            refused = await fleet.cli(*args)
        phone.serial, phone.mac = identity
        assert refused.code == 1, refused.stderr
        [row] = refused.json()
        assert (row["status"], row["resumable"]) == ("failed", True)
        assert f"reports serial {other.serial} (inventory: {phone.serial})" in row["reason"]
        assert f"operation {row['operation']} keeps its key" in row["reason"]
        assert phone.applied_keys == other.applied_keys == []

        resumed = await fleet.cli(*args)
        assert resumed.code == 0, resumed.stderr
        [again] = resumed.json()
        assert (again["status"], again["operation"]) == ("confirmed", row["operation"])
        [key] = issued_keys(fleet, phone.serial)  # the same key, obtained once
        assert phone.applied_keys == [key]
