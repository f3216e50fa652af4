"""Auto-detection as pure decisions: which probe to try next, and which driver an answer picks.

The discovery engine does the I/O; it feeds each probe's decoded answer to these functions and
stops at the first confident match (ARCHITECTURE.md: SNMP identity, then UC REST `device/info`,
then VideoOS `/rest/system`, then SSH `whoami`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from device_drivers.errors import DeviceError
from device_drivers.poly.parsing import (
    facts_from_whoami,
    parse_sys_descr,
    parse_uc_device_info,
    parse_videoos_system,
    uc_data,
)
from inventory.catalog import (
    POLYCOM_ENTERPRISE_OID,
    DriverName,
    ModelFamily,
    family_for_model,
    family_for_sys_object_id,
)


class Probe(StrEnum):
    """The probes, in the order they are tried."""

    SNMP_IDENTITY = "snmp_identity"
    UC_DEVICE_INFO = "uc_device_info"
    VIDEOOS_SYSTEM = "videoos_system"
    SSH_WHOAMI = "ssh_whoami"


PROBE_ORDER: tuple[Probe, ...] = tuple(Probe)


class Confidence(IntEnum):
    """How sure a detection is; only CONFIDENT stops the probing."""

    NONE = 0
    WEAK = 1
    CONFIDENT = 2


@dataclass(frozen=True, slots=True)
class Detection:
    """A driver choice with what the probe revealed (serial/model where the answer had them)."""

    driver: DriverName | None
    confidence: Confidence
    family: str | None = None
    model: str | None = None
    serial: str | None = None
    mac: str | None = None
    firmware: str | None = None
    source: Probe | None = None

    @property
    def is_poly(self) -> bool:
        return self.driver is not None and self.driver is not DriverName.SNMP_GENERIC


NOTHING = Detection(driver=None, confidence=Confidence.NONE)


def _from_family(
    family: ModelFamily | None, source: Probe, confidence: Confidence, **found: str | None
) -> Detection:
    if family is None:
        return NOTHING
    return Detection(
        driver=family.driver, confidence=confidence, family=family.key, source=source, **found
    )


def driver_for_facts(
    sys_object_id: str | None = None,
    sys_descr: str | None = None,
    *,
    endpoint_serial: str | None = None,
    endpoint_model: str | None = None,
) -> Detection:
    """Decide from SNMP identity: the (modeled) sysObjectID table first, then the endpoint MIB
    model, then the model in sysDescr; a Polycom agent we cannot place gets `snmp-generic`."""
    source = Probe.SNMP_IDENTITY
    family = family_for_sys_object_id(sys_object_id) if sys_object_id else None
    descr_model, firmware = parse_sys_descr(sys_descr)
    model = endpoint_model or descr_model
    if family is not None:
        return _from_family(
            family,
            source,
            Confidence.CONFIDENT,
            model=model,
            serial=endpoint_serial,
            firmware=firmware,
        )
    for candidate in (endpoint_model, descr_model):
        found = family_for_model(candidate) if candidate else None
        if found is not None:
            confidence = Confidence.CONFIDENT if endpoint_serial else Confidence.WEAK
            return _from_family(
                found,
                source,
                confidence,
                model=candidate,
                serial=endpoint_serial,
                firmware=firmware,
            )
    polycom_oid = (sys_object_id or "").lstrip(".").startswith(POLYCOM_ENTERPRISE_OID + ".")
    polycom_text = "polycom" in (sys_descr or "").lower() or " poly " in f" {sys_descr or ''} "
    if polycom_oid or polycom_text or endpoint_serial:
        return Detection(
            driver=DriverName.SNMP_GENERIC,
            confidence=Confidence.WEAK,
            model=model,
            serial=endpoint_serial,
            firmware=firmware,
            source=source,
        )
    return NOTHING


def detect_uc_device_info(http_status: int, payload: Any) -> Detection:
    """UC REST `device/info`: a `{"data", "Status"}` envelope with a MAC means a UC phone."""
    if http_status != 200:
        return NOTHING
    try:
        found = parse_uc_device_info(uc_data(payload, "device/info"))
    except DeviceError:
        return NOTHING
    family = family_for_model(found.model) if found.model else None
    # A UC envelope from a model we do not list is still a UC phone.
    return Detection(
        driver=DriverName.POLY_UC,
        confidence=Confidence.CONFIDENT,
        family=family.key if family is not None and family.driver is DriverName.POLY_UC else None,
        model=found.model,
        serial=found.serial,
        mac=found.mac,
        firmware=found.firmware,
        source=Probe.UC_DEVICE_INFO,
    )


def detect_videoos_system(http_status: int, payload: Any) -> Detection:
    """VideoOS `/rest/system` with a serialNumber means a VideoOS system."""
    if http_status != 200 or not isinstance(payload, Mapping):
        return NOTHING
    try:
        found = parse_videoos_system(payload)
    except DeviceError:
        return NOTHING
    family = family_for_model(found.model) if found.model else None
    return Detection(
        driver=DriverName.POLY_VIDEOOS,
        confidence=Confidence.CONFIDENT,
        family=family.key if family is not None else None,
        model=found.model,
        serial=found.serial,
        firmware=found.firmware,
        source=Probe.VIDEOOS_SYSTEM,
    )


def detect_whoami(text: str) -> Detection:
    """A `whoami` block (banner or reply) with a serial means the Group Series / HDX API."""
    try:
        found = facts_from_whoami(text)
    except DeviceError:
        return NOTHING
    family = family_for_model(found.model) if found.model else None
    return Detection(
        driver=DriverName.POLYCOM_GS,
        confidence=Confidence.CONFIDENT,
        family=family.key if family is not None else None,
        model=found.model,
        serial=found.serial,
        firmware=found.firmware,
        source=Probe.SSH_WHOAMI,
    )


def next_probe(done: Collection[Probe], best: Detection = NOTHING) -> Probe | None:
    """The next probe to run, or None: stop at a confident match or when all were tried."""
    if best.confidence is Confidence.CONFIDENT:
        return None
    for probe in PROBE_ORDER:
        if probe not in done:
            return probe
    return None


def better(current: Detection, candidate: Detection) -> Detection:
    """Keep the more confident detection (the earlier one on a tie)."""
    return candidate if candidate.confidence > current.confidence else current
