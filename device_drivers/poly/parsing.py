"""Pure parsers of what Poly devices answer over their documented interfaces (no I/O).

Each function takes a decoded payload (dict, text, SNMP values) and returns driver models or
raises a `device_drivers.errors` class, so captured payloads test them without a device.
Field names follow poly-device-apis.md ([R] facts); modeled formats are parsed in the drivers'
`*_modeled` modules instead, so that everything modeled sits in one place per driver.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from device_drivers.errors import (
    ApiStatusError,
    AuthenticationFailed,
    CommandErrorLine,
    DeviceBusy,
    MalformedReply,
    NotSupported,
)
from device_drivers.models import DeviceFacts
from inventory.catalog import product_group_for_model
from inventory.errors import InvalidIdentifier
from inventory.identifiers import normalize_mac
from inventory.models import LicenseState

# --- shared -----------------------------------------------------------------------------------


def get_ci(data: Mapping[str, Any], name: str) -> Any:
    """`data[name]` matched case-insensitively (AVI-SPL reads `MacAddress`, captures say
    `MACAddress`); None when absent."""
    if name in data:
        return data[name]
    wanted = name.lower()
    for key, value in data.items():
        if isinstance(key, str) and key.lower() == wanted:
            return value
    return None


def text_field(data: Mapping[str, Any], name: str) -> str | None:
    """A string field, stripped; None when absent, empty or not a string/number."""
    value = get_ci(data, name)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip()
    return text or None


def mac_or_none(text: str | None) -> str | None:
    """A MAC in any spelling normalised, or None when missing or not a unicast MAC."""
    if not text:
        return None
    try:
        return normalize_mac(text)
    except InvalidIdentifier:
        return None


def require_mapping(payload: Any, what: str) -> Mapping[str, Any]:
    """The payload as a JSON object, or MalformedReply naming what was expected."""
    if not isinstance(payload, Mapping):
        raise MalformedReply(f"{what}: expected a JSON object, got {type(payload).__name__}")
    return payload


def license_state(text: Any) -> LicenseState:
    """A device's state word as our LicenseState (`active`, `EXPIRED`, ...); else unknown."""
    if not isinstance(text, str):
        return LicenseState.UNKNOWN
    try:
        return LicenseState(text.strip().lower())
    except ValueError:
        return LicenseState.UNKNOWN


def parse_timestamp(text: Any) -> datetime | None:
    """ISO 8601 date or date-time (naive taken as UTC); None for empty, `none` or garbage."""
    if not isinstance(text, str) or text.strip().lower() in ("", "none", "null", "never"):
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def facts(
    *,
    serial: str | None,
    mac: str | None,
    model: str | None,
    firmware: str | None,
    system_name: str | None = None,
    what: str,
) -> DeviceFacts:
    """DeviceFacts with the product group looked up from the model; no serial is malformed."""
    if not serial:
        raise MalformedReply(f"{what}: no serial number in the reply")
    try:
        return DeviceFacts(
            serial=serial,
            mac=mac,
            model=model,
            firmware=firmware,
            product_group=product_group_for_model(model) if model else None,
            system_name=system_name,
        )
    except ValueError as exc:
        raise MalformedReply(f"{what}: unusable identity ({exc})") from None


# --- UC phones: UC Software REST API (poly-device-apis.md 1.2-1.4) --------------------------

UC_OK = "2000"
UC_STATUS_TEXT: dict[str, str] = {
    "4000": "invalid input parameters",
    "4001": "device busy",
    "4002": "line not registered",
    "4003": "operation not allowed",
    "4004": "operation not supported",
    "4005": "line does not exist",
    "4006": "URLs not configured",
    "4007": "call does not exist",
    "4008": "configuration export failed",
    "4009": "input size limit exceeded",
    "4010": "default password not allowed",
    "4011": "contact not found",
    "4400": "bad request",
    "4403": "forbidden",
    "5000": "failed to process request",
    "5500": "internal server error",
}


def uc_data(payload: Any, what: str) -> Any:
    """The `data` of a `{"data": ..., "Status": "2000"}` envelope; any other Status is an error
    even on HTTP 200 (4001 busy, 4004 not supported, 4010/4403 credentials)."""
    body = require_mapping(payload, what)
    status = get_ci(body, "Status")
    code = str(status).strip() if isinstance(status, str | int) else ""
    if not code:
        raise MalformedReply(f"{what}: reply has no Status")
    if code == UC_OK:
        return get_ci(body, "data")
    message = f"{what}: UC API status {code} ({UC_STATUS_TEXT.get(code, 'unknown status')})"
    if code == "4001":
        raise DeviceBusy(message, answered=True)
    if code in ("4003", "4004"):
        raise NotSupported(message, answered=True)
    if code in ("4010", "4403"):
        raise AuthenticationFailed(message, answered=True)
    raise ApiStatusError(message, status=code)


def parse_uc_device_info(data: Any) -> DeviceFacts:
    """`GET /api/v1/mgmt/device/info` data: ModelNumber, FirmwareRelease, MACAddress; classic
    Polycom phones use the MAC (upper case) as their serial number."""
    info = require_mapping(data, "device/info")
    mac = mac_or_none(text_field(info, "MACAddress"))
    if mac is None:
        raise MalformedReply("device/info: MACAddress missing or not a MAC address")
    return facts(
        serial=mac.upper(),
        mac=mac,
        model=text_field(info, "ModelNumber"),
        firmware=text_field(info, "FirmwareRelease"),
        what="device/info",
    )


def parse_uc_prov_server(data: Any) -> str:
    """`GET /api/v1/mgmt/network/info` data → ProvServerAddress (where license files live)."""
    info = require_mapping(data, "network/info")
    address = text_field(info, "ProvServerAddress")
    if address is None:
        raise NotSupported("network/info: the phone has no provisioning server configured")
    return address


# --- VideoOS REST (poly-device-apis.md 2.1) ---------------------------------------------------


def parse_videoos_system(payload: Any) -> DeviceFacts:
    """`GET /rest/system`: serialNumber, model, softwareVersion, systemName (no MAC there)."""
    system = require_mapping(payload, "/rest/system")
    return facts(
        serial=text_field(system, "serialNumber"),
        mac=None,
        model=text_field(system, "model"),
        firmware=text_field(system, "softwareVersion"),
        system_name=text_field(system, "systemName"),
        what="/rest/system",
    )


def videoos_session_id(payload: Any) -> str:
    """`session.sessionId` of a successful `POST /rest/current/session` reply."""
    body = require_mapping(payload, "session login")
    session = get_ci(body, "session")
    session_id = text_field(session, "sessionId") if isinstance(session, Mapping) else None
    if not session_id:
        raise MalformedReply("session login: reply carries no session.sessionId")
    return session_id


# --- Group Series / HDX command API (poly-device-apis.md 2.2) --------------------------------

_WHOAMI_LINE = re.compile(r"^\s*([A-Za-z0-9 ,]+?)\s*:\s?(.*?)\s*$")
GS_ERRORS: tuple[str, ...] = (
    "error: command not found",
    "error:command not found",
    "error: command needs more parameters to execute successfully",
    "error: this command is not supported on this model",
    "command is not available in current system configuration",
)
"""The documented error replies of the API [R: AVI-SPL GS commandErrorList]."""


GS_TERMINATORS: tuple[str, ...] = ("status end", "callinfo end")
"""Documented last lines of multi-line replies [R: AVI-SPL GS `status`, `callinfo all`]."""
WHOAMI_LAST = "snmp enabled:"
"""The `whoami` block's last line; AVI-SPL takes it as the sign of a completed login [R]."""


def gs_reply_complete(text: str) -> bool:
    """Whether a reply from a device that prints no prompt is whole: its last full line is a
    documented terminator, an error line, or the end of the `whoami` block."""
    if not text.endswith("\n"):
        return False
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if not lines:
        return False
    last = lines[-1].lower()
    return last in GS_TERMINATORS or last.startswith(WHOAMI_LAST) or gs_error_line(last) is not None


def parse_whoami(text: str) -> dict[str, str]:
    """`Key: value` lines of a `whoami` block (CR LF or `\\r\\r\\n` endings), keys as printed."""
    fields: dict[str, str] = {}
    for raw in text.replace("\r", "\n").split("\n"):
        match = _WHOAMI_LINE.match(raw)
        if match and match.group(1).strip():
            fields.setdefault(match.group(1).strip(), match.group(2).strip())
    return fields


def facts_from_whoami(text: str) -> DeviceFacts:
    """Identity from `whoami`: Model, Software Version, Serial Number, `Hi, my name is`."""
    fields = parse_whoami(text)
    return facts(
        serial=fields.get("Serial Number") or None,
        mac=None,
        model=fields.get("Model") or None,
        firmware=fields.get("Software Version") or None,
        system_name=fields.get("Hi, my name is") or None,
        what="whoami",
    )


def gs_error_line(reply: str) -> str | None:
    """The first `error...` / documented failure line of a reply, else None."""
    for line in reply.replace("\r", "\n").split("\n"):
        stripped = line.strip()
        lowered = stripped.lower()
        if lowered.startswith("error") or lowered in GS_ERRORS:
            return stripped
    return None


def raise_for_gs_error(reply: str, what: str) -> None:
    """Turn an API error line into the error class a caller can act on."""
    line = gs_error_line(reply)
    if line is None:
        return
    lowered = line.lower()
    if "busy" in lowered:
        raise DeviceBusy(f"{what}: {line}", answered=True)
    if "not found" in lowered or "not supported" in lowered or "not available" in lowered:
        raise NotSupported(f"{what}: {line}", answered=True)
    raise CommandErrorLine(f"{what}: {line}", status=line)


# --- SNMP identity (poly-device-apis.md 3.2, 3.4) ---------------------------------------------


def snmp_text(value: Any) -> str | None:
    """An SNMP OCTET STRING value as stripped text; None for missing/noSuchObject/empty."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    return value.strip().strip("\x00") or None


def parse_sys_descr(text: str | None) -> tuple[str | None, str | None]:
    """(model, software) from a sysDescr in the MODELED form `Polycom <model>, software <ver>`
    (no public source shows Poly's sysDescr); any other text comes back whole as the model."""
    if not text:
        return None, None
    body = text.strip()
    body = body[len("Polycom ") :] if body.lower().startswith("polycom ") else body
    model, sep, software = body.partition(", software ")
    return (model.strip() or None, software.strip() or None) if sep else (body, None)


def first_mac(values: list[tuple[str, Any]]) -> str | None:
    """The first usable MAC of a hardwareNICNICsMAC walk (DisplayString in any spelling)."""
    for _oid, value in values:
        mac = mac_or_none(snmp_text(value))
        if mac is not None:
            return mac
    return None
