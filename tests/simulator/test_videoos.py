"""VideoOS REST face: session login with cookie + XSRF, 403 rules, system routes, option keys."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from simulator.activation_keys import issue_key
from tests.simulator.https_helpers import (
    base_url,
    curl,
    days_from_today,
    fleet_on_loopback,
    insecure_session,
    small_fleet,
)

LOGIN = {"user": "admin", "password": "456"}


async def _login(http: aiohttp.ClientSession, url: str) -> str:
    async with http.post(f"{url}/rest/current/session", json=LOGIN) as resp:
        assert resp.status == 200
        body = await resp.json()
        assert resp.cookies["session_id"].value == body["session"]["sessionId"]
        xsrf = resp.cookies["XSRF-TOKEN"].value
    assert body["success"] is True
    assert body["session"]["isAuthenticated"] is True
    return xsrf


async def test_login_session_and_system_fields() -> None:
    devices = small_fleet({"studiox": 100}, count=1)
    codec = devices[0]
    async with fleet_on_loopback(devices) as fleet, insecure_session() as http:
        url = base_url(fleet, codec.serial)
        async with http.get(f"{url}/rest/system") as resp:
            assert resp.status == 403
        await _login(http, url)
        async with http.get(f"{url}/rest/system") as resp:
            system = await resp.json()
        assert system["serialNumber"] == codec.serial
        assert system["model"] == codec.model.replace(" ", "")
        assert system["softwareVersion"] == codec.firmware
        assert system["systemName"] == codec.system_name
        assert {"build", "hardwareVersion", "lanStatus", "rebootNeeded", "uptime"} <= set(system)
        async with http.get(f"{url}/rest/system/status") as resp:
            status = await resp.json()
        assert {"langtag", "name", "stateList"} <= set(status[0])
        async with http.delete(f"{url}/rest/current/session") as resp:
            assert resp.status == 403  # a change without the XSRF header is refused


async def test_post_needs_the_xsrf_header_and_logout_ends_the_session() -> None:
    devices = small_fleet({"studiox": 100}, count=1)
    async with fleet_on_loopback(devices) as fleet, insecure_session() as http:
        url = base_url(fleet, devices[0].serial)
        xsrf = await _login(http, url)
        async with http.post(f"{url}/rest/system/reboot", json={"action": "reboot"}) as resp:
            assert resp.status == 403
        headers = {"x-xsrf-token": xsrf}
        async with http.delete(f"{url}/rest/current/session", headers=headers) as resp:
            assert resp.status == 204
        async with http.get(f"{url}/rest/system") as resp:
            assert resp.status == 403


async def test_wrong_password_and_legacy_login_path() -> None:
    devices = small_fleet({"studiox": 100}, count=1)
    async with fleet_on_loopback(devices) as fleet, insecure_session() as http:
        url = base_url(fleet, devices[0].serial)
        bad = {"user": "admin", "password": "nope"}
        async with http.post(f"{url}/rest/current/session", json=bad) as resp:
            assert resp.status == 401
            assert (await resp.json())["success"] is False
        async with http.post(f"{url}/rest/session", json=LOGIN) as resp:
            assert resp.status == 200


async def test_option_keys_modeled_route() -> None:
    devices = small_fleet({"studiox": 100}, count=2)
    codec, other = devices
    async with fleet_on_loopback(devices) as fleet, insecure_session() as http:
        url = base_url(fleet, codec.serial)
        headers = {"x-xsrf-token": await _login(http, url)}
        secret = fleet.secrets.portal_secret
        foreign = issue_key(secret, other.serial, "multipoint", days_from_today(90))
        async with http.post(
            f"{url}/rest/system/options", json={"key": foreign}, headers=headers
        ) as resp:
            assert resp.status == 400
            assert (await resp.json())["reason"] == "wrong_serial"
        good = issue_key(secret, codec.serial, "multipoint", days_from_today(90))
        async with http.post(
            f"{url}/rest/system/options", json={"key": good}, headers=headers
        ) as resp:
            assert (await resp.json())["option"]["state"] == "active"
        async with http.get(f"{url}/rest/system/options") as resp:
            options = {o["name"]: o for o in (await resp.json())["options"]}
        assert options["multipoint"]["expiresAt"].startswith(days_from_today(90).isoformat())


async def test_busy_videoos_answers_403() -> None:
    devices = small_fleet({"studiox": 100}, count=1)
    async with fleet_on_loopback(devices) as fleet, insecure_session() as http:
        url = base_url(fleet, devices[0].serial)
        await _login(http, url)
        devices[0].faults.busy = True
        async with http.get(f"{url}/rest/system") as resp:
            assert resp.status == 403


async def test_curl_with_a_cookie_jar(tmp_path: Path) -> None:
    devices = small_fleet({"studiox": 100}, count=1)
    jar = str(tmp_path / "cookies.txt")
    async with fleet_on_loopback(devices) as fleet:
        url = base_url(fleet, devices[0].serial)
        login = await curl(
            "-c",
            jar,
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps(LOGIN),
            f"{url}/rest/current/session",
        )
        assert json.loads(login.stdout)["success"] is True
        system = await curl("-b", jar, f"{url}/rest/system")
        assert json.loads(system.stdout)["serialNumber"] == devices[0].serial
        denied = await curl("-o", "/dev/null", "-w", "%{http_code}", f"{url}/rest/system")
        assert denied.stdout == "403"
