"""The driver registry: entry points in, duplicates refused, third-party drivers welcome."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from device_drivers.registry import (
    DriverAlreadyRegistered,
    DriverNotFound,
    DriverRegistry,
    DriverRegistryError,
)
from tests.e2e.cli import polyfleet


def test_a_separately_installed_package_adds_a_driver_by_entry_point_alone() -> None:
    registry = DriverRegistry()
    driver = registry.get("example-lab-phone")
    assert driver.__module__ == "polyfleet_example_driver"
    assert registry.origin("example-lab-phone").startswith("polyfleet-example-driver")


def test_duplicate_driver_names_are_an_error_naming_both_sources() -> None:
    points = [
        EntryPoint("example-lab-phone", "polyfleet_example_driver:LabPhoneDriver", "g"),
        EntryPoint("example-lab-phone", "tests.unit.dup_driver:LabPhoneDriver", "g"),
    ]
    registry = DriverRegistry(group="unused")
    with pytest.raises(DriverAlreadyRegistered, match="example-lab-phone"):
        registry.load_entry_points(points)


def test_entry_point_name_must_match_the_driver_name() -> None:
    points = [EntryPoint("other-name", "polyfleet_example_driver:LabPhoneDriver", "g")]
    with pytest.raises(DriverRegistryError, match=r"loads driver named .example-lab-phone."):
        DriverRegistry(group="unused").load_entry_points(points)


def test_a_broken_entry_point_is_reported_not_swallowed() -> None:
    points = [EntryPoint("ghost", "no_such_module_xyz:Driver", "g")]
    with pytest.raises(DriverRegistryError, match=r"'ghost'.*failed to load"):
        DriverRegistry(group="unused").load_entry_points(points)


def test_unknown_driver_lists_the_installed_ones() -> None:
    with pytest.raises(DriverNotFound, match=r"installed: .*example-lab-phone"):
        DriverRegistry().get("nope")


def test_registries_do_not_share_state() -> None:
    empty = DriverRegistry(group="polyfleet.no-such-group")
    assert empty.all() == []
    assert DriverRegistry().get("example-lab-phone") is not None


def test_drivers_list_shows_the_third_party_driver(tmp_path: Path) -> None:
    result = polyfleet(str(tmp_path / "unused.db"), "drivers", "list", "-o", "json")
    assert result.code == 0
    names = {row["name"]: row for row in result.json()}
    assert names["example-lab-phone"]["capabilities"] == ["identify"]
