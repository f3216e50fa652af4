"""Discovery: find Poly devices in address ranges and recognise family, model, serial and MAC.

Per address, SNMP identity comes first (cheap, one UDP round trip); a confident answer picks the
driver serving its family at once. Otherwise the drivers that declare a `probe_order` are tried
in that order (UC REST, VideoOS, Group Series SSH, then any plugin's), as the registry lists
them. The chosen driver's `identify()` then gives the facts that go into the inventory, so
discovery reads devices exactly the way scans will. Addresses that answer
as something else, or not at all, are listed and never added; so is a device that answers as
Poly but does not tell its serial (the inventory's key must never be made up).

Probes use the standard ports (SNMP 161, HTTPS 443, SSH 22), or the driver's declared
`default_ports` (DMA/RPRM REST on 8443), unless the caller overrides them per protocol; a device
found on a non-standard port keeps it in inventory.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from controller.device_session import SessionFactory, Transports
from controller.errors import ControllerError
from controller.fanout import fan_out
from device_drivers.context import DriverContext, Timeouts
from device_drivers.detect import Confidence, Detection, driver_for_facts
from device_drivers.errors import AuthenticationFailed, DeviceError
from device_drivers.identity_oids import (
    ENDPOINT_IDENTITY,
    IDENTITY_DEVICE_MODEL,
    IDENTITY_DEVICE_SERIAL_NUMBER,
    SYS_DESCR,
    SYS_OBJECT_ID,
    SYSTEM_GROUP,
)
from device_drivers.models import DeviceFacts
from device_drivers.registry import DriverRegistry
from device_drivers.transports import SnmpScalar
from inventory.catalog import (
    family_for_model,
    product_group_for_model,
    unknown_model_warning,
)
from inventory.models import CredentialProfile, Device, DevicePorts

MAX_ADDRESSES = 65_536
"""A /16 at most per run: a typo such as /8 must not start a 16-million-address sweep."""


class DiscoveryError(ControllerError, ValueError):
    """The address list cannot be used (bad CIDR, too many addresses)."""


class Outcome(StrEnum):
    """What discovery concluded about one address."""

    FOUND = "found"
    CREDENTIALS_REFUSED = "credentials_refused"
    UNIDENTIFIED = "unidentified"
    """It answers as a Poly device but did not report its serial number (not added)."""
    NOT_RECOGNISED = "not_recognised"
    """A transport answered, but not as any device we know; `detail` says what was seen."""
    NOT_POLY = "not_recognised"  # the earlier name of NOT_RECOGNISED
    SILENT = "silent"
    """No transport answered at all."""


class Discovered(BaseModel):
    """One probed address (the discovery use case turns it into a `DiscoveredAddress`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str
    outcome: Outcome
    driver: str | None = None
    facts: DeviceFacts | None = None
    detail: str | None = None
    credentials: str | None = None
    ports: DevicePorts = Field(default_factory=DevicePorts)
    """The non-standard ports it was found on (recorded in inventory, used by scans)."""
    warning: str | None = None
    """Something the user should act on, e.g. a model the catalogue does not know."""


def expand_targets(specs: Sequence[str]) -> list[str]:
    """Addresses of CIDRs or single addresses, without network/broadcast, deduplicated."""
    seen: dict[str, None] = {}
    for spec in specs:
        try:
            network = ipaddress.ip_network(spec.strip(), strict=False)
        except ValueError as exc:
            raise DiscoveryError(f"{spec!r} is not an address or CIDR: {exc}") from None
        if len(seen) + network.num_addresses > MAX_ADDRESSES + 2:
            raise DiscoveryError(
                f"{spec} has {network.num_addresses:,} addresses; at most {MAX_ADDRESSES:,} "
                "per run (split the range)"
            )
        hosts: Iterable[ipaddress.IPv4Address | ipaddress.IPv6Address]
        hosts = [network.network_address] if network.num_addresses == 1 else network.hosts()
        for host in hosts:
            seen[str(host)] = None
    return list(seen)


def device_from_discovery(found: Discovered, *, site: str | None) -> Device:
    """The inventory record for a found device, with the ports it answered on."""
    assert found.facts is not None
    facts = found.facts
    return Device(
        serial=facts.serial,
        mac=facts.mac,
        model=facts.model,
        product_group=facts.product_group
        or (product_group_for_model(facts.model) if facts.model else None),
        driver=found.driver,
        host=found.address,
        ports=found.ports,
        site=site,
        firmware=facts.firmware,
        credentials=found.credentials,
    )


def _text(values: Mapping[str, SnmpScalar], oid: str) -> str | None:
    value = values.get(oid)
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class SnmpAccess:
    """The SNMP access that got an answer from an address, and what the answer said."""

    profile: CredentialProfile | None
    seen: str


def _probe_failed(address: str, exc: Exception) -> Discovered:
    detail = f"probe failed unexpectedly: {type(exc).__name__}: {exc}".splitlines()[0]
    return Discovered(address=address, outcome=Outcome.NOT_RECOGNISED, detail=detail)


class Discoverer:
    """Probes addresses with the shared transports and the registered drivers."""

    def __init__(
        self,
        registry: DriverRegistry,
        transports: Transports,
        profiles: Sequence[CredentialProfile],
        *,
        timeouts: Timeouts | None = None,
        concurrency: int = 256,
        ports: DevicePorts | None = None,
    ) -> None:
        self.registry = registry
        self.transports = transports
        self.profiles: Sequence[CredentialProfile | None] = list(profiles) or [None]
        self.timeouts = timeouts or Timeouts(snmp=1.0, snmp_retries=0, http=3.0, ssh=5.0)
        self.concurrency = concurrency
        # No pin store: a probe record is a placeholder, so nothing a probe sees is pinned.
        self.sessions = SessionFactory(registry, transports, timeouts=self.timeouts)
        self.ports = ports or DevicePorts()
        """Per-protocol overrides of the standard ports, for every address and driver."""

    def ports_for(self, driver: str | None) -> DevicePorts:
        """The ports to probe `driver` on: the overrides, else the driver's own, else standard."""
        own = self.registry.get(driver).default_ports if driver else DevicePorts()
        ports = own.model_dump()
        ports.update({k: v for k, v in self.ports.model_dump().items() if v is not None})
        return DevicePorts(**ports)

    @staticmethod
    def placeholder_serial(address: str) -> str:
        """The probe record's serial, as stored (upper case): never one a device reports."""
        return f"DISCOVER-{address}".upper()

    def _context(
        self,
        address: str,
        profile: CredentialProfile | None,
        driver: str | None = None,
        snmp: SnmpAccess | None = None,
    ) -> DriverContext:
        # A placeholder record: the serial is unknown until the device says it.
        probe = Device(
            serial=self.placeholder_serial(address), host=address, ports=self.ports_for(driver)
        )
        return self.sessions.context(
            probe,
            credentials=profile,
            snmp_answers=snmp is not None,
            snmp_credentials=snmp.profile if snmp is not None else None,
        )

    async def discover(self, addresses: Sequence[str]) -> list[Discovered]:
        """Probe every address, `concurrency` at once; an address whose probe fails in an
        unexpected way is listed as such, the others are still probed."""
        return await fan_out(
            addresses, self.probe, on_error=_probe_failed, concurrency=self.concurrency
        )

    async def _snmp_detection(self, address: str) -> tuple[Detection | None, SnmpAccess | None]:
        """(detection, the SNMP access that answered) from MIB-II + POLYCOM-ENDPOINT-MIB
        identity, per profile (a profile without SNMP settings asks with the default
        community); that access is then used for SNMP look-ups such as the MAC."""
        snmp = self.transports.snmp
        if snmp is None:
            return None, None
        for profile in self.profiles:
            target = self._context(address, profile).snmp_target()
            try:
                values = await snmp.get(target, [*SYSTEM_GROUP, *ENDPOINT_IDENTITY])
            except DeviceError:
                continue
            detection = driver_for_facts(
                _text(values, SYS_OBJECT_ID),
                _text(values, SYS_DESCR),
                endpoint_serial=_text(values, IDENTITY_DEVICE_SERIAL_NUMBER),
                endpoint_model=_text(values, IDENTITY_DEVICE_MODEL),
            )
            seen = ", ".join(
                f"{name} {value!r}"
                for name, value in (
                    ("sysDescr", _text(values, SYS_DESCR)),
                    ("sysObjectID", _text(values, SYS_OBJECT_ID)),
                    ("identityDeviceModel", _text(values, IDENTITY_DEVICE_MODEL)),
                )
                if value
            )
            return detection, SnmpAccess(profile, f"SNMP: {seen or 'an empty system group'}")
        return None, None

    async def _identify(
        self,
        name: str,
        address: str,
        profile: CredentialProfile | None,
        snmp: SnmpAccess | None = None,
    ) -> DeviceFacts:
        async with self.registry.get(name)(self._context(address, profile, name, snmp)) as driver:
            return await driver.identify()

    async def probe(self, address: str) -> Discovered:
        """SNMP identity, then the fallback drivers; the first driver that identifies wins.

        Each driver is tried with every given credential profile; the one that worked is
        remembered on the device. A device that refuses all of them is reported as such.
        """
        detection, snmp = await self._snmp_detection(address)
        answered = snmp is not None
        seen: list[str] = [snmp.seen] if snmp is not None else []
        guessed = self._driver_for(detection)
        if guessed is not None and detection and detection.confidence is Confidence.CONFIDENT:
            candidates = [guessed]
        else:  # a weak SNMP guess (e.g. snmp-generic) only after the drivers' probe order
            candidates = [d.name for d in self.registry.probe_order() if d.name != guessed]
            candidates += [guessed] if guessed else []
        errors: list[str] = []
        refused_by: list[str] = []
        no_serial: tuple[str, DeviceFacts] | None = None
        for name in candidates:
            for profile in self.profiles:
                try:
                    facts = await self._identify(name, address, profile, snmp)
                except AuthenticationFailed:
                    if name not in refused_by:
                        refused_by.append(name)
                    answered = True
                    continue
                except DeviceError as exc:
                    errors.append(f"{name}: {exc.kind}")
                    # Refusing for want of access (not_supported) is no answer from the device.
                    if exc.answered or exc.kind.reached:
                        answered = True
                        seen.append(f"{name}: {exc.message}")
                    break  # another profile will not make it answer
                if facts.serial == self.placeholder_serial(address):
                    # The driver fell back to the record's serial: the device did not say it.
                    # Another profile (e.g. one with REST credentials) may still get it.
                    no_serial = no_serial or (name, facts)
                    continue
                warning = None
                if facts.model and family_for_model(facts.model) is None:
                    warning = unknown_model_warning(facts.model)
                return Discovered(
                    address=address, outcome=Outcome.FOUND, driver=name, facts=facts,
                    credentials=profile.name if profile else None,
                    ports=self._recorded_ports(name), warning=warning,
                )  # fmt: skip
        if no_serial is not None:
            name, facts = no_serial
            what = f"{name}, {facts.model}" if facts.model else name
            return Discovered(
                address=address, outcome=Outcome.UNIDENTIFIED, driver=name,
                detail=f"answers as {what} but reports no serial number; not added "
                "(add it with `polyfleet inventory add`, or give credentials that read it)",
            )  # fmt: skip
        if refused_by:
            # Every driver whose probe was refused is named: a device that asks for a login
            # before routing refuses the other families' probes too.
            tried = ", ".join(p.name for p in self.profiles if p) or "no credentials"
            return Discovered(
                address=address, outcome=Outcome.CREDENTIALS_REFUSED, driver=refused_by[0],
                detail=f"answers as {' or '.join(refused_by)} but refused the credentials "
                f"({tried})",
            )  # fmt: skip
        if answered:
            what = "; ".join(seen) or "; ".join(errors) or "nothing usable"
            return Discovered(
                address=address,
                outcome=Outcome.NOT_RECOGNISED,
                detail=f"answered but not recognised: {what}",
            )
        return Discovered(
            address=address, outcome=Outcome.SILENT, detail="no answer on SNMP, HTTPS or SSH"
        )

    def _driver_for(self, detection: Detection | None) -> str | None:
        """The registry's driver for what SNMP identity said: its family's, else the fallback
        for a Poly agent no installed driver claims."""
        if detection is None or not detection.polycom:
            return None
        family = self.registry.for_family(detection.family) if detection.family else None
        driver = family or self.registry.fallback()
        return driver.name if driver is not None else None

    def _recorded_ports(self, driver: str) -> DevicePorts:
        """The probe ports worth recording: the standard ones stay blank in the inventory."""
        standard = {"snmp": 161, "https": 443, "ssh": 22}
        ports = self.ports_for(driver).model_dump()
        return DevicePorts(**{k: v for k, v in ports.items() if v != standard[k]})
