"""`polyfleet discover` on a simulated fleet served on its own loopback addresses.

The fleet runs in this process on 127.88.0.1 onwards, each device on the standard ports of its
own address (SNMP 161, HTTPS 443 or 8443 for DMA/RPRM, SSH 22), exactly where discovery looks;
binding them needs root (CI runs as root). The commands run in-process on a worker thread.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from device_drivers.registry import DriverRegistry
from simulator.faults import set_fault
from simulator.fleet import generate_fleet
from simulator.outputs import write_credentials_toml
from simulator.runner import RunningFleet, run_fleet
from simulator.state import SimDevice
from tests.e2e.cli import Outcome, polyfleet
from tests.transports.tls_helpers import make_certs

BASE = "127.88.0.1"
"""This module's addresses (127.88.0.0/28); no other test uses 127.88.0.x."""
CIDR = "127.88.0.0/28"
MIX = {"vvx": 2, "trio": 1, "ccx": 1, "studiox": 2, "gs": 2, "dma": 1, "rprm": 1, "analog": 2}
"""12 devices, 10 of them networked (127.88.0.1 - .10); 127.88.0.11 - .14 hold no device."""
NOT_POLY = "127.88.0.13"
"""A web server that is not a Poly device."""
SILENT = ("127.88.0.11", "127.88.0.12", "127.88.0.14")
STANDARD_PORTS = {"snmp_port": 161, "ssh_port": 22}
DISCOVER = ("--credentials", "sim-uc", "--credentials", "sim-admin", "--timeout", "0.5")


async def cli(db: str, *args: str) -> Outcome:
    """`polyfleet --db DB ARGS` in-process, on a worker thread so the fleet can answer."""
    return await asyncio.to_thread(polyfleet, db, *args)


def served_by(family: str) -> str | None:
    """The driver the registry picks for a simulated family (the inventory names none)."""
    driver = DriverRegistry().for_family(family)
    return driver.name if driver is not None else None


def needs_standard_ports(running: RunningFleet) -> None:
    for device in running.devices:
        endpoint = running.endpoint(device.serial)
        for name, port in STANDARD_PORTS.items():
            bound = getattr(endpoint, name)
            if bound is not None and bound != port:
                message = f"{device.host}: {name} {bound}, not {port} (binding needs root)"
                if os.environ.get("CI") == "true":
                    pytest.fail(message)
                pytest.skip(message)


@asynccontextmanager
async def not_poly_server(work: Path) -> AsyncIterator[None]:
    """HTTPS on NOT_POLY:443 answering every path with a plain 404, like any web server."""
    certs = make_certs(work / "not-poly", host=NOT_POLY)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs.cert, certs.key)
    runner = web.AppRunner(web.Application(), handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, NOT_POLY, 443, ssl_context=context).start()
        yield
    finally:
        await runner.cleanup()


@asynccontextmanager
async def lab(tmp_path: Path, db: str) -> AsyncIterator[list[SimDevice]]:
    """The fleet (second VVX with rotated passwords), the non-Poly server, imported profiles."""
    devices = generate_fleet(sum(MIX.values()), MIX, seed=88, base_address=BASE)
    set_fault([d for d in devices if d.family == "vvx"][1], "wrong_credentials")
    async with run_fleet(devices, seed=88) as running:
        needs_standard_ports(running)
        async with not_poly_server(tmp_path):
            write_credentials_toml(tmp_path / "profiles.toml", "456")
            imported = await cli(db, "credentials", "import", str(tmp_path / "profiles.toml"))
            assert imported.code == 0, imported.stderr
            yield devices


async def inventory(db: str) -> dict[str, dict[str, Any]]:
    listed = await cli(db, "inventory", "list", "-o", "json")
    assert listed.code == 0, listed.stderr
    return {row["serial"]: row for row in listed.json()}


def expected_mac(device: SimDevice) -> str | None:
    """DMA/RPRM report no MAC (neither their REST license resources nor their MIBs carry it)."""
    if device.family in ("dma", "rprm") or device.mac is None:
        return None
    return device.mac


def expected_model(device: SimDevice) -> str:
    """VideoOS `/rest/system` spells models without spaces (`StudioX30`)."""
    return device.model.replace(" ", "") if device.family == "studiox" else device.model


async def test_discover_finds_every_family_and_remembers_the_profile_that_worked(
    tmp_path: Path, db_url: str
) -> None:
    async with lab(tmp_path, db_url) as devices:
        result = await cli(db_url, "discover", CIDR, "--site", "lab", *DISCOVER, "-o", "json")
        assert result.code == 0, result.stderr
        rows = {row["address"]: row for row in result.json()}
        assert len(rows) == 14  # every host address of the /28, nothing else

        networked = [d for d in devices if d.host]
        refused = [d for d in devices if d.faults.wrong_credentials]
        for device in networked:
            row = rows[device.host]
            if device in refused:
                assert (row["outcome"], row["action"], row["serial"]) == (
                    "credentials_refused", None, None,
                )  # fmt: skip
                assert row["driver"] == "poly-uc"
                assert "refused the credentials (sim-uc, sim-admin)" in row["detail"]
                continue
            assert row == {
                "address": device.host,
                "outcome": "found",
                "action": "added",
                "serial": device.serial,
                "mac": expected_mac(device),
                "model": expected_model(device),
                "driver": served_by(device.family),
                "detail": None,
            }, device.family
        assert rows[NOT_POLY]["outcome"] == "not_recognised"
        assert rows[NOT_POLY]["detail"].startswith("answered but not recognised: poly-uc: ")
        assert "HTTP 404" in rows[NOT_POLY]["detail"]  # what it said
        for address in SILENT:
            assert rows[address]["outcome"] == "silent"
        summary = result.stderr.split("discovered:")[-1]
        for part in ("9 found", "1 credentials_refused", "1 not_recognised", "3 silent"):
            assert part in summary

        stored = await inventory(db_url)
        found = [d for d in networked if d not in refused]
        assert sorted(stored) == sorted(d.serial for d in found)  # nothing else was added
        for device in found:
            record = stored[device.serial]
            uc = device.family in ("vvx", "trio", "ccx")
            # UC phones log in as Polycom (sim-uc); VideoOS and DMA/RPRM refuse it and take
            # sim-admin; Group Series take the first profile, as both hold the same SSH login.
            wanted = "sim-uc" if uc or device.family == "gs" else "sim-admin"
            assert (record["credentials"], record["site"], record["host"]) == (
                wanted, "lab", device.host,
            ), device.family  # fmt: skip
            https = 8443 if device.family in ("dma", "rprm") else None
            assert record["ports"] == {"snmp": None, "https": https, "ssh": None}

        # What discovery added, a scan reads: every found device answers with its licenses.
        scanned = await cli(db_url, "scan", "--timeout", "1", "-o", "json")
        assert scanned.code == 0, scanned.stderr
        assert {r["serial"] for r in scanned.json() if r["error"] is None} == set(stored)
        assert all(r["licenses"] for r in scanned.json())

        again = await cli(db_url, "discover", CIDR, *DISCOVER, "-o", "json")
        actions = {row["action"] for row in again.json() if row["outcome"] == "found"}
        assert (again.code, actions) == (0, {"updated"})
        assert {r["site"] for r in (await inventory(db_url)).values()} == {"lab"}  # kept


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("10.1.0.0/33", "'10.1.0.0/33' is not an address or CIDR"),
        ("10.1.0.300", "'10.1.0.300' is not an address or CIDR"),
        ("10.0.0.0/8", "10.0.0.0/8 has 16,777,216 addresses; at most 65,536 per run"),
    ],
)
def test_unusable_ranges_exit_2_and_leave_the_store_alone(
    tmp_path: Path, target: str, message: str
) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    added = polyfleet(db, "inventory", "add", "64167F0A0001", "--host", "127.88.0.99")
    assert added.code == 0, added.stderr
    before = polyfleet(db, "inventory", "list", "-o", "json").json()
    result = polyfleet(db, "discover", "127.88.0.99", target)
    assert result.code == 2
    assert message in " ".join(result.stderr.split())
    assert result.stdout == ""
    assert polyfleet(db, "inventory", "list", "-o", "json").json() == before
