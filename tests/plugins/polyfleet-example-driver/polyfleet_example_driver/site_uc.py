"""How a site replaces a driver's modeled module outright, without forking polyfleet.

Suppose a site's phones report licenses at `GET /api/v2/mgmt/licenses` as
`{"data": [{"name": ..., "status": ..., "validUntil": ...}]}`: neither the route nor the shape of
polyfleet's modeled `license/info`. When only the route or the field names differ, the config
file is enough (`[drivers.poly-uc] license_info_path = ...`, `features_field = ...`). When the
shape differs, a plugin subclasses the driver and swaps its `modeled` module; the documented
reads (`device/info`, `network/info`) stay polyfleet's. To use it, register it under its own
name in the plugin's pyproject.toml and point the devices' `driver` at that name:

    [project.entry-points."polyfleet.drivers"]
    site-uc = "polyfleet_example_driver.site_uc:SiteUcDriver"

(Not registered in this example package, so the contract tests list the same drivers.)
"""

from __future__ import annotations

import sys
from types import MappingProxyType, ModuleType
from typing import Any, ClassVar

from device_drivers.models import LicenseStatus
from device_drivers.poly import uc_modeled
from device_drivers.poly.parsing import get_ci, license_state, parse_timestamp, text_field
from device_drivers.poly.uc import PolyUcDriver

LICENSE_INFO_PATH = "/api/v2/mgmt/licenses"


class Params(uc_modeled.Params):
    """The site's route as the default; still overridable in the config file."""

    license_info_path: str = LICENSE_INFO_PATH


def parse_license_info(data: Any, params: Params | uc_modeled.Params) -> uc_modeled.LicenseInfo:
    """The site's shape: a list of `{"name", "status", "validUntil"}`."""
    items = data if isinstance(data, list) else []
    features = [
        LicenseStatus(
            feature=name,
            state=license_state(get_ci(item, "status")),
            expires_at=parse_timestamp(get_ci(item, "validUntil")),
        )
        for item in items
        if isinstance(item, dict) and (name := text_field(item, "name"))
    ]
    return uc_modeled.LicenseInfo(features=features, last_update=None)


# What the driver takes from its modeled module; everything else stays uc_modeled's.
LicenseFile = uc_modeled.LicenseFile
merge_keys = uc_modeled.merge_keys
UPDATE_CONFIGURATION_PATH = uc_modeled.UPDATE_CONFIGURATION_PATH


class SiteUcDriver(PolyUcDriver):
    """poly-uc with this module as its modeled calls."""

    name: ClassVar[str] = "site-uc"
    params_model = Params
    modeled: ClassVar[ModuleType] = sys.modules[__name__]
    modeled_calls = MappingProxyType(
        {"read_licenses": f"GET {LICENSE_INFO_PATH} (modeled, site-specific)"}
    )
