"""The driver registry: entry points in, duplicates refused, third-party drivers welcome.

Every test gets its own registry (the `registry` fixture, or one it builds): what one test
registers never reaches another, whatever order they run in.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from polyfleet_example_driver import SYS_DESCR, SYS_NAME, LabPhoneDriver

from controller.device_session import Transports
from controller.discovery import Discoverer
from controller.scan import ScanEngine, ScanOptions
from device_drivers.models import DeviceFacts
from device_drivers.poly.uc import PolyUcDriver
from device_drivers.registry import (
    DriverAlreadyRegistered,
    DriverNotFound,
    DriverRegistry,
    DriverRegistryError,
)
from device_drivers.transports import SnmpScalar, SnmpTarget
from inventory.models import Device
from tests.e2e.cli import polyfleet


@pytest.fixture
def registry() -> DriverRegistry:
    """A fresh registry of the installed entry points (built-ins and the example plugin)."""
    return DriverRegistry()


def test_a_separately_installed_package_adds_a_driver_by_entry_point_alone(
    registry: DriverRegistry,
) -> None:
    driver = registry.get("example-lab-phone")
    assert driver.__module__ == "polyfleet_example_driver"
    assert registry.origin("example-lab-phone").startswith("polyfleet-example-driver")


def test_duplicate_driver_names_are_an_error_naming_both_sources() -> None:
    points = [
        EntryPoint("example-lab-phone", "polyfleet_example_driver:LabPhoneDriver", "g"),
        EntryPoint("example-lab-phone", "tests.unit.device_drivers.dup_driver:LabPhoneDriver", "g"),
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


def test_unknown_driver_lists_the_installed_ones(registry: DriverRegistry) -> None:
    with pytest.raises(DriverNotFound, match=r"installed: .*example-lab-phone"):
        registry.get("nope")


def test_registries_do_not_share_state(registry: DriverRegistry) -> None:
    one, other = DriverRegistry(group="polyfleet.no-such-group"), DriverRegistry(group="x.none")
    one.register(LabPhoneDriver)
    assert ([d.name for d in one.all()], other.all()) == (["example-lab-phone"], [])
    assert registry.get("example-lab-phone") is LabPhoneDriver


def test_drivers_list_shows_the_third_party_driver(tmp_path: Path) -> None:
    result = polyfleet(str(tmp_path / "unused.db"), "drivers", "list", "-o", "json")
    assert result.code == 0
    names = {row["name"]: row for row in result.json()}
    assert names["example-lab-phone"]["capabilities"] == ["identify"]


class LabPhoneAgent:
    """The SNMP side of one lab phone: what the example driver's `identify()` asks for."""

    def __init__(self, serial: str, model: str) -> None:
        self.values: dict[str, SnmpScalar] = {SYS_NAME: serial, SYS_DESCR: model}
        self.asked: list[str] = []

    async def get(self, target: SnmpTarget, oids: Sequence[str]) -> dict[str, SnmpScalar]:
        self.asked.append(target.host)
        return {oid: self.values[oid] for oid in oids if oid in self.values}

    async def walk(self, target: SnmpTarget, base_oid: str) -> list[tuple[str, SnmpScalar]]:
        return []

    async def close(self) -> None:
        return None


async def test_a_plugin_device_is_scanned_by_its_driver_without_the_inventory_naming_it(
    registry: DriverRegistry,
) -> None:
    agent = LabPhoneAgent("LAB0001", "LabPhone 100")
    engine = ScanEngine(
        registry, Transports(snmp=agent), {}, options=ScanOptions(read_licenses=False)
    )
    device = Device(serial="LAB0001", model="labphone-100", host="192.0.2.7")
    assert device.driver is None
    result = await engine.scan_one(device)
    assert (result.driver, result.ok, agent.asked) == ("example-lab-phone", True, ["192.0.2.7"])
    assert result.facts == DeviceFacts(serial="LAB0001", model="LabPhone 100")


def test_built_in_models_and_unknown_ones_are_chosen_through_the_registry(
    registry: DriverRegistry,
) -> None:
    assert registry.driver_for(Device(serial="A1", model="VVX 450")) is PolyUcDriver
    assert registry.driver_for(Device(serial="A2", model="Studio X50")).name == "poly-videoos"
    assert registry.driver_for(Device(serial="A3", model="Toaster 9")).name == "snmp-generic"
    assert registry.driver_for(Device(serial="A4", model="VVX 450", driver="analog")).name == (
        "analog"
    )


def test_discovery_probes_in_the_order_the_drivers_declare(registry: DriverRegistry) -> None:
    class LastResort(LabPhoneDriver):
        name = "lab-last-resort"
        families = frozenset({"lab-last"})
        probe_order = 99

    registry.register(LastResort)
    assert [d.name for d in registry.probe_order()] == [
        "poly-uc", "poly-videoos", "polycom-gs", "lab-last-resort",
    ]  # fmt: skip
    discoverer = Discoverer(registry, Transports(), [])
    assert discoverer.ports_for("poly-infra").https == 8443  # the driver's default port
    assert discoverer.ports_for("poly-uc").https is None


def test_a_family_claimed_twice_is_an_error_unless_one_driver_refines_the_other() -> None:
    class SiteUc(PolyUcDriver):
        name = "site-uc"
        families = frozenset({"vvx"})

    class Rival(LabPhoneDriver):
        name = "rival"
        families = frozenset({"trio"})

    registry = DriverRegistry(group="polyfleet.no-such-group")
    for driver in (PolyUcDriver, SiteUc, Rival):
        registry.register(driver)
    assert registry.for_family("vvx") is SiteUc
    with pytest.raises(DriverRegistryError, match=r"'trio' is claimed by poly-uc, rival"):
        registry.for_family("trio")
