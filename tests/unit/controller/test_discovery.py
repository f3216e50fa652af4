"""Discovery's decisions with fake drivers and a fake SNMP agent (no sockets): address ranges,
the probe order, which credential profile is remembered, the outcome of every kind of address,
and the ports a device is probed on and keeps."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import pytest
from pydantic import SecretStr

from controller.device_session import Transports
from controller.discovery import (
    MAX_ADDRESSES,
    Discovered,
    Discoverer,
    DiscoveryError,
    Outcome,
    device_from_discovery,
    expand_targets,
)
from device_drivers.base import Capability, DeviceDriver
from device_drivers.errors import (
    AuthenticationFailed,
    DeviceTimeout,
    DeviceUnreachable,
    MalformedReply,
    NotSupported,
)
from device_drivers.identity_oids import (
    IDENTITY_DEVICE_MODEL,
    IDENTITY_DEVICE_SERIAL_NUMBER,
    SYS_DESCR,
    SYS_OBJECT_ID,
)
from device_drivers.models import ApplyResult, DeviceFacts, LicenseStatus
from device_drivers.names import DriverName
from device_drivers.registry import DriverRegistry
from device_drivers.transports import SnmpScalar, SnmpTarget
from inventory.catalog import MODELED_SYS_OBJECT_IDS, ProductGroup
from inventory.models import CredentialProfile, DevicePorts

UC = CredentialProfile(name="uc", http_user="Polycom", http_password=SecretStr("456"))
ADMIN = CredentialProfile(name="admin", http_user="admin", http_password=SecretStr("456"))

Answer = Callable[[str | None], DeviceFacts]
"""What a fake device answers a driver, given the profile name; raises to refuse."""


def answers(serial: str, model: str, *, accepts: str | None = None) -> Answer:
    def answer(profile: str | None) -> DeviceFacts:
        if accepts is not None and profile != accepts:
            raise AuthenticationFailed("HTTP 401")
        return DeviceFacts(serial=serial, mac=None, model=model)

    return answer


def refuses(error: Exception) -> Answer:
    def answer(profile: str | None) -> DeviceFacts:
        raise error

    return answer


@dataclass
class FakeNetwork:
    """Per address: what SNMP says (None: silent) and what each driver's identify() gets."""

    snmp: dict[str, dict[str, SnmpScalar]] = field(default_factory=dict)
    devices: dict[str, dict[str, Answer]] = field(default_factory=dict)
    probes: list[tuple[str, str, str | None, DevicePorts]] = field(default_factory=list)
    """(address, driver, profile, ports) of every identify() call, in order."""

    async def get(self, target: SnmpTarget, oids: Sequence[str]) -> dict[str, SnmpScalar]:
        values = self.snmp.get(target.host)
        if values is None:
            raise DeviceTimeout("no answer", host=target.host)
        return {oid: values.get(oid) for oid in oids}

    async def walk(self, target: SnmpTarget, base_oid: str) -> list[tuple[str, SnmpScalar]]:
        return []

    async def close(self) -> None:
        return None

    def identify(self, driver: DeviceDriver) -> DeviceFacts:
        ctx = driver.ctx
        host = ctx.host
        profile = ctx.credentials.name if ctx.credentials else None
        self.probes.append((host, driver.name, profile, ctx.device.ports))
        answer = self.devices.get(host, {}).get(driver.name)
        if answer is None:
            raise DeviceUnreachable("connection refused", host=host)
        facts = answer(profile)
        if facts.serial == "ECHO":  # a driver that falls back to the record's serial
            return facts.model_copy(update={"serial": ctx.device.serial})
        return facts


BUILT_IN = frozenset(name.value for name in DriverName)
"""The fakes stand in for the built-in drivers, with their declared families and probe order."""


def registry_for(network: FakeNetwork) -> DriverRegistry:
    registry = DriverRegistry(group="polyfleet.tests.no-such-group")
    for real in DriverRegistry().all():
        if real.name not in BUILT_IN:
            continue

        class Fake(DeviceDriver):
            name = real.name
            families = real.families
            probe_order = real.probe_order
            default_ports = real.default_ports
            fallback = real.fallback
            capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.IDENTIFY})

            async def identify(self) -> DeviceFacts:
                return network.identify(self)

            async def read_licenses(self) -> list[LicenseStatus]:
                raise NotSupported("fake")

            async def apply_activation(self, feature: str, key: str) -> ApplyResult:
                raise NotSupported("fake")

        registry.register(Fake)
    return registry


def discoverer(
    network: FakeNetwork,
    profiles: Sequence[CredentialProfile] = (UC, ADMIN),
    ports: DevicePorts | None = None,
) -> Discoverer:
    return Discoverer(
        registry_for(network), Transports(snmp=network), profiles, ports=ports, concurrency=4
    )


async def discover(network: FakeNetwork, *addresses: str, **kwargs: object) -> list[Discovered]:
    return await discoverer(network, **kwargs).discover(list(addresses))  # type: ignore[arg-type]


def test_ranges_expand_to_host_addresses_once() -> None:
    assert expand_targets(["192.0.2.0/30", "192.0.2.1", " 192.0.2.9 "]) == [
        "192.0.2.1",
        "192.0.2.2",
        "192.0.2.9",
    ]
    assert len(expand_targets(["10.1.0.0/16"])) == MAX_ADDRESSES - 2


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["10.0.0.0/8"], "10.0.0.0/8 has 16,777,216 addresses; at most 65,536 per run"),
        (["10.1.0.0/16", "10.2.0.0/24"], "10.2.0.0/24 has 256 addresses"),
        (["10.0.0.0/33"], "'10.0.0.0/33' is not an address or CIDR"),
        (["printer.example"], "'printer.example' is not an address or CIDR"),
    ],
)
def test_ranges_that_cannot_be_used_are_refused(specs: list[str], message: str) -> None:
    with pytest.raises(DiscoveryError, match=message):
        expand_targets(specs)


async def test_a_confident_snmp_answer_picks_the_driver_at_once() -> None:
    network = FakeNetwork(
        snmp={"192.0.2.1": {SYS_OBJECT_ID: MODELED_SYS_OBJECT_IDS["studiox"]}},
        devices={"192.0.2.1": {"poly-videoos": answers("8L1", "StudioX50", accepts="admin")}},
    )
    [found] = await discover(network, "192.0.2.1")
    assert (found.outcome, found.driver, found.credentials) == (
        Outcome.FOUND,
        "poly-videoos",
        "admin",
    )
    # Only the SNMP-picked driver was asked, with each profile until one worked.
    assert [(d, p) for _, d, p, _ in network.probes] == [
        ("poly-videoos", "uc"),
        ("poly-videoos", "admin"),
    ]


async def test_without_snmp_the_drivers_are_tried_in_probe_order() -> None:
    network = FakeNetwork(devices={"192.0.2.1": {"polycom-gs": answers("82A1", "HDX 7000")}})
    [found] = await discover(network, "192.0.2.1")
    assert (found.outcome, found.driver, found.credentials) == (Outcome.FOUND, "polycom-gs", "uc")
    assert [d for _, d, _, _ in network.probes] == ["poly-uc", "poly-videoos", "polycom-gs"]


async def test_a_device_refusing_every_profile_is_credentials_refused() -> None:
    network = FakeNetwork(
        devices={"192.0.2.1": {"poly-uc": answers("0004F2000001", "VVX 450", accepts="other")}}
    )
    [refused] = await discover(network, "192.0.2.1")
    assert (refused.outcome, refused.driver, refused.facts) == (
        Outcome.CREDENTIALS_REFUSED,
        "poly-uc",
        None,
    )
    assert refused.detail == "answers as poly-uc but refused the credentials (uc, admin)"


async def test_silent_and_not_poly_addresses_are_told_apart() -> None:
    network = FakeNetwork(
        snmp={"192.0.2.2": {SYS_DESCR: "Linux router 5.10", SYS_OBJECT_ID: "1.3.6.1.4.1.8072.3"}},
        devices={
            "192.0.2.3": {"poly-uc": refuses(NotSupported("HTTP 404", answered=True))},
            "192.0.2.4": {"poly-videoos": refuses(MalformedReply("not JSON"))},
        },
    )
    silent, snmp_only, web, garbled = await discover(
        network, "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"
    )
    assert silent.outcome is Outcome.SILENT
    assert silent.detail == "no answer on SNMP, HTTPS or SSH"
    # It answered SNMP, as something else: the detail says what it said.
    assert (snmp_only.outcome, snmp_only.detail) == (
        Outcome.NOT_RECOGNISED,
        "answered but not recognised: SNMP: sysDescr 'Linux router 5.10', sysObjectID"
        " '1.3.6.1.4.1.8072.3'",
    )
    assert (web.outcome, web.detail) == (
        Outcome.NOT_RECOGNISED,
        "answered but not recognised: poly-uc: HTTP 404",
    )
    assert (garbled.outcome, garbled.detail) == (
        Outcome.NOT_RECOGNISED,
        "answered but not recognised: poly-videoos: not JSON",
    )


async def test_an_address_is_silent_only_when_no_transport_said_anything() -> None:
    network = FakeNetwork(
        devices={
            # The driver refuses for want of credentials: the device was never asked.
            "192.0.2.1": {"polycom-gs": refuses(NotSupported("needs an SSH login"))},
            # SSH answered (a banner) but no prompt or complete reply came: not silent.
            "192.0.2.2": {
                "polycom-gs": refuses(
                    DeviceTimeout("no SSH prompt; it sent 'Welcome'", answered=True)
                )
            },
        },
    )
    never_asked, spoke = await discover(network, "192.0.2.1", "192.0.2.2")
    assert never_asked.outcome is Outcome.SILENT
    assert (spoke.outcome, spoke.detail) == (
        Outcome.NOT_RECOGNISED,
        "answered but not recognised: polycom-gs: no SSH prompt; it sent 'Welcome'",
    )


async def test_a_poly_device_that_does_not_tell_its_serial_is_not_added() -> None:
    # A Polycom agent without the endpoint MIB's serial: snmp-generic (and DMA/RPRM without REST
    # credentials) fall back to the record's serial, which discovery only made up.
    network = FakeNetwork(
        snmp={"192.0.2.1": {SYS_DESCR: "Polycom SoundStructure C16, software 1.9"}},
        devices={"192.0.2.1": {"snmp-generic": answers("ECHO", "SoundStructure C16")}},
    )
    [result] = await discover(network, "192.0.2.1")
    assert (result.outcome, result.driver, result.facts) == (
        Outcome.UNIDENTIFIED,
        "snmp-generic",
        None,
    )
    assert result.detail is not None
    assert "SoundStructure C16 but reports no serial number; not added" in result.detail


async def test_a_later_profile_that_reads_the_serial_wins() -> None:
    def serial_with_rest(profile: str | None) -> DeviceFacts:
        serial = "9D2201" if profile == "admin" else "ECHO"
        return DeviceFacts(serial=serial, model="RealPresence DMA 7000")

    network = FakeNetwork(
        snmp={"192.0.2.1": {SYS_OBJECT_ID: MODELED_SYS_OBJECT_IDS["dma"]}},
        devices={"192.0.2.1": {"poly-infra": serial_with_rest}},
    )
    [found] = await discover(network, "192.0.2.1")
    assert (found.outcome, found.credentials) == (Outcome.FOUND, "admin")
    assert found.facts is not None
    assert found.facts.serial == "9D2201"


async def test_dma_rest_is_probed_on_8443_and_the_device_keeps_that_port() -> None:
    network = FakeNetwork(
        snmp={"192.0.2.1": {SYS_OBJECT_ID: MODELED_SYS_OBJECT_IDS["dma"]}},
        devices={"192.0.2.1": {"poly-infra": answers("9D2201", "RealPresence DMA 7000")}},
    )
    [found] = await discover(network, "192.0.2.1")
    assert network.probes[0][3] == DevicePorts(https=8443)
    device = device_from_discovery(found, site="hq")
    assert (device.serial, device.host, device.site, device.credentials) == (
        "9D2201",
        "192.0.2.1",
        "hq",
        "uc",
    )
    assert device.ports == DevicePorts(https=8443)
    assert device.product_group is ProductGroup.NETWORK  # from the model


async def test_port_overrides_are_probed_and_kept_standard_ports_stay_blank() -> None:
    network = FakeNetwork(
        snmp={"192.0.2.1": {IDENTITY_DEVICE_MODEL: "VVX 450", IDENTITY_DEVICE_SERIAL_NUMBER: "X"}},
        devices={"192.0.2.1": {"poly-uc": answers("0004F2000001", "VVX 450")}},
    )
    ports = DevicePorts(snmp=1161, https=443, ssh=2222)
    [found] = await discover(network, "192.0.2.1", ports=ports)
    assert network.probes[0][3] == ports
    assert found.ports == DevicePorts(snmp=1161, ssh=2222)  # 443 is standard: not recorded
    assert device_from_discovery(found, site=None).ports == DevicePorts(snmp=1161, ssh=2222)


async def test_a_found_device_with_a_model_the_catalogue_lacks_carries_a_warning() -> None:
    network = FakeNetwork(
        devices={
            "192.0.2.1": {"poly-uc": answers("0004F2000001", "VVX 9999 Prototype")},
            "192.0.2.2": {"poly-uc": answers("0004F2000002", "VVX_411")},
        }
    )
    unknown, known = await discover(network, "192.0.2.1", "192.0.2.2")
    assert unknown.outcome is Outcome.FOUND
    assert unknown.warning is not None
    assert "'VVX 9999 Prototype' is not in polyfleet's catalogue" in unknown.warning
    assert "[[product_groups]]" in unknown.warning  # and how to map it
    assert known.warning is None
