"""Auto-detection from SNMP identity, as a pure decision: which family an answer names.

Discovery (controller/discovery.py) asks SNMP first (ARCHITECTURE.md's probe order); a confident
answer here picks the family, and the driver registry the driver serving it, at once. Otherwise
discovery tries the drivers' own `identify()` in the drivers' declared `probe_order` (UC REST
`device/info`, VideoOS `/rest/system`, SSH `whoami`), so those probes read a device exactly the
way scans will.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from device_drivers.poly.parsing import (
    parse_sys_descr,
)
from inventory.catalog import (
    POLYCOM_ENTERPRISE_OID,
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


class Confidence(IntEnum):
    """How sure a detection is; only CONFIDENT stops the probing."""

    NONE = 0
    WEAK = 1
    CONFIDENT = 2


@dataclass(frozen=True, slots=True)
class Detection:
    """A family with what the probe revealed (serial/model where the answer had them)."""

    confidence: Confidence
    family: str | None = None
    """The catalogue family; None with `polycom` set: a Poly agent no family matches."""
    polycom: bool = False
    model: str | None = None
    serial: str | None = None
    mac: str | None = None
    firmware: str | None = None
    source: Probe | None = None

    @property
    def is_poly(self) -> bool:
        """Placed in a family of the catalogue (not merely "some Polycom agent")."""
        return self.family is not None


NOTHING = Detection(confidence=Confidence.NONE)


def _from_family(
    family: ModelFamily | None, source: Probe, confidence: Confidence, **found: str | None
) -> Detection:
    if family is None:
        return NOTHING
    return Detection(confidence=confidence, family=family.key, polycom=True, source=source, **found)


def driver_for_facts(
    sys_object_id: str | None = None,
    sys_descr: str | None = None,
    *,
    endpoint_serial: str | None = None,
    endpoint_model: str | None = None,
) -> Detection:
    """Decide from SNMP identity: the (modeled) sysObjectID table first, then the endpoint MIB
    model, then the model in sysDescr; a Polycom agent we cannot place is `polycom` only (the
    registry's fallback driver, `snmp-generic`, serves it)."""
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
            confidence=Confidence.WEAK,
            polycom=True,
            model=model,
            serial=endpoint_serial,
            firmware=firmware,
            source=source,
        )
    return NOTHING
