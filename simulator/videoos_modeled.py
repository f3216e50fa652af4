"""MODELED option-key routes of the VideoOS personality (no public source shows one).

poly-device-apis.md 2.3: video option keys are serial-bound key codes entered in the web UI; no
API to list or enter them was found. The simulator models one, to be verified on hardware:

* `GET /rest/system/options` (modeled) ->
  `{"options": [{"name", "state", "expiresAt", "keyRef"}]}`
* `POST /rest/system/options` with `{"key": "..."}` (modeled) -> 200
  `{"success": true, "option": {...}}`, or 400 `{"success": false, "reason": "<problem>"}` where
  the problem is `malformed`, `tampered`, `wrong_serial`, `expired` or `unknown_feature`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from simulator.faults import refuse_if_license_api_absent
from simulator.https_face import PORTAL_SECRET_KEY, current_device
from simulator.licensing import apply_key, effective_state, key_reference
from simulator.state import SimLicense

OPTIONS_PATH = "/rest/system/options"


def _option(lic: SimLicense, now: datetime) -> dict[str, Any]:
    return {
        "name": lic.feature,
        "state": effective_state(lic, now).value,
        "expiresAt": lic.expires_at.isoformat() if lic.expires_at else None,
        "keyRef": key_reference(lic.key),
    }


async def list_options(request: web.Request) -> web.Response:
    """`GET /rest/system/options` (modeled)."""
    device = current_device(request)
    refuse_if_license_api_absent(device)
    now = datetime.now(UTC)
    return web.json_response({"options": [_option(lic, now) for lic in device.licenses.values()]})


async def apply_option_key(request: web.Request) -> web.Response:
    """`POST /rest/system/options` with `{"key"}` (modeled): checked against the serial."""
    device = current_device(request)
    try:
        body: Any = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    key = body.get("key") if isinstance(body, dict) else None
    if not isinstance(key, str) or not key.strip():
        return web.json_response({"success": False, "reason": "malformed"}, status=400)
    outcome = apply_key(device, request.app[PORTAL_SECRET_KEY], key.strip())
    if not outcome.ok or outcome.feature is None:
        return web.json_response({"success": False, "reason": outcome.reason}, status=400)
    lic = device.licenses[outcome.feature]
    return web.json_response({"success": True, "option": _option(lic, datetime.now(UTC))})


def add_routes(app: web.Application) -> None:
    """Install the modeled option-key routes."""
    app.router.add_get(OPTIONS_PATH, list_options)
    app.router.add_post(OPTIONS_PATH, apply_option_key)
