"""Modeled driver parameters from the config file: refused naming the driver and key, and in
force for drivers built without explicit ones."""

from __future__ import annotations

import pytest

from device_drivers.modeled_settings import ModeledSettingsError, configure, reset
from device_drivers.poly.group_series import PolycomGsDriver
from device_drivers.poly.uc import PolyUcDriver
from device_drivers.poly.videoos import PolyVideoOsDriver
from tests.unit.device_drivers.fakes import ctx


def test_an_invalid_modeled_parameter_is_refused_naming_the_driver_and_key() -> None:
    with pytest.raises(ModeledSettingsError, match=r"\[drivers.polycom-gs\] apply_command"):
        configure(
            {"polycom-gs": {"apply_command": "optionkey apply"}},
            {"polycom-gs": PolycomGsDriver.params_model},
        )
    with pytest.raises(ModeledSettingsError, match=r"\[drivers.poly-uc\] license_path: Extra"):
        configure({"poly-uc": {"license_path": "/x"}}, {"poly-uc": PolyUcDriver.params_model})
    with pytest.raises(ModeledSettingsError, match=r"\[drivers.no-such\]: no driver"):
        configure({"no-such": {}}, {"poly-uc": PolyUcDriver.params_model})


async def test_configured_values_are_in_force_for_drivers_without_explicit_ones() -> None:
    configure(
        {"poly-videoos": {"options_path": "/rest/site/options"}},
        {"poly-videoos": PolyVideoOsDriver.params_model},
    )
    try:
        assert PolyVideoOsDriver.params_in_force() == {"options_path": "/rest/site/options"}
        driver = PolyVideoOsDriver(ctx())
        assert driver.license_call() == ("GET /rest/site/options", True)
    finally:
        reset()
    assert PolyVideoOsDriver.params_in_force() == {"options_path": "/rest/system/options"}
