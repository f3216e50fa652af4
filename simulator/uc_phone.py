"""UC phone personality (VVX/SoundPoint IP, Trio/SoundStation IP, CCX): the UC Software REST API.

Routes, field names, the `{"data": …, "Status": "2000"}` envelope with string codes, Basic auth as
`Polycom` and the 20-parameter limit follow poly-device-apis.md section 1. How a phone reports
license state and reads `<MAC>-license.cfg` is modeled and lives in `uc_phone_modeled`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
from aiohttp import web

from simulator import uc_phone_modeled
from simulator.faults import accepted_http_password
from simulator.https_face import PORTAL_SECRET_KEY, basic_auth_ok, current_device, make_app
from simulator.state import SimDevice

CLIENT_KEY = web.AppKey("provisioning_client", aiohttp.ClientSession)
MAX_CONFIG_PARAMS = 20
API = "/api/v1/mgmt"

# Status codes (strings, as the phones send them).
OK = "2000"
INVALID_INPUT = "4000"
BUSY = "4001"
SIZE_LIMIT = "4009"

_DEFAULT_CONFIG: dict[str, str] = {
    "apps.restapi.enabled": "1",
    "device.prov.serverType": "HTTP",
    "device.prov.user": "PlcmSpIp",
    "device.sntp.serverName": "pool.ntp.org",
    "up.backlight.idleIntensity": "1",
}


def ok(data: Any = None) -> web.Response:
    """The success envelope; `data` is left out when the call returns nothing."""
    body: dict[str, Any] = {"Status": OK}
    if data is not None:
        body = {"data": data, "Status": OK}
    return web.json_response(body)


def fail(status: str) -> web.Response:
    """API errors travel in `Status` with HTTP 200 and no `data`."""
    return web.json_response({"Status": status})


def _uptime(device: SimDevice) -> tuple[int, int, int, int]:
    seconds = max(0, int(time.time() - device.boot_time))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    return days, hours, minutes, secs


def _attached_hardware(device: SimDevice) -> dict[str, Any]:
    return {"EM": []} if device.model.startswith("VVX") else {}


def _mac(device: SimDevice) -> str:
    return device.mac or ""


async def device_info_v1(request: web.Request) -> web.Response:
    """`GET /api/v1/mgmt/device/info` with the keys of the real captures."""
    device = current_device(request)
    days, hours, minutes, secs = _uptime(device)
    return ok(
        {
            "ModelNumber": device.model,
            "AttachedHardware": _attached_hardware(device),
            "FirmwareRelease": device.firmware,
            "IPV6Address": "::",
            "DeviceVendor": "Polycom",
            "DeviceType": "hardwareEndpoint",
            "UpTimeSinceLastReboot": f"{days} Day {hours:02d}:{minutes:02d}:{secs:02d}",
            "IPV4Address": device.host,
            "MACAddress": _mac(device),
        }
    )


async def device_info_v2(request: web.Request) -> web.Response:
    """`GET /api/v2/mgmt/device/info`: firmware and uptime as objects."""
    device = current_device(request)
    days, hours, minutes, secs = _uptime(device)
    return ok(
        {
            "DeviceType": "HardwareEndpoint",
            "PreferredNetwork": "IPv4",
            "Firmware": {
                "BootBlock": "3.0.6.0002 (65290-001)",
                "Application": f"{device.firmware} 28-Feb-22 15:29",
                "Updater": device.firmware,
            },
            "DeviceVendor": "Polycom",
            "UpTime": {
                "Seconds": str(secs),
                "Minutes": str(minutes),
                "Days": str(days),
                "Hours": str(hours),
            },
            "ModelNumber": device.model,
            "IPAddress": device.host,
            "IPStack": "IPv4 Only",
            "IPv6Address": "::",
            "AppState": "AppStateCall" if device.in_call else "AppStateMenu",
            "MACAddress": _mac(device),
            "AttachedHardware": _attached_hardware(device),
            "CanApplyShutdownRequest": "False" if device.in_call else "True",
            "ReadyToUse": "True",
            "IntendToShutdown": "False",
        }
    )


async def network_info(request: web.Request) -> web.Response:
    """`GET /api/v1/mgmt/network/info`: the provisioning server is where licenses come from."""
    device = current_device(request)
    return ok(
        {
            "SubnetMask": "255.0.0.0",
            "DHCP": "enabled",
            "IPV4Address": device.host,
            "DHCPServer": "127.0.0.1",
            "ProvServerAddress": device.provisioning_url or "",
            "ProvServerType": "HTTP",
            "ProvServerUser": "PlcmSpIp",
            "VLANID": "",
            "VLANIDOption": "129",
            "DHCPBootServerUseOption": "Default",
            "DHCPBootServerOption": "160",
            "DHCPOption60Format": "RFC 3925 Binary",
            "SNTPAddress": "pool.ntp.org",
            "IPV6Address": "::",
            "LANSpeed": "1000MB",
            "LANPortStatus": "active",
            "DefaultGateway": "127.0.0.1",
            "DNSServer": "127.0.0.53",
            "AlternateDNSServer": "",
            "DNSDomain": "example.com",
            "LLDP": "True",
            "CDPCompatibility": "True",
            "UpgradeServer": "",
            "ZTPStatus": "disabled",
        }
    )


async def line_info(request: web.Request) -> web.Response:
    """`GET /api/v1/mgmt/lineInfo`: one registered SIP line."""
    device = current_device(request)
    extension = str(int((device.mac or "0")[-4:], 16) % 9000 + 1000)
    return ok(
        [
            {
                "LineNumber": "1",
                "RegistrationStatus": "registered",
                "LineType": "private",
                "SIPAddress": f"{extension}@sip.example.com",
                "Protocol": "Auto",
                "Label": extension,
                "UserID": extension,
                "ProxyAddress": "sip.example.com",
                "Port": "0",
            }
        ]
    )


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


async def config_get(request: web.Request) -> web.Response:
    """`POST /api/v1/mgmt/config/get` with `{"data": [names]}`, at most 20 names."""
    device = current_device(request)
    body = await _json_body(request)
    names = body.get("data") if isinstance(body, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not names:
        return fail(INVALID_INPUT)
    if len(names) > MAX_CONFIG_PARAMS:
        return fail(SIZE_LIMIT)
    values: dict[str, dict[str, str]] = {}
    for name in names:
        if name in device.config:
            values[name] = {"Value": device.config[name], "Source": "web"}
        else:
            values[name] = {"Value": _DEFAULT_CONFIG.get(name, ""), "Source": "default"}
    return ok(values)


async def config_set(request: web.Request) -> web.Response:
    """`POST /api/v1/mgmt/config/set` with `{"data": {name: value}}`, at most 20 pairs."""
    device = current_device(request)
    if device.in_call:
        return fail(BUSY)
    body = await _json_body(request)
    pairs = body.get("data") if isinstance(body, dict) else None
    if not isinstance(pairs, dict) or not pairs:
        return fail(INVALID_INPUT)
    if len(pairs) > MAX_CONFIG_PARAMS:
        return fail(SIZE_LIMIT)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in pairs.items()):
        return fail(INVALID_INPUT)
    device.config.update(pairs)
    return ok()


async def update_configuration(request: web.Request) -> web.Response:
    """`POST /api/v1/mgmt/updateConfiguration`: re-provision, which also loads license files."""
    device = current_device(request)
    if device.in_call:
        return fail(BUSY)
    await uc_phone_modeled.load_license_file(
        device, request.app[CLIENT_KEY], request.app[PORTAL_SECRET_KEY]
    )
    return ok()


async def safe_restart(request: web.Request) -> web.Response:
    """`POST /api/v1/mgmt/safeRestart` / `safeReboot`: the simulated phone is back at once."""
    device = current_device(request)
    device.boot_time = time.time()
    device.restart_required = False
    return ok()


@web.middleware
async def _auth_and_busy(request: web.Request, handler: Any) -> web.StreamResponse:
    device = current_device(request)
    creds = device.credentials
    if not basic_auth_ok(request, creds.http_user, accepted_http_password(device)):
        return web.Response(
            status=401,
            text="Unauthorized",
            headers={"WWW-Authenticate": 'Basic realm="Polycom"'},
        )
    if device.faults.busy:
        return fail(BUSY)
    response: web.StreamResponse = await handler(request)
    return response


def _routes(app: web.Application) -> None:
    app.middlewares.append(_auth_and_busy)
    app.router.add_get(f"{API}/device/info", device_info_v1)
    app.router.add_get("/api/v2/mgmt/device/info", device_info_v2)
    app.router.add_get(f"{API}/network/info", network_info)
    app.router.add_get(f"{API}/lineInfo", line_info)
    app.router.add_post(f"{API}/config/get", config_get)
    app.router.add_post(f"{API}/config/set", config_set)
    app.router.add_post(f"{API}/updateConfiguration", update_configuration)
    app.router.add_post(f"{API}/safeRestart", safe_restart)
    app.router.add_post(f"{API}/safeReboot", safe_restart)
    uc_phone_modeled.add_routes(app)


def create_app(portal_secret: bytes) -> web.Application:
    """The UC phone application serving every phone registered in its `DEVICES_KEY` map."""
    app = make_app(_routes, portal_secret)

    async def client_ctx(app: web.Application) -> Any:
        timeout = aiohttp.ClientTimeout(total=uc_phone_modeled.FETCH_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            app[CLIENT_KEY] = session
            yield

    app.cleanup_ctx.append(client_ctx)
    return app
