"""MODELED parts of the UC phone: license-file format, license loading, license state route.

No public source shows how a Poly phone reports feature licenses or what `<MAC>-license.cfg`
contains (poly-device-apis.md 1.3 and 1.6), so everything here is modeled and must be verified
on real hardware:

* `GET /api/v1/mgmt/license/info` (modeled) returns
  `{"data": {"Features": [{"Feature", "State", "ExpiresAt", "KeyRef"}],
  "LastUpdate": {"Time", "Result", "Feature", "Reason"} | null}, "Status": "2000"}`.
* `<mac>-license.cfg` (modeled) is a Polycom-style XML config whose `license` element carries
  the keys as attributes `license.key.1`, `license.key.2`, ...
* On `updateConfiguration` the phone fetches `<provisioning URL>/<mac>-license.cfg` over HTTP,
  checks each key against its own serial and loads the good ones; a bad key leaves the
  license as it was and the reason shows in `LastUpdate`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from xml.sax.saxutils import quoteattr

import aiohttp
from aiohttp import web

from simulator.faults import refuse_if_license_api_absent
from simulator.https_face import current_device
from simulator.licensing import apply_key, effective_state, key_reference
from simulator.state import SimDevice, SimLicenseUpdate

LICENSE_INFO_PATH = "/api/v1/mgmt/license/info"
FETCH_TIMEOUT_S = 5.0
MAX_LICENSE_FILE_BYTES = 64 * 1024
MAX_KEYS_PER_FILE = 32
_KEY_ATTR = re.compile(r'license\.key\.\d+\s*=\s*"([^"]*)"')


def license_file_name(mac: str) -> str:
    """`<mac>-license.cfg` with the MAC as 12 lower-case hex digits (as phones request it)."""
    return f"{re.sub(r'[^0-9a-f]', '', mac.lower())}-license.cfg"


def render_license_cfg(keys: list[str]) -> str:
    """The modeled license file holding `keys`."""
    attrs = " ".join(f"license.key.{i}={quoteattr(k)}" for i, k in enumerate(keys, start=1))
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f"<polycomConfig>\n  <license {attrs} />\n</polycomConfig>\n"
    )


def parse_license_cfg(text: str) -> list[str]:
    """The keys in a modeled license file, in order (at most `MAX_KEYS_PER_FILE`)."""
    return [key.strip() for key in _KEY_ATTR.findall(text)][:MAX_KEYS_PER_FILE]


def _record(device: SimDevice, result: str, reason: str | None = None) -> None:
    device.last_license_update = SimLicenseUpdate(
        at=datetime.now(UTC), result=result, reason=reason
    )


async def load_license_file(
    device: SimDevice, client: aiohttp.ClientSession, secret: bytes
) -> None:
    """Fetch and load `<mac>-license.cfg` from the phone's provisioning server (modeled)."""
    if not device.provisioning_url or not device.mac:
        _record(device, "no_server")
        return
    url = f"{device.provisioning_url.rstrip('/')}/{license_file_name(device.mac)}"
    try:
        async with client.get(url) as response:
            if response.status == 404:
                _record(device, "no_file")
                return
            if response.status != 200:
                _record(device, "fetch_failed", f"HTTP {response.status}")
                return
            raw = await response.content.read(MAX_LICENSE_FILE_BYTES)
    except (TimeoutError, aiohttp.ClientError) as exc:
        _record(device, "fetch_failed", type(exc).__name__)
        return
    keys = parse_license_cfg(raw.decode("utf-8", errors="replace"))
    if not keys:
        _record(device, "rejected", "malformed")
        return
    current = {lic.key for lic in device.licenses.values() if lic.key}
    problem: SimLicenseUpdate | None = None
    loaded: SimLicenseUpdate | None = None
    for key in keys:
        if key in current:
            continue  # already loaded: a provisioning server keeps serving old keys
        outcome = apply_key(device, secret, key)
        if outcome.ok:
            loaded = device.last_license_update
        elif problem is None:
            problem = device.last_license_update
    if problem is None and loaded is None:
        _record(device, "unchanged")
    else:
        device.last_license_update = problem or loaded


async def license_info(request: web.Request) -> web.Response:
    """`GET /api/v1/mgmt/license/info` (modeled): per-feature state, expiry and last update."""
    device = current_device(request)
    refuse_if_license_api_absent(device)
    now = datetime.now(UTC)
    features = [
        {
            "Feature": lic.feature,
            "State": effective_state(lic, now).value,
            "ExpiresAt": lic.expires_at.isoformat() if lic.expires_at else "",
            "KeyRef": key_reference(lic.key) or "",
        }
        for lic in device.licenses.values()
    ]
    update = device.last_license_update
    last = None
    if update is not None:
        last = {
            "Time": update.at.isoformat(),
            "Result": update.result,
            "Feature": update.feature or "",
            "Reason": update.reason or "",
        }
    return web.json_response({"data": {"Features": features, "LastUpdate": last}, "Status": "2000"})


def add_routes(app: web.Application) -> None:
    """Install the modeled routes on the UC phone application."""
    app.router.add_get(LICENSE_INFO_PATH, license_info)
