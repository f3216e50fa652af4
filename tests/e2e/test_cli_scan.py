"""`polyfleet scan` on a simulated fleet: the JSON scripts rely on, exit codes, faults, swapped
devices and changed certificates / host keys, as an admin meets them.

The fleet runs in this process, each device on its own loopback address (127.88.1.x onwards;
no other test uses them); the inventory file carries the ports each face really bound, so this
works with or without root. Commands run in-process on a worker thread.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device_drivers.registry import DriverRegistry
from simulator.faults import set_fault
from simulator.fleet import generate_fleet
from simulator.licensing import effective_state
from simulator.outputs import UC_PROFILE, write_credentials_toml, write_inventory_csv
from simulator.runner import run_fleet
from simulator.state import SimDevice
from tests.e2e.cli import Outcome, polyfleet

MIX = {"vvx": 3, "trio": 1, "studiox": 2, "gs": 2, "dma": 1, "analog": 2}
"""11 devices: 9 networked, 2 analog."""
PRODUCT_KEYS = {
    "serial", "mac", "model", "product_group", "driver", "host", "site", "reachable", "error",
    "firmware", "licenses", "license_read", "observed_at",
}  # fmt: skip
"""PRODUCT.md: the keys scripts rely on; `error_kind` comes on top (why a device failed)."""
SCAN = ("scan", "--timeout", "1", "-o", "json")


@dataclass(frozen=True, slots=True)
class Lab:
    devices: list[SimDevice]
    db: str

    async def cli(self, *args: str) -> Outcome:
        """`polyfleet --db DB ARGS` in-process, on a worker thread so the fleet can answer."""
        return await asyncio.to_thread(polyfleet, self.db, *args)

    async def scan(self) -> tuple[int, dict[str, dict[str, Any]], str]:
        """Exit code, results by serial, the summary line."""
        done = await self.cli(*SCAN)
        return done.code, {row["serial"]: row for row in done.json()}, done.stderr

    async def show(self, serial: str) -> dict[str, Any]:
        shown = await self.cli("inventory", "show", serial, "-o", "json")
        assert shown.code == 0, shown.stderr
        [record] = shown.json()
        assert isinstance(record, dict)
        return record

    async def record(self, serial: str) -> dict[str, Any]:
        """The inventory record alone, without the observations `show` adds."""
        shown = await self.show(serial)
        shown.pop("observations")
        return shown

    def of(self, family: str) -> list[SimDevice]:
        return [d for d in self.devices if d.family == family]


@asynccontextmanager
async def lab(
    work: Path,
    db: str,
    base: str,
    *,
    faults: dict[str, str] | None = None,
    edit: Callable[[list[dict[str, str]]], None] | None = None,
) -> AsyncIterator[Lab]:
    """Serve the fleet (faults by family: the first device of that family gets it), import its
    credential profiles and its inventory (after `edit` changed the rows, if given)."""
    devices = generate_fleet(sum(MIX.values()), MIX, seed=41, base_address=base)
    for family, fault in (faults or {}).items():
        set_fault(next(d for d in devices if d.family == family), fault)
    async with run_fleet(devices, seed=41) as running:
        inventory, profiles = work / "fleet.csv", work / "profiles.toml"
        write_inventory_csv(inventory, devices, running.endpoints)
        if edit is not None:
            with inventory.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
            edit(rows)
            with inventory.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        write_credentials_toml(profiles, "456")
        fleet = Lab(devices, db)
        for what, path in (("credentials", profiles), ("inventory", inventory)):
            done = await fleet.cli(what, "import", str(path))
            assert done.code == 0, (what, done.stderr)
        yield fleet


def served_by(family: str) -> str | None:
    """The driver the registry picks for a simulated family (the inventory names none)."""
    driver = DriverRegistry().for_family(family)
    return driver.name if driver is not None else None


def licenses_of(device: SimDevice) -> list[dict[str, Any]]:
    """What the device itself holds, in the scan's JSON form."""
    return sorted(
        (
            {
                "feature": lic.feature,
                "state": effective_state(lic).value,
                "expires_at": lic.expires_at.isoformat() if lic.expires_at else None,
            }
            for lic in device.licenses.values()
        ),
        key=lambda lic: str(lic["feature"]),
    )


def summary(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


async def test_every_device_answers_with_the_product_json_and_exit_0(
    tmp_path: Path, db_url: str
) -> None:
    async with lab(tmp_path, db_url, "127.88.1.1") as fleet:
        code, results, stderr = await fleet.scan()
        assert code == 0, stderr
        assert summary(stderr) == "scanned 11 device(s): 9 ok, 2 skipped"
        assert sorted(results) == sorted(d.serial for d in fleet.devices)
        for device in fleet.devices:
            result = results[device.serial]
            assert set(result) == PRODUCT_KEYS | {"error_kind"}
            assert result["driver"] == served_by(device.family)
            assert result["site"] == device.site
            assert result["observed_at"].endswith("+00:00")
            if not device.host:  # analog: inventory and quotes only, skipped without failing
                assert (result["reachable"], result["error_kind"]) == (False, "not_supported")
                assert result["licenses"] == []
                continue
            assert (result["reachable"], result["error"], result["error_kind"]) == (
                True, None, None,
            )  # fmt: skip
            assert result["host"] == device.host
            assert result["firmware"] == device.firmware
            assert sorted(result["licenses"], key=lambda lic: lic["feature"]) == licenses_of(
                device
            ), device.family

        # Recorded: the device was seen, and its certificate / host key pinned on first use.
        uc, gs = fleet.of("vvx")[0], fleet.of("gs")[0]
        shown = await fleet.show(uc.serial)
        assert shown["last_seen"] is not None
        assert shown["firmware"] == uc.firmware
        assert shown["tls_fingerprint"].startswith("sha256:")
        assert (await fleet.show(gs.serial))["ssh_host_key"].startswith("ssh-")


async def test_failing_devices_exit_1_with_the_reason_and_the_others_are_read(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    faults = {"vvx": "unreachable", "studiox": "wrong_credentials", "gs": "wrong_credentials"}
    async with lab(tmp_path, db, "127.88.2.1", faults=faults) as fleet:
        code, results, stderr = await fleet.scan()
        assert code == 1
        assert summary(stderr) == (
            "scanned 11 device(s): 2 auth_failed, 6 ok, 2 skipped, 1 unreachable"
        )
        down, refusing_video, refusing_gs = (fleet.of(f)[0] for f in ("vvx", "studiox", "gs"))
        assert (results[down.serial]["reachable"], results[down.serial]["error_kind"]) == (
            False, "unreachable",
        )  # fmt: skip
        for device in (refusing_video, refusing_gs):
            result = results[device.serial]
            assert (result["reachable"], result["error_kind"]) == (True, "auth_failed")
            assert "456" not in result["error"]  # never a password in a message
        ok = [d for d in fleet.devices if d.host and not d.faults.unreachable]
        ok = [d for d in ok if not d.faults.wrong_credentials]
        assert len(ok) == 6
        for device in ok:
            assert results[device.serial]["error"] is None
            assert results[device.serial]["licenses"], device.family

        table = await fleet.cli("scan", "--timeout", "1")  # people get the failures listed
        assert table.code == 1
        assert "not OK" in table.stdout
        assert down.serial in table.stdout
        assert fleet.of("trio")[0].serial not in table.stdout

        # Both scans are in each device's history (`inventory show`), newest first.
        history = (await fleet.show(down.serial))["observations"]
        assert [(o["reachable"], o["error_kind"], o["licenses"]) for o in history] == [
            (False, "unreachable", None)
        ] * 2
        assert history[0]["observed_at"] > history[1]["observed_at"]
        read = (await fleet.show(ok[0].serial))["observations"]
        assert len(read) == 2
        assert all(o["licenses"] and o["license_read"]["ok"] for o in read)
        shown = await fleet.cli("inventory", "show", ok[0].serial)
        assert "last 2 of 2 observation(s), newest first" in shown.stdout
        assert f"{read[0]['licenses'][0]['feature']} " in shown.stdout


def swap_two_phones(rows: list[dict[str, str]]) -> None:
    """Someone swapped two desk phones: each inventory row now points at the other's address."""
    first, second = [row for row in rows if row["credentials"] == UC_PROFILE][:2]
    for column in ("host", "https_port", "snmp_port", "ssh_port"):
        first[column], second[column] = second[column], first[column]


async def test_a_swapped_device_is_flagged_and_the_inventory_left_alone(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    async with lab(tmp_path, db, "127.88.3.1", edit=swap_two_phones) as fleet:
        first, second = fleet.of("vvx")[:2]
        before = {d.serial: await fleet.record(d.serial) for d in (first, second)}
        code, results, stderr = await fleet.scan()
        assert code == 1
        assert "2 identity_mismatch" in summary(stderr)
        for device, other in ((first, second), (second, first)):
            result = results[device.serial]
            assert result["error_kind"] == "identity_mismatch"
            assert result["error"] == (
                f"device at {other.host} reports serial {other.serial} (inventory: "
                f"{device.serial}) and MAC {other.mac} (inventory: {device.mac})"
            )
            assert result["licenses"] == []
        # Nothing of the other phone landed on the records: no firmware, no last_seen, and
        # not the other phone's certificate pinned as this one's. Its history tells why.
        assert {d.serial: await fleet.record(d.serial) for d in (first, second)} == before
        [seen] = (await fleet.show(first.serial))["observations"]
        assert seen["identity_mismatch"] == results[first.serial]["error"]
        assert seen["licenses"] is None
        assert before[first.serial]["tls_fingerprint"] is None
        health = await fleet.cli("health", "--format", "json")
        flagged = {d["serial"]: d for d in health.json()["devices"]}
        for device in (first, second):
            assert flagged[device.serial]["status"] == "CRITICAL"
            assert "identity mismatch" in flagged[device.serial]["reason"]


async def test_a_changed_certificate_or_host_key_fails_until_trusted(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    async with lab(tmp_path, db, "127.88.4.1") as fleet:
        assert (await fleet.scan())[0] == 0  # pins every certificate and host key on first use
        phone, codec = fleet.of("vvx")[0], fleet.of("gs")[0]
        pinned = (await fleet.show(phone.serial))["tls_fingerprint"]
        set_fault(phone, "tls_cert_changed")
        set_fault(codec, "ssh_host_key_changed")

        code, results, stderr = await fleet.scan()
        assert code == 1
        assert results[phone.serial]["error_kind"] == "tls_mismatch"
        assert results[codec.serial]["error_kind"] == "host_key_mismatch"
        assert summary(stderr) == (
            "scanned 11 device(s): 1 host_key_mismatch, 7 ok, 2 skipped, 1 tls_mismatch"
        )
        assert (await fleet.show(phone.serial))["tls_fingerprint"] == pinned  # not replaced

        trusted = await fleet.cli("inventory", "trust", phone.serial, "--yes")
        assert trusted.code == 0, trusted.stderr
        assert f"pinned: {pinned}" in trusted.stderr
        assert (await fleet.cli("inventory", "trust", codec.serial, "--yes")).code == 0
        assert (await fleet.show(phone.serial))["tls_fingerprint"] not in (None, pinned)

        code, results, stderr = await fleet.scan()
        assert code == 0, stderr
        assert results[phone.serial]["licenses"] == licenses_of(phone)
        assert results[codec.serial]["error"] is None
