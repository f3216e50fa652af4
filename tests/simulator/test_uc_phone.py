"""UC phone REST face: documented routes and envelope, auth, busy, and the license-file flow."""

from __future__ import annotations

import json

import aiohttp

from simulator.activation_keys import issue_key
from simulator.uc_phone_modeled import license_file_name, render_license_cfg
from tests.simulator.https_helpers import (
    base_url,
    contract_for,
    curl,
    days_from_today,
    fleet_on_loopback,
    insecure_session,
    small_fleet,
)

AUTH = {"Authorization": aiohttp.encode_basic_auth("Polycom", "456")}


async def test_device_info_v1_and_v2_have_the_captured_fields() -> None:
    devices = small_fleet({"vvx": 100}, count=2)
    async with fleet_on_loopback(devices) as fleet, insecure_session() as http:
        phone = devices[0]
        url = base_url(fleet, phone.serial)
        async with http.get(f"{url}/api/v1/mgmt/device/info", headers=AUTH) as resp:
            body = await resp.json()
        assert body["Status"] == "2000"
        info = body["data"]
        assert info["MACAddress"] == phone.mac
        assert info["MACAddress"].upper() == phone.serial
        assert info["ModelNumber"] == phone.model
        assert info["FirmwareRelease"] == phone.firmware
        assert info["DeviceVendor"] == "Polycom"
        assert " Day " in info["UpTimeSinceLastReboot"]
        async with http.get(f"{url}/api/v2/mgmt/device/info", headers=AUTH) as resp:
            v2 = (await resp.json())["data"]
        assert set(v2["Firmware"]) == {"BootBlock", "Application", "Updater"}
        assert set(v2["UpTime"]) == {"Days", "Hours", "Minutes", "Seconds"}
        async with http.get(f"{url}/api/v1/mgmt/network/info", headers=AUTH) as resp:
            net = (await resp.json())["data"]
        assert net["ProvServerAddress"] == phone.provisioning_url
        async with http.get(f"{url}/api/v1/mgmt/lineInfo", headers=AUTH) as resp:
            lines = (await resp.json())["data"]
        assert lines[0]["RegistrationStatus"] == "registered"


async def test_wrong_password_is_401_and_curl_basic_auth_works() -> None:
    devices = small_fleet({"trio": 100}, count=1)
    async with fleet_on_loopback(devices) as fleet:
        url = f"{base_url(fleet, devices[0].serial)}/api/v1/mgmt/device/info"
        good = await curl("-u", "Polycom:456", url)
        assert json.loads(good.stdout)["data"]["ModelNumber"] == devices[0].model
        bad = await curl("-u", "Polycom:wrong", "-o", "/dev/null", "-w", "%{http_code}", url)
        assert bad.stdout == "401"
        none = await curl("-o", "/dev/null", "-w", "%{http_code}", url)
        assert none.stdout == "401"


async def test_config_get_set_and_the_20_parameter_limit() -> None:
    devices = small_fleet({"vvx": 100}, count=1)
    async with fleet_on_loopback(devices) as fleet, insecure_session() as http:
        url = f"{base_url(fleet, devices[0].serial)}/api/v1/mgmt"
        too_many = {f"param.{i}": "1" for i in range(21)}
        async with http.post(f"{url}/config/set", json={"data": too_many}, headers=AUTH) as resp:
            assert (await resp.json()) == {"Status": "4009"}
        async with http.post(
            f"{url}/config/get", json={"data": list(too_many)}, headers=AUTH
        ) as resp:
            assert (await resp.json())["Status"] == "4009"
        async with http.post(
            f"{url}/config/set", json={"data": {"up.backlight.idleIntensity": "3"}}, headers=AUTH
        ) as resp:
            assert (await resp.json())["Status"] == "2000"
        async with http.post(
            f"{url}/config/get", json={"data": ["up.backlight.idleIntensity"]}, headers=AUTH
        ) as resp:
            value = (await resp.json())["data"]["up.backlight.idleIntensity"]
        assert value == {"Value": "3", "Source": "web"}
        async with http.post(f"{url}/config/get", json={"data": "nope"}, headers=AUTH) as resp:
            assert (await resp.json()) == {"Status": "4000"}
        for action in ("safeRestart", "safeReboot"):
            async with http.post(f"{url}/{action}", headers=AUTH) as resp:
                assert (await resp.json()) == {"Status": "2000"}


async def test_busy_while_in_call_and_with_the_busy_fault() -> None:
    devices = small_fleet({"vvx": 100}, count=1)
    phone = devices[0]
    async with fleet_on_loopback(devices) as fleet, insecure_session() as http:
        url = f"{base_url(fleet, phone.serial)}/api/v1/mgmt"
        phone.in_call = True
        async with http.post(f"{url}/updateConfiguration", headers=AUTH) as resp:
            assert (await resp.json()) == {"Status": "4001"}
        phone.in_call = False
        phone.faults.busy = True
        async with http.get(f"{url}/device/info", headers=AUTH) as resp:
            assert resp.status == 200
            assert (await resp.json()) == {"Status": "4001"}


async def _license_info(http: aiohttp.ClientSession, url: str) -> dict[str, object]:
    async with http.get(f"{url}/api/v1/mgmt/license/info", headers=AUTH) as resp:
        body = await resp.json()
    assert body["Status"] == "2000"
    data: dict[str, object] = body["data"]
    return data


def tampered(key: str) -> str:
    """The key with its last character changed (replacing it with "0" left a key ending in "0"
    intact, so the test failed on those keys)."""
    return key[:-1] + ("1" if key.endswith("0") else "0")


async def test_license_file_flow_loads_good_keys_and_refuses_bad_ones() -> None:
    devices = small_fleet({"vvx": 100}, count=2, seed=4)
    phone, other = devices
    feature = "productivity_suite"
    async with (
        fleet_on_loopback(devices, [contract_for([phone.serial])]) as fleet,
        insecure_session() as http,
    ):
        url = base_url(fleet, phone.serial)
        secret = fleet.secrets.portal_secret
        assert phone.mac is not None
        assert phone.provisioning_url is not None
        file_url = f"{phone.provisioning_url}/{license_file_name(phone.mac)}"
        before = phone.licenses[feature].expires_at

        async def provision_and_update(key: str) -> dict[str, object]:
            async with http.put(file_url, data=render_license_cfg([key])) as resp:
                assert resp.status in (201, 204)
            async with http.post(f"{url}/api/v1/mgmt/updateConfiguration", headers=AUTH) as resp:
                assert (await resp.json())["Status"] == "2000"
            return await _license_info(http, url)

        bad_keys = {
            "wrong_serial": issue_key(secret, other.serial, feature, days_from_today(300)),
            "tampered": tampered(issue_key(secret, phone.serial, feature, days_from_today(300))),
            "expired": issue_key(secret, phone.serial, feature, days_from_today(-1)),
        }
        for reason, key in bad_keys.items():
            info = await provision_and_update(key)
            last = info["LastUpdate"]
            assert isinstance(last, dict)
            assert (last["Result"], last["Reason"]) == ("rejected", reason)
            assert phone.licenses[feature].expires_at == before

        good = issue_key(secret, phone.serial, feature, days_from_today(400))
        info = await provision_and_update(good)
        features = {f["Feature"]: f for f in info["Features"]}  # type: ignore[attr-defined]
        assert features[feature]["State"] == "active"
        assert features[feature]["ExpiresAt"].startswith(days_from_today(400).isoformat())


async def test_update_without_license_file_leaves_state_and_says_so() -> None:
    devices = small_fleet({"ccx": 100}, count=1)
    async with fleet_on_loopback(devices) as fleet, insecure_session() as http:
        url = base_url(fleet, devices[0].serial)
        async with http.post(f"{url}/api/v1/mgmt/updateConfiguration", headers=AUTH) as resp:
            assert (await resp.json())["Status"] == "2000"
        info = await _license_info(http, url)
        assert info["LastUpdate"]["Result"] == "no_file"  # type: ignore[index]
