"""DMA / RPRM licensing REST: documented status shapes and the modeled license install."""

from __future__ import annotations

import aiohttp

from simulator.activation_keys import issue_key
from simulator.state import LicenseState
from tests.simulator.https_helpers import (
    base_url,
    days_from_today,
    fleet_on_loopback,
    insecure_session,
    small_fleet,
)

AUTH = {"Authorization": aiohttp.encode_basic_auth("admin", "456")}
LICENSES = "/api/rest/config/licenses"


async def test_license_status_install_and_restart() -> None:
    devices = small_fleet({"dma": 100}, count=2)
    dma, other = devices
    dma.licenses["system"].state = LicenseState.EXPIRED
    async with fleet_on_loopback(devices) as fleet, insecure_session() as http:
        url = base_url(fleet, dma.serial)
        async with http.get(f"{url}{LICENSES}/license-status", headers=AUTH) as resp:
            status = await resp.json()
        assert status["licensingStatus"] == "INVALID"
        assert status["connectionStatus"] in {"CONNECTION_NOT_ATTEMPTED", "CONNECT_SUCCESS"}
        feature = status["plcmLicenseFeatureList"]["plcmLicenseFeature"][0]
        assert {"name", "perpetual", "counted", "expirationDate"} <= set(feature)

        async with http.get(f"{url}{LICENSES}/poly-license", headers=AUTH) as resp:
            config = await resp.json()
        assert config["serialNumber"] == dma.serial
        assert config["licenseMode"] in {"automatic", "manual"}

        secret = fleet.secrets.portal_secret
        foreign = issue_key(secret, other.serial, "system", days_from_today(365))
        op = f"{url}{LICENSES}/poly-license/op"
        body = {"serialNumber": dma.serial, "licenseResponse": foreign}
        async with http.post(op, json=body, headers=AUTH) as resp:
            assert resp.status == 400
            assert (await resp.json())["errorCode"] == "wrong_serial"

        good = issue_key(secret, dma.serial, "system", days_from_today(365))
        async with http.post(op, data=good, headers=AUTH) as resp:
            assert resp.status == 200
        async with http.get(f"{url}{LICENSES}/license-status", headers=AUTH) as resp:
            assert (await resp.json())["licensingStatus"] == "VALID_SYSTEM_RESTART_REQUIRED"
        async with http.post(f"{url}/api/rest/system/restart", headers=AUTH) as resp:
            assert resp.status == 204
        async with http.get(f"{url}{LICENSES}/license-status", headers=AUTH) as resp:
            assert (await resp.json())["licensingStatus"] == "VALID"
        async with http.get(f"{url}{LICENSES}/poly-license/status", headers=AUTH) as resp:
            poly = await resp.json()
        assert poly["serialNumber"] == dma.serial
        assert poly["isLicenseInstalled"] is True


async def test_infra_needs_basic_auth() -> None:
    devices = small_fleet({"rprm": 100}, count=1)
    async with fleet_on_loopback(devices) as fleet, insecure_session() as http:
        url = base_url(fleet, devices[0].serial)
        async with http.get(f"{url}{LICENSES}/license-status") as resp:
            assert resp.status == 401
