"""MODELED calls of the `poly-infra` driver (DMA, RPRM / Clariti): the one file to check.

Documented [R]: the `PlcmLicenseStatus` representation (`licensingStatus` VALID / INVALID /
VALID_SYSTEM_RESTART_REQUIRED / UNKNOWN, `plcmLicenseFeatureList`), the `plcm-poly-license-config`
fields (serial number, product id and version), the `poly-license/op` resource that "installs a
license response", DMA `stLicLicenseStatus` and RPRM `serviceLicenseCapability` over SNMP.
Modeled here, and agreed with the simulator:

* resource paths under `/api/rest/config/licenses/` (license-status, poly-license) as JSON;
* per-feature `plcmLicenseFeatureStatus` inside `plcmLicenseFeatureList.plcmLicenseFeature[]`;
* `POST /api/rest/config/licenses/poly-license/op` body `{"serialNumber", "licenseResponse"}`,
  400 `{"errorCode"}` on refusal; `POST /api/rest/system/restart`;
* DMA stLic rows named after the feature; RPRM's single feature named `system`;
* sysDescr `Polycom <model>, software <version>` (shared `parsing.parse_sys_descr`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from device_drivers.models import LicenseStatus
from device_drivers.poly.parsing import (
    get_ci,
    license_state,
    parse_timestamp,
    require_mapping,
    text_field,
)
from inventory.models import LicenseState

BASE = "/api/rest/config/licenses"
LICENSE_STATUS_PATH = f"{BASE}/license-status"
POLY_LICENSE_PATH = f"{BASE}/poly-license"
INSTALL_PATH = f"{BASE}/poly-license/op"
RESTART_PATH = "/api/rest/system/restart"
RPRM_FEATURE = "system"
RESTART_REQUIRED = "VALID_SYSTEM_RESTART_REQUIRED"

MODELED_CALLS: Mapping[str, str] = MappingProxyType(
    {
        "identify": (
            f"GET {POLY_LICENSE_PATH} serialNumber (documented fields, modeled path);"
            " SNMP sysDescr 'Polycom <model>, software <version>' (modeled format)"
        ),
        "read_licenses": (
            f"GET {LICENSE_STATUS_PATH} per-feature plcmLicenseFeatureStatus (modeled), else SNMP"
            " stLicLicenseStatus rows named by feature / RPRM serviceLicenseCapability as"
            f" feature {RPRM_FEATURE!r} (modeled naming)"
        ),
        "apply_activation": (
            f'POST {INSTALL_PATH} {{"serialNumber", "licenseResponse"}} (modeled body),'
            f" then POST {RESTART_PATH} (modeled) while licensingStatus is {RESTART_REQUIRED}"
        ),
        "verify": f"GET {LICENSE_STATUS_PATH} (modeled per-feature status)",
    }
)

LICENSING_STATUS_STATE: dict[str, LicenseState] = {
    "VALID": LicenseState.ACTIVE,
    RESTART_REQUIRED: LicenseState.ACTIVE,
    "INVALID": LicenseState.EXPIRED,
    "UNKNOWN": LicenseState.UNKNOWN,
}
"""Documented `licensingStatus` → our state, used when a feature has no status of its own."""

DMA_STATUS_STATE: dict[int, LicenseState] = {
    1: LicenseState.ACTIVE,
    2: LicenseState.EXPIRED,
    3: LicenseState.MISSING,
}
"""DMA stLicLicenseStatus 1 valid / 2 invalid / 3 notInstalled [R]; invalid is reported as
expired (SNMP cannot tell expired from deactivated)."""


@dataclass(frozen=True, slots=True)
class InfraLicenseStatus:
    """Parsed `PlcmLicenseStatus`."""

    licensing_status: str
    features: list[LicenseStatus]


def install_body(serial: str, key: str) -> dict[str, str]:
    """The modeled install body."""
    return {"serialNumber": serial, "licenseResponse": key}


def parse_license_status(payload: Any) -> InfraLicenseStatus:
    """`PlcmLicenseStatus` with its feature list (modeled per-feature status)."""
    body = require_mapping(payload, "license-status")
    overall = (text_field(body, "licensingStatus") or "UNKNOWN").upper()
    fallback = LICENSING_STATUS_STATE.get(overall, LicenseState.UNKNOWN)
    wrapper = get_ci(body, "plcmLicenseFeatureList")
    items = get_ci(wrapper, "plcmLicenseFeature") if isinstance(wrapper, Mapping) else wrapper
    features: list[LicenseStatus] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping) or (name := text_field(item, "name")) is None:
            continue
        own = get_ci(item, "plcmLicenseFeatureStatus")
        state = license_state(own) if own is not None else fallback
        features.append(
            LicenseStatus(
                feature=name,
                state=state,
                expires_at=parse_timestamp(get_ci(item, "expirationDate")),
                detail=f"licensingStatus {overall}",
            )
        )
    return InfraLicenseStatus(licensing_status=overall, features=features)


def parse_poly_license_serial(payload: Any) -> tuple[str | None, str | None]:
    """(serialNumber, productVersion) of `plcm-poly-license-config`."""
    body = require_mapping(payload, "poly-license")
    return text_field(body, "serialNumber"), text_field(body, "productVersion")


def dma_licenses(
    names: list[tuple[str, Any]], states: list[tuple[str, Any]]
) -> list[LicenseStatus]:
    """stLicClusterName / stLicLicenseStatus walks joined on their row index."""
    by_index = {oid.rsplit(".", 1)[-1]: value for oid, value in states}
    result: list[LicenseStatus] = []
    for oid, name in names:
        code = by_index.get(oid.rsplit(".", 1)[-1])
        text = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name or "")
        if not text.strip():
            continue
        state = (
            DMA_STATUS_STATE.get(code, LicenseState.UNKNOWN)
            if isinstance(code, int)
            else (LicenseState.UNKNOWN)
        )
        result.append(
            LicenseStatus(feature=text.strip(), state=state, detail=f"stLicLicenseStatus {code}")
        )
    return result


def rprm_license(capability: Any) -> LicenseStatus:
    """RPRM serviceLicenseCapability as the modeled `system` feature: >0 active, 0 missing."""
    if not isinstance(capability, int):
        return LicenseStatus(feature=RPRM_FEATURE, state=LicenseState.UNKNOWN)
    state = LicenseState.ACTIVE if capability > 0 else LicenseState.MISSING
    return LicenseStatus(
        feature=RPRM_FEATURE, state=state, detail=f"serviceLicenseCapability {capability}"
    )
