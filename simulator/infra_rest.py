"""Infrastructure personality (RealPresence DMA, Resource Manager / Clariti): licensing REST.

Resource paths and the status shapes follow the Clariti API docs (poly-device-apis.md 4.1):
`/api/rest/config/licenses/license-status` returns `PlcmLicenseStatus` with `licensingStatus`
VALID / INVALID / VALID_SYSTEM_RESTART_REQUIRED / UNKNOWN, `poly-license` holds the documented
`PlcmPolyLicenseConfig` fields. Installing a key is modeled in `infra_rest_modeled`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from simulator import infra_rest_modeled
from simulator.faults import accepted_http_password
from simulator.https_face import basic_auth_ok, current_device, make_app
from simulator.licensing import effective_state
from simulator.state import LicenseState, SimDevice, SimLicense

BASE = "/api/rest/config/licenses"
POLY_LICENSE = f"{BASE}/poly-license"
CONFIG_KEY = "poly-license.licenseMode"


def product_id(device: SimDevice) -> str:
    """Product id as the licensing client names its product."""
    return "DMA" if device.family == "dma" else "RPRM"


def licensing_status(device: SimDevice, now: datetime | None = None) -> str:
    """VALID when every feature is active, VALID_SYSTEM_RESTART_REQUIRED right after an install."""
    if not device.licenses:
        return "UNKNOWN"
    states = {effective_state(lic, now) for lic in device.licenses.values()}
    if states != {LicenseState.ACTIVE}:
        return "INVALID"
    return "VALID_SYSTEM_RESTART_REQUIRED" if device.restart_required else "VALID"


def _feature(lic: SimLicense, now: datetime) -> dict[str, Any]:
    return {
        "name": lic.feature,
        "perpetual": lic.expires_at is None,
        "counted": False,
        "startDate": None,
        "expirationDate": lic.expires_at.isoformat() if lic.expires_at else None,
        # MODELED: the per-feature status object's fields are not documented publicly.
        "plcmLicenseFeatureStatus": effective_state(lic, now).value.upper(),
    }


async def license_status(request: web.Request) -> web.Response:
    """`GET /api/rest/config/licenses/license-status` -> `PlcmLicenseStatus`."""
    device = current_device(request)
    now = datetime.now(UTC)
    update = device.last_license_update
    return web.json_response(
        {
            "licensingStatus": licensing_status(device, now),
            "connectionStatus": "CONNECTION_NOT_ATTEMPTED",
            "lastSuccessfulDate": None,
            "lastAttemptDate": update.at.isoformat() if update else None,
            # The list wrapper's inner name is inferred from the type name.
            "plcmLicenseFeatureList": {
                "plcmLicenseFeature": [_feature(lic, now) for lic in device.licenses.values()]
            },
        }
    )


async def poly_license_config(request: web.Request) -> web.Response:
    """`GET /api/rest/config/licenses/poly-license` -> `PlcmPolyLicenseConfig`."""
    device = current_device(request)
    return web.json_response(
        {
            "usePolyLicensing": True,
            "serialNumber": device.serial,
            "productId": product_id(device),
            "productVersion": device.firmware,
            "licenseServerAddr1": "",
            "licenseServerAddr2": "",
            "instanceNiceName": device.system_name,
            "alternate": False,
            "licenseMode": device.config.get(CONFIG_KEY, "manual"),
            "hostname": device.system_name,
            "releaseCodeSet": False,
        }
    )


async def put_poly_license_config(request: web.Request) -> web.Response:
    """`PUT /api/rest/config/licenses/poly-license`: the serial must be the system's own."""
    device = current_device(request)
    try:
        body: Any = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("serialNumber") != device.serial:
        return web.json_response({"errorCode": "SERIAL_NUMBER_MISMATCH"}, status=400)
    mode = body.get("licenseMode", "manual")
    if mode not in ("automatic", "manual"):
        return web.json_response({"errorCode": "INVALID_LICENSE_MODE"}, status=400)
    device.config[CONFIG_KEY] = mode
    return web.Response(status=204)


async def poly_license_status(request: web.Request) -> web.Response:
    """`GET /api/rest/config/licenses/poly-license/status` -> `plcm-poly-license-status-v2`."""
    device = current_device(request)
    now = datetime.now(UTC)
    update = device.last_license_update
    installed = any(lic.key for lic in device.licenses.values())
    ok_time = update.at.isoformat() if update and update.result == "loaded" else None
    failed_time = update.at.isoformat() if update and update.result != "loaded" else None
    return web.json_response(
        {
            "serialNumber": device.serial,
            "productId": product_id(device),
            "productVersion": device.firmware,
            "isLicenseInstalled": installed or licensing_status(device, now) != "UNKNOWN",
            "concurrentCalls": 200,
            "concurrentVmrs": 0,
            "errorCode": (update.reason or "") if update and update.result != "loaded" else "",
            "lastLicenseUpdateSuccessTime": ok_time,
            "lastLicenseUpdateFailureTime": failed_time,
        }
    )


@web.middleware
async def _auth(request: web.Request, handler: Any) -> web.StreamResponse:
    device = current_device(request)
    if not basic_auth_ok(request, device.credentials.http_user, accepted_http_password(device)):
        return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="Polycom"'})
    if device.faults.busy:
        return web.json_response({"errorCode": "SERVICE_BUSY"}, status=503)
    response: web.StreamResponse = await handler(request)
    return response


def _routes(app: web.Application) -> None:
    app.middlewares.append(_auth)
    app.router.add_get(f"{BASE}/license-status", license_status)
    app.router.add_get(POLY_LICENSE, poly_license_config)
    app.router.add_put(POLY_LICENSE, put_poly_license_config)
    app.router.add_get(f"{POLY_LICENSE}/status", poly_license_status)
    infra_rest_modeled.add_routes(app)


def create_app(portal_secret: bytes) -> web.Application:
    """The DMA / RPRM application serving every infrastructure system in its device map."""
    return make_app(_routes, portal_secret)
