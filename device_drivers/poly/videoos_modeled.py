"""MODELED option-key calls of the `poly-videoos` driver: the one file to check on hardware.

Video option keys are serial-bound codes entered in the web UI; no public API lists or enters
them (poly-device-apis.md 2.3). Modeled here, and agreed with the simulator:

* `GET /rest/system/options` (modeled) → `{"options": [{"name", "state", "expiresAt",
  "keyRef"}]}`.
* `POST /rest/system/options` `{"key": "..."}` (modeled) → 200 `{"success": true, "option":
  {...}}`, or 400 `{"success": false, "reason": "<malformed|tampered|wrong_serial|expired|
  unknown_feature>"}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from device_drivers.modeled_settings import ModeledParams
from device_drivers.models import LicenseStatus
from device_drivers.poly.parsing import (
    get_ci,
    license_state,
    parse_timestamp,
    require_mapping,
    text_field,
)

OPTIONS_PATH = "/rest/system/options"

MODELED_CALLS: Mapping[str, str] = MappingProxyType(
    {
        "read_licenses": f"GET {OPTIONS_PATH} (modeled)",
        "apply_activation": f'POST {OPTIONS_PATH} {{"key": ...}} (modeled)',
        "verify": f"GET {OPTIONS_PATH} (modeled)",
    }
)


class Params(ModeledParams):
    """MODELED: where VideoOS lists and takes option keys; `[drivers.poly-videoos]` overrides."""

    options_path: str = OPTIONS_PATH


def option_body(key: str) -> dict[str, str]:
    """The modeled apply body."""
    return {"key": key}


def parse_option(item: Mapping[str, Any]) -> LicenseStatus | None:
    """One modeled option entry; None when it names no option."""
    name = text_field(item, "name")
    if name is None:
        return None
    ref = text_field(item, "keyRef")
    return LicenseStatus(
        feature=name,
        state=license_state(get_ci(item, "state")),
        expires_at=parse_timestamp(get_ci(item, "expiresAt")),
        detail=f"key ...{ref}" if ref else None,
    )


def parse_options(payload: Any) -> list[LicenseStatus]:
    """The modeled `GET /rest/system/options` reply."""
    body = require_mapping(payload, "/rest/system/options (modeled)")
    items = get_ci(body, "options")
    parsed = (
        [parse_option(i) for i in items if isinstance(i, Mapping)]
        if isinstance(items, list)
        else []
    )
    return [status for status in parsed if status is not None]


def parse_apply(payload: Any) -> tuple[LicenseStatus | None, str | None]:
    """The modeled apply reply: (option now reported, None) or (None, the device's reason)."""
    body = require_mapping(payload, "/rest/system/options apply (modeled)")
    if get_ci(body, "success") is True:
        option = get_ci(body, "option")
        return (parse_option(option) if isinstance(option, Mapping) else None), None
    return None, text_field(body, "reason") or "refused"
