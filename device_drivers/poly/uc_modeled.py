"""MODELED license calls of the `poly-uc` driver: the one file to check against real phones.

No public source shows how a Poly phone reports feature licenses or what `<MAC>-license.cfg`
holds (poly-device-apis.md 1.3, 1.6). What is documented: phones fetch `<MAC>-license.cfg`
from their provisioning server, and `POST /api/v1/mgmt/updateConfiguration` makes them re-read
it. Modeled here, and agreed with the simulator:

* `GET /api/v1/mgmt/license/info` (modeled) → `{"data": {"Features": [{"Feature", "State",
  "ExpiresAt", "KeyRef"}], "LastUpdate": {"Time", "Result", "Feature", "Reason"} | null}}`.
* `<mac>-license.cfg` (modeled) is Polycom-style XML: `<license license.key.1="..." />`,
  written with `PUT <ProvServerAddress>/<mac>-license.cfg`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import quoteattr

from device_drivers.errors import HttpStatusError, NotSupported
from device_drivers.modeled_settings import ModeledParams
from device_drivers.models import LicenseStatus
from device_drivers.poly.parsing import (
    get_ci,
    license_state,
    parse_timestamp,
    require_mapping,
    text_field,
)
from device_drivers.transports import HttpClient, HttpTarget, TrustPolicy

LICENSE_INFO_PATH = "/api/v1/mgmt/license/info"
UPDATE_CONFIGURATION_PATH = "/api/v1/mgmt/updateConfiguration"
MAX_UPLOAD_BYTES = 64 * 1024

MODELED_CALLS: Mapping[str, str] = MappingProxyType(
    {
        "read_licenses": f"GET {LICENSE_INFO_PATH} (modeled)",
        "apply_activation": (
            "PUT <ProvServerAddress>/<mac>-license.cfg holding license.key.N (modeled file format),"
            f" then POST {UPDATE_CONFIGURATION_PATH} [R] and poll {LICENSE_INFO_PATH}"
            " LastUpdate (modeled)"
        ),
        "verify": f"GET {LICENSE_INFO_PATH} (modeled)",
    }
)


class Params(ModeledParams):
    """MODELED: where and how a phone reports its licenses; `[drivers.poly-uc]` overrides each."""

    license_info_path: str = LICENSE_INFO_PATH
    features_field: str = "Features"
    feature_field: str = "Feature"
    state_field: str = "State"
    expires_at_field: str = "ExpiresAt"
    key_ref_field: str = "KeyRef"


DEFAULTS = Params()


# --- pure: the modeled formats -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LicenseUpdate:
    """The phone's report of its last license-file load (modeled `LastUpdate`)."""

    time: str
    result: str
    feature: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class LicenseInfo:
    """Parsed modeled `license/info` data."""

    features: list[LicenseStatus]
    last_update: LicenseUpdate | None


def parse_license_info(data: Any, params: Params = DEFAULTS) -> LicenseInfo:
    """Parse the modeled `license/info` data (the envelope is already unwrapped), reading the
    field names in force."""
    info = require_mapping(data, "license/info (modeled)")
    raw_features = get_ci(info, params.features_field)
    if not isinstance(raw_features, list):
        raw_features = []
    features: list[LicenseStatus] = []
    for item in raw_features:
        if not isinstance(item, Mapping):
            continue
        name = text_field(item, params.feature_field)
        if name is None:
            continue
        ref = text_field(item, params.key_ref_field)
        features.append(
            LicenseStatus(
                feature=name,
                state=license_state(get_ci(item, params.state_field)),
                expires_at=parse_timestamp(get_ci(item, params.expires_at_field)),
                detail=f"key ...{ref}" if ref else None,
            )
        )
    last = get_ci(info, "LastUpdate")
    update = None
    if isinstance(last, Mapping) and text_field(last, "Time"):
        update = LicenseUpdate(
            time=text_field(last, "Time") or "",
            result=(text_field(last, "Result") or "").lower(),
            feature=text_field(last, "Feature"),
            reason=text_field(last, "Reason"),
        )
    return LicenseInfo(features=features, last_update=update)


def license_file_name(mac: str) -> str:
    """`<mac>-license.cfg`, the MAC as 12 lower-case hex digits (as phones request it) [R]."""
    return f"{re.sub(r'[^0-9a-f]', '', mac.lower())}-license.cfg"


def render_license_cfg(keys: list[str]) -> bytes:
    """The modeled license file holding `keys` as `license.key.1`, `license.key.2`, ..."""
    attrs = " ".join(f"license.key.{i}={quoteattr(k)}" for i, k in enumerate(keys, start=1))
    text = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f"<polycomConfig>\n  <license {attrs} />\n</polycomConfig>\n"
    )
    return text.encode()


_KEY_ATTR = re.compile(r'license\.key\.\d+\s*=\s*"([^"]*)"')
MAX_KEYS_PER_FILE = 32


def parse_license_cfg(text: str) -> list[str]:
    """The keys of an existing modeled license file, in order."""
    return [key.strip() for key in _KEY_ATTR.findall(text) if key.strip()]


def merge_keys(existing: list[str], key: str) -> list[str]:
    """Keys to write back: the file may hold other features' keys, which must survive; the
    newest key goes last and the oldest drop out beyond the file's limit."""
    keys = [k for k in existing if k != key] + [key]
    return keys[-MAX_KEYS_PER_FILE:]


def provisioning_location(address: str, mac: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of the license file under a ProvServerAddress."""
    url = address if "://" in address else f"http://{address}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotSupported(
            f"provisioning server {parts.scheme or '?'}://...: only HTTP(S) uploads are supported"
        )
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = f"{unquote(parts.path).rstrip('/')}/{license_file_name(mac)}"  # HttpTarget.url encodes
    return parts.scheme, parts.hostname, port, path


# --- I/O: the modeled calls ----------------------------------------------------------------


class LicenseFile:
    """The phone's modeled license file on its provisioning server (`<mac>-license.cfg`)."""

    def __init__(
        self,
        http: HttpClient,
        prov_address: str,
        mac: str,
        *,
        request_timeout_s: float,
        trust: TrustPolicy,
    ) -> None:
        scheme, host, port, self.path = provisioning_location(prov_address, mac)
        self._http = http
        self._target = HttpTarget(
            host=host,
            port=port,
            scheme="https" if scheme == "https" else "http",
            auth=None,
            trust=trust,
            timeout=request_timeout_s,
        )

    async def keys(self) -> list[str]:
        """The keys the file holds now (none when there is no file)."""
        reply = await self._http.request(self._target, "GET", self.path)
        if reply.status == 404:
            return []
        if reply.status != 200:
            raise HttpStatusError(
                f"provisioning server: reading the license file gave HTTP {reply.status}",
                status=reply.status,
            )
        return parse_license_cfg(reply.body.decode("utf-8", "replace"))

    async def write(self, keys: list[str]) -> None:
        """Replace the file with `keys`; no keys removes it."""
        if not keys:
            reply = await self._http.request(self._target, "DELETE", self.path)
            if reply.status not in (200, 204, 404):
                raise HttpStatusError(
                    f"provisioning server: removing the license file gave HTTP {reply.status}",
                    status=reply.status,
                )
            return
        body = render_license_cfg(keys)
        if len(body) > MAX_UPLOAD_BYTES:
            raise NotSupported("license file too large for the provisioning server")
        reply = await self._http.request(
            self._target, "PUT", self.path, data=body, headers={"Content-Type": "application/xml"}
        )
        if reply.status not in (200, 201, 204):
            raise HttpStatusError(
                f"provisioning server refused the license file: HTTP {reply.status}",
                status=reply.status,
            )
