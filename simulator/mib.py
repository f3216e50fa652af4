"""OID tables of the simulated devices: which objects each family exposes and their live values.

Pure data and pure functions (no sockets, no pysnmp): the SNMP agent asks `device_mib()` for the
sorted object list of one device at the moment of a request, so license and call state changes
show up on the next GET. Every object not documented in a public Poly MIB is marked MODELED here;
this module is the one place a site with real hardware has to check.
"""

from __future__ import annotations

import hashlib
import time
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from inventory.catalog import (
    MODELED_SYS_OBJECT_ID_BRANCH,
    MODELED_SYS_OBJECT_IDS,
    POLYCOM_ENTERPRISE_OID,
)
from simulator.licensing import effective_state
from simulator.state import LicenseState, SimDevice

Oid = tuple[int, ...]


def oid(text: str) -> Oid:
    """Parse a dotted OID; the tables below are written as text so they can be grepped."""
    return tuple(int(part) for part in text.strip(".").split("."))


POLYCOM: Oid = oid(POLYCOM_ENTERPRISE_OID)

# --- MIB-II system group (RFC 1213 / SNMPv2-MIB) ---------------------------------------------
SYS_DESCR = oid("1.3.6.1.2.1.1.1.0")
SYS_OBJECT_ID = oid("1.3.6.1.2.1.1.2.0")
SYS_UPTIME = oid("1.3.6.1.2.1.1.3.0")
SYS_CONTACT = oid("1.3.6.1.2.1.1.4.0")
SYS_NAME = oid("1.3.6.1.2.1.1.5.0")
SYS_LOCATION = oid("1.3.6.1.2.1.1.6.0")
SYS_SERVICES = oid("1.3.6.1.2.1.1.7.0")

# --- POLYCOM-ENDPOINT-MIB (polycom 101), librenms mibs/polycom/POLYCOM-ENDPOINT-MIB [R] ----------
_EP = (*POLYCOM, 101, 1)
IDENTITY_SOFTWARE_INFO = (*_EP, 1, 1, 0)
IDENTITY_BUILD_DATE = (*_EP, 1, 2, 0)
IDENTITY_DEVICE_TYPE = (*_EP, 1, 3, 0)
IDENTITY_DEVICE_MODEL = (*_EP, 1, 4, 0)
IDENTITY_DEVICE_SERIAL_NUMBER = (*_EP, 1, 5, 0)
IDENTITY_STATUS = (*_EP, 1, 6, 0)
SERVICE_H323_STATUS = (*_EP, 2, 7, 1, 0)
SERVICE_H323_REGISTRATION_STATUS = (*_EP, 2, 7, 2, 0)
SERVICE_SIP_STATUS = (*_EP, 2, 8, 1, 0)
SERVICE_SIP_REGISTRATION_STATUS = (*_EP, 2, 8, 3, 1, 2)  # table column, + .<i>
HARDWARE_OVERALL_STATUS = (*_EP, 3, 1, 0)
HARDWARE_NIC_ENTRY = (*_EP, 3, 10, 2, 1)  # columns 2 name, 3 MAC, 4 speed, 5 duplex, 6 status
HARDWARE_NIC_MAC = (*HARDWARE_NIC_ENTRY, 3)
CONFERENCE_NUMBER_ACTIVE_CONFERENCES = (*_EP, 5, 1, 0)

# --- DMA cluster license table (centreon dma/snmp/mode/clusters.pm) [R] -----------------------
DMA_LICENSE_ENTRY = (*POLYCOM, 13, 2, 2, 3, 3, 1)  # columns 2 name, 3 status, 4 calls, 5 active
ST_LIC_CLUSTER_NAME = (*DMA_LICENSE_ENTRY, 2)
ST_LIC_LICENSE_STATUS = (*DMA_LICENSE_ENTRY, 3)
ST_LIC_LICENSED_CALLS = (*DMA_LICENSE_ENTRY, 4)
ST_LIC_CALLSERVER_ACTIVE_CALLS = (*DMA_LICENSE_ENTRY, 5)
DMA_LICENSE_VALID, DMA_LICENSE_INVALID, DMA_LICENSE_NOT_INSTALLED = 1, 2, 3

# --- RPRM license scalars (centreon rprm/snmp/mode/license.pm) [R] ----------------------------
_RPRM = (*POLYCOM, 102, 1, 2)
SERVICE_LICENSE_CAPABILITY = (*_RPRM, 20, 1, 0)
SERVICE_LICENSE_USAGE = (*_RPRM, 20, 2, 0)
SERVICE_LICENSE_MODE = (*_RPRM, 20, 3, 0)  # 0 user, 1 device
SERVICE_AUDIO_EP_LICENSE_CAPABILITY = (*_RPRM, 23, 1, 0)
SERVICE_AUDIO_EP_LICENSE_USAGE = (*_RPRM, 23, 2, 0)
SERVICE_VIDEO_EP_LICENSE_CAPABILITY = (*_RPRM, 24, 1, 0)
SERVICE_VIDEO_EP_LICENSE_USAGE = (*_RPRM, 24, 2, 0)

# --- MODELED -----------------------------------------------------------------------------------
MODELED_BRANCH: Oid = oid(MODELED_SYS_OBJECT_ID_BRANCH)
"""MODELED: no public source gives Poly's sysObjectID values, so the simulator answers with a
branch of its own under enterprise 13885 (`.9999.<class>.<family>`), shared with the drivers
through `inventory.catalog.MODELED_SYS_OBJECT_IDS`; verify on real hardware."""

SYS_OBJECT_IDS: dict[str, Oid] = {key: oid(text) for key, text in MODELED_SYS_OBJECT_IDS.items()}
"""MODELED sysObjectID per family key (the shared table in `inventory.catalog`)."""

ENDPOINT_MIB_FAMILIES = frozenset({"gs", "studiox"})
"""Families answering POLYCOM-ENDPOINT-MIB: Group Series/HDX [R]; Studio X/G7500 [I, MODELED]."""

SYS_CONTACT_VALUE = "IT Service Desk"
"""MODELED: sysContact as an administrator would set it."""

BUILD_DATE = datetime(2021, 3, 15, 12, 0, tzinfo=UTC)
"""MODELED: identityBuildDate of every simulated software build."""

DMA_LICENSED_CALLS = 200
"""MODELED: licensed calls per DMA cluster row whose license is valid."""

RPRM_LICENSE_CAPABILITY = 500
"""MODELED: device licenses an RPRM holds while any of its features is active."""


class SnmpType(StrEnum):
    """SMI base types the simulated MIB uses; the agent maps them to ASN.1 values."""

    INTEGER = "INTEGER"
    OCTET_STRING = "OCTET STRING"
    OBJECT_IDENTIFIER = "OBJECT IDENTIFIER"
    TIMETICKS = "TimeTicks"
    GAUGE32 = "Gauge32"


@dataclass(frozen=True, slots=True)
class MibValue:
    """A typed value; `value` is int, bytes or an OID tuple according to `kind`."""

    kind: SnmpType
    value: int | bytes | Oid


MibTable = list[tuple[Oid, MibValue]]
"""Objects of one device sorted by OID (lexicographic on the integer tuples)."""


def _s(text: str) -> MibValue:
    return MibValue(SnmpType.OCTET_STRING, text.encode())


def _i(number: int) -> MibValue:
    return MibValue(SnmpType.INTEGER, number)


def _g(number: int) -> MibValue:
    return MibValue(SnmpType.GAUGE32, number)


def date_and_time(moment: datetime) -> bytes:
    """SNMPv2-TC DateAndTime, 8-octet form (UTC)."""
    m = moment.astimezone(UTC)
    return bytes([m.year >> 8, m.year & 0xFF, m.month, m.day, m.hour, m.minute, m.second, 0])


def sys_descr(device: SimDevice) -> str:
    """MODELED sysDescr: vendor, model and software, parseable by `family_for_model`."""
    return f"Polycom {device.model}, software {device.firmware}"


def uptime_ticks(device: SimDevice, now: float, started_at: float) -> int:
    """sysUpTime in hundredths of a second since the device (or, unset, the agent) booted."""
    boot = device.boot_time or started_at
    return int(max(0.0, now - boot) * 100) & 0xFFFFFFFF


def _device_type(model: str) -> str:
    for needle in ("HDX", "Group Series", "Studio X", "G7500"):
        if needle.lower() in model.lower():
            return needle
    return model


def _stable_share(serial: str, salt: str, limit: int) -> int:
    digest = hashlib.sha256(f"{salt}|{serial}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (limit + 1)


def _system_group(device: SimDevice, now: float, started_at: float) -> MibTable:
    object_id = SYS_OBJECT_IDS.get(device.family, MODELED_BRANCH)
    return [
        (SYS_DESCR, _s(sys_descr(device))),
        (SYS_OBJECT_ID, MibValue(SnmpType.OBJECT_IDENTIFIER, object_id)),
        (SYS_UPTIME, MibValue(SnmpType.TIMETICKS, uptime_ticks(device, now, started_at))),
        (SYS_CONTACT, _s(SYS_CONTACT_VALUE)),
        (SYS_NAME, _s(device.system_name)),
        (SYS_LOCATION, _s(device.site)),
        (SYS_SERVICES, _i(72)),
    ]


def _endpoint_mib(device: SimDevice) -> MibTable:
    """Identity, service and NIC objects; the NIC name, speed/duplex values and the MAC's text
    form (`00:04:f2:aa:bb:cc`, the MIB only says DisplayString) are MODELED."""
    ok = 2
    mac = (device.mac or "").lower()
    mac_text = ":".join(mac[i : i + 2] for i in range(0, len(mac), 2)) if len(mac) == 12 else mac
    return [
        (IDENTITY_SOFTWARE_INFO, _s(device.firmware)),
        (IDENTITY_BUILD_DATE, MibValue(SnmpType.OCTET_STRING, date_and_time(BUILD_DATE))),
        (IDENTITY_DEVICE_TYPE, _s(_device_type(device.model))),
        (IDENTITY_DEVICE_MODEL, _s(device.model)),
        (IDENTITY_DEVICE_SERIAL_NUMBER, _s(device.serial)),
        (IDENTITY_STATUS, _i(ok)),
        (SERVICE_H323_STATUS, _i(ok)),
        (SERVICE_H323_REGISTRATION_STATUS, _i(ok)),
        (SERVICE_SIP_STATUS, _i(ok)),
        ((*SERVICE_SIP_REGISTRATION_STATUS, 1), _i(ok)),
        (HARDWARE_OVERALL_STATUS, _i(ok)),
        ((*HARDWARE_NIC_ENTRY, 2, 1), _s("LAN")),
        ((*HARDWARE_NIC_ENTRY, 3, 1), _s(mac_text)),
        ((*HARDWARE_NIC_ENTRY, 4, 1), _g(1000)),
        ((*HARDWARE_NIC_ENTRY, 5, 1), _s("full")),
        ((*HARDWARE_NIC_ENTRY, 6, 1), _i(ok)),
        (CONFERENCE_NUMBER_ACTIVE_CONFERENCES, _g(1 if device.in_call else 0)),
    ]


def dma_rows(device: SimDevice) -> list[str]:
    """MODELED: one stLic row per license feature, in sorted feature order, named after it."""
    return sorted(device.licenses)


def _dma_status(state: LicenseState) -> int:
    if state is LicenseState.ACTIVE:
        return DMA_LICENSE_VALID
    if state is LicenseState.MISSING:
        return DMA_LICENSE_NOT_INSTALLED
    return DMA_LICENSE_INVALID


def _dma_mib(device: SimDevice, now_dt: datetime) -> MibTable:
    table: MibTable = []
    for index, feature in enumerate(dma_rows(device), start=1):
        status = _dma_status(effective_state(device.licenses[feature], now_dt))
        calls = DMA_LICENSED_CALLS if status == DMA_LICENSE_VALID else 0
        table += [
            ((*ST_LIC_CLUSTER_NAME, index), _s(feature)),
            ((*ST_LIC_LICENSE_STATUS, index), _i(status)),
            ((*ST_LIC_LICENSED_CALLS, index), _i(calls)),
            ((*ST_LIC_CALLSERVER_ACTIVE_CALLS, index), _i(1 if device.in_call else 0)),
        ]
    return table


def _rprm_mib(device: SimDevice, now_dt: datetime) -> MibTable:
    active = any(
        effective_state(lic, now_dt) is LicenseState.ACTIVE for lic in device.licenses.values()
    )
    capability = RPRM_LICENSE_CAPABILITY if active else 0
    usage = _stable_share(device.serial, "rprm-usage", capability)
    audio = capability // 5
    return [
        (SERVICE_LICENSE_CAPABILITY, _i(capability)),
        (SERVICE_LICENSE_USAGE, _i(usage)),
        (SERVICE_LICENSE_MODE, _i(1)),
        (SERVICE_AUDIO_EP_LICENSE_CAPABILITY, _i(audio)),
        (SERVICE_AUDIO_EP_LICENSE_USAGE, _i(min(audio, usage))),
        (SERVICE_VIDEO_EP_LICENSE_CAPABILITY, _i(capability - audio)),
        (SERVICE_VIDEO_EP_LICENSE_USAGE, _i(max(0, usage - audio))),
    ]


def device_mib(device: SimDevice, *, now: float | None = None, started_at: float = 0.0) -> MibTable:
    """All objects `device` answers at `now` (epoch seconds), sorted by OID."""
    wall = time.time() if now is None else now
    now_dt = datetime.fromtimestamp(wall, UTC)
    table = _system_group(device, wall, started_at)
    if device.family in ENDPOINT_MIB_FAMILIES:
        table += _endpoint_mib(device)
    if device.family == "dma":
        table += _dma_mib(device, now_dt)
    if device.family == "rprm":
        table += _rprm_mib(device, now_dt)
    table.sort(key=lambda item: item[0])
    return table


def lookup(table: MibTable, name: Oid) -> MibValue | None:
    """Exact match (GET)."""
    oids = [entry[0] for entry in table]
    pos = bisect_left(oids, name)
    if pos < len(table) and table[pos][0] == name:
        return table[pos][1]
    return None


def next_after(table: Sequence[tuple[Oid, MibValue]], name: Oid) -> tuple[Oid, MibValue] | None:
    """The first object strictly after `name` (GETNEXT); None at the end of the MIB view."""
    oids = [entry[0] for entry in table]
    pos = bisect_right(oids, name)
    return table[pos] if pos < len(table) else None
