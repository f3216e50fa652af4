"""The fleet runner end to end: real loopback addresses and ports, files, state, workers."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import stat
import tomllib
from datetime import UTC, date, datetime
from pathlib import Path

import aiohttp
from yarl import URL

from controller.settings import load_settings
from inventory.importer import parse_device_file
from inventory.models import CredentialProfile
from simulator.activation_keys import issue_key
from simulator.cli import SimulateOptions, run_simulation
from simulator.fleet import generate_fleet
from simulator.outputs import UC_PROFILE
from simulator.runner import run_fleet
from simulator.uc_phone_modeled import license_file_name, render_license_cfg
from tests.simulator.https_helpers import base_url, curl, days_from_today, insecure_session

BASE = "127.20.250.1"
START_TIMEOUT_S = 30.0


def _options(tmp_path: Path, **overrides: object) -> SimulateOptions:
    values: dict[str, object] = {
        "devices": 12,
        "mix": {"vvx": 40, "studiox": 20, "gs": 20, "dma": 10, "analog": 10},
        "seed": 5,
        "base_address": BASE,
        "password": "s3cret",
        "faults": "",
        "inventory_out": tmp_path / "fleet.csv",
        "contracts_out": tmp_path / "fleet.contracts.csv",
        "credentials_out": tmp_path / "fleet.credentials.toml",
        "portal_out": tmp_path / "fleet.portal.toml",
        "state_file": tmp_path / "state.json",
        "workers": 1,
        "portal_port": 0,
        "provisioning_port": 0,
    }
    values.update(overrides)
    return SimulateOptions(**values)  # type: ignore[arg-type]


def _read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


async def _started(options: SimulateOptions, stop: asyncio.Event) -> asyncio.Task[None]:
    options.inventory_out.unlink(missing_ok=True)
    task = asyncio.create_task(run_simulation(options, stop))
    async with asyncio.timeout(START_TIMEOUT_S):
        while not (options.inventory_out.exists() and options.portal_out.exists()):
            if task.done():
                await task
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.05)  # the portal file is written last; let it land
    return task


async def test_simulate_on_real_loopback_addresses_and_restart_with_state(tmp_path: Path) -> None:
    options = _options(tmp_path)
    stop = asyncio.Event()
    task = await _started(options, stop)
    try:
        rows = _read_csv(options.inventory_out)
        assert list(rows[0]) == [
            "serial",
            "mac",
            "model",
            "host",
            "site",
            "product_group",
            "https_port",
            "snmp_port",
            "ssh_port",
            "credentials",
        ]
        parsed = parse_device_file(options.inventory_out)
        assert not parsed.rejected
        assert len(parsed.accepted) == 12
        networked = [r for r in rows if r["host"]]
        assert networked[0]["host"] == BASE
        assert all(r["host"].startswith("127.20.250.") for r in networked)
        today = datetime.now(UTC).date()
        contracts = _read_csv(options.contracts_out)
        covered = {c["serial"] for c in contracts if date.fromisoformat(c["end"]) >= today}
        phone = next(r for r in rows if r["credentials"] == UC_PROFILE and r["serial"] in covered)
        assert phone["https_port"] == "443"  # root in CI; falls back to 10443 otherwise
        assert (tmp_path / "fleet.credentials.toml").stat().st_mode & 0o077 == 0
        profiles = tomllib.loads(options.credentials_out.read_text())["profiles"]
        assert profiles[phone["credentials"]]["http_password"] == "s3cret"
        for name, table in profiles.items():  # what `polyfleet credentials import` accepts
            CredentialProfile.model_validate({**table, "name": name})
        portal = tomllib.loads(options.portal_out.read_text())
        assert stat.S_IMODE(options.portal_out.stat().st_mode) == 0o600
        settings = load_settings(options.portal_out)  # usable as `polyfleet --config FILE`
        assert settings.portal.url == portal["portal"]["url"]
        assert options.contracts_out.read_text().startswith("number,kind,serial,start,end")

        url = f"https://{phone['host']}:{phone['https_port']}"
        info = await curl("-u", "Polycom:s3cret", f"{url}/api/v1/mgmt/device/info")
        assert json.loads(info.stdout)["data"]["MACAddress"] == phone["serial"].lower()

        # Reactivate the phone the way a driver would: portal -> provisioning -> phone.
        feature = "productivity_suite"
        auth = {"Authorization": aiohttp.encode_basic_auth("Polycom", "s3cret")}
        token = {"Authorization": f"Bearer {portal['portal']['token']}"}
        async with insecure_session() as http:
            async with http.post(
                f"{portal['portal']['url']}/api/v1/keys",
                json={"serial": phone["serial"], "feature": feature},
                headers=token,
            ) as resp:
                assert resp.status == 201
                issued = await resp.json()
            async with http.get(f"{url}/api/v1/mgmt/network/info", headers=auth) as resp:
                server = (await resp.json())["data"]["ProvServerAddress"]  # as a driver finds it
            prov = f"{server.rstrip('/')}/{license_file_name(phone['serial'])}"
            async with http.put(prov, data=render_license_cfg([issued["key"]])) as resp:
                assert resp.status == 201
            async with http.post(f"{url}/api/v1/mgmt/updateConfiguration", headers=auth) as resp:
                assert (await resp.json())["Status"] == "2000"
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)

    assert options.state_file is not None
    saved = json.loads(options.state_file.read_text())
    assert stat.S_IMODE(options.state_file.stat().st_mode) == 0o600
    saved_licenses = saved["devices"][phone["serial"]]["licenses"]
    lic = next(item for item in saved_licenses if item["feature"] == feature)
    assert lic["key"] == issued["key"]

    # A restart with the same state file keeps secrets and license state.
    stop = asyncio.Event()
    task = await _started(options, stop)
    try:
        restarted = tomllib.loads(options.portal_out.read_text())
        assert restarted["portal"]["token"] == portal["portal"]["token"]
        async with (
            insecure_session() as http,
            http.get(f"{url}/api/v1/mgmt/license/info", headers=auth) as response,
        ):
            features = {f["Feature"]: f for f in (await response.json())["data"]["Features"]}
        assert features[feature]["State"] == "active"
        assert features[feature]["KeyRef"]
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def test_worker_processes_serve_and_return_state() -> None:
    devices = generate_fleet(6, {"studiox": 100}, seed=9)
    async with (
        run_fleet(devices, loopback_only=True, workers=2, snmp=False, ssh=False) as fleet,
        insecure_session() as http,
    ):
        assert fleet.workers == 2
        for device in devices:
            url = base_url(fleet, device.serial)
            async with http.post(
                f"{url}/rest/current/session", json={"user": "admin", "password": "456"}
            ) as resp:
                assert resp.status == 200
            async with http.get(f"{url}/rest/system") as resp:
                assert (await resp.json())["serialNumber"] == device.serial
        last = devices[-1]
        cookies = http.cookie_jar.filter_cookies(URL(base_url(fleet, last.serial)))
        headers = {"x-xsrf-token": cookies["XSRF-TOKEN"].value}
        good = issue_key(fleet.secrets.portal_secret, last.serial, "1080p", days_from_today(50))
        async with http.post(
            f"{base_url(fleet, last.serial)}/rest/system/options",
            json={"key": good},
            headers=headers,
        ) as resp:
            assert resp.status == 200
        async with http.post(
            f"{base_url(fleet, last.serial)}/rest/system/reboot",
            json={"action": "reboot"},
            headers=headers,
        ) as resp:
            assert resp.status == 200
        snapshot = await fleet.snapshot()
        assert set(snapshot) == {d.serial for d in devices}
        assert any(item["key"] == good for item in snapshot[last.serial]["licenses"])
    # The workers hand their final state back to the parent's device objects on exit.
    assert last.licenses["1080p"].key == good
