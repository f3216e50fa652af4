"""MODELED license install on DMA / RPRM, shaped after the documented Clariti resources.

The Clariti docs name `POST /api/rest/config/licenses/poly-license/op` ("installs a license
response (encoded license) from the server") but not its body. The simulator models:

* `POST /api/rest/config/licenses/poly-license/op` (modeled body) with JSON
  `{"serialNumber": "<own serial>", "licenseResponse": "<activation key>"}` or the key as
  `text/plain`; 200 `{"licensingStatus": "VALID_SYSTEM_RESTART_REQUIRED", "feature": ...}` on
  success, 400 `{"errorCode": "<problem>"}` otherwise (malformed / tampered / wrong_serial /
  expired / unknown_feature / SERIAL_NUMBER_MISMATCH).
* `POST /api/rest/system/restart` (modeled): restarts the system, which turns
  VALID_SYSTEM_RESTART_REQUIRED into VALID.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from simulator.https_face import PORTAL_SECRET_KEY, current_device
from simulator.licensing import apply_key

OP_PATH = "/api/rest/config/licenses/poly-license/op"
RESTART_PATH = "/api/rest/system/restart"
MAX_BODY_BYTES = 16 * 1024


async def _key_from(request: web.Request, serial: str) -> tuple[str | None, str | None]:
    """(key, error code) from a JSON or plain-text body."""
    raw = await request.content.read(MAX_BODY_BYTES)
    if request.content_type == "application/json":
        try:
            body: Any = json.loads(raw)
        except ValueError:
            return None, "malformed"
        if not isinstance(body, dict):
            return None, "malformed"
        if body.get("serialNumber", serial) != serial:
            return None, "SERIAL_NUMBER_MISMATCH"
        key = body.get("licenseResponse")
        return (key.strip(), None) if isinstance(key, str) and key.strip() else (None, "malformed")
    text = raw.decode("utf-8", errors="replace").strip()
    return (text, None) if text else (None, "malformed")


async def install_license(request: web.Request) -> web.Response:
    """`POST .../poly-license/op` (modeled): install a key bound to this system's serial."""
    device = current_device(request)
    key, error = await _key_from(request, device.serial)
    if key is None:
        return web.json_response({"errorCode": error}, status=400)
    outcome = apply_key(device, request.app[PORTAL_SECRET_KEY], key)
    if not outcome.ok:
        return web.json_response({"errorCode": outcome.reason}, status=400)
    device.restart_required = True
    return web.json_response(
        {"licensingStatus": "VALID_SYSTEM_RESTART_REQUIRED", "feature": outcome.feature}
    )


async def restart(request: web.Request) -> web.Response:
    """`POST /api/rest/system/restart` (modeled): clears VALID_SYSTEM_RESTART_REQUIRED."""
    device = current_device(request)
    device.boot_time = time.time()
    device.restart_required = False
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    """Install the modeled routes on the infrastructure application."""
    app.router.add_post(OP_PATH, install_license)
    app.router.add_post(RESTART_PATH, restart)
