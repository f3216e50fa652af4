"""MODELED option-key commands of the `polycom-gs` driver: the one file to check on hardware.

Group Series / HDX option keys are entered in the web UI; no API command to list or enter them
was found (poly-device-apis.md 2.3). Modeled here, and agreed with the simulator:

* `optionkey list` (modeled) → `optionkey <feature> <state> <YYYY-MM-DD|none>` per feature,
  then `optionkey end`.
* `optionkey apply <key>` (modeled) → `optionkey <feature> active <YYYY-MM-DD>`, or one error
  line: `error: invalid option key` (malformed or tampered), `error: option key is for another
  system`, `error: option key has expired`, `error: option not supported on this model`.
* The API prompt `-> ` after each reply (the public sources do not show it). It is optional:
  a device that prints none is read by the documented terminators and idle time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, time
from types import MappingProxyType

from device_drivers.errors import MalformedReply
from device_drivers.models import LicenseStatus
from device_drivers.poly.parsing import gs_error_line, license_state

PROMPT = "-> "
LIST_COMMAND = "optionkey list"
APPLY_COMMAND = "optionkey apply {key}"
_LINE = re.compile(r"^optionkey\s+(\S+)\s+(\S+)\s+(\S+)\s*$")
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_.:+/=-]{1,256}$")

MODELED_CALLS: Mapping[str, str] = MappingProxyType(
    {
        "read_licenses": f"SSH `{LIST_COMMAND}` (modeled)",
        "apply_activation": f"SSH `{APPLY_COMMAND}` (modeled), error lines mapped to reasons",
        "verify": f"SSH `{LIST_COMMAND}` (modeled)",
        "session": f"SSH API prompt {PROMPT!r} (modeled)",
    }
)


LIST_END = "optionkey end"


def reply_complete(text: str) -> bool:
    """The modeled terminator: an `optionkey list` reply ends with `optionkey end`."""
    return text.rstrip().lower().endswith(LIST_END)


def apply_command(key: str) -> str:
    """The apply command line; a key with spaces or control characters never reaches the CLI."""
    if not _SAFE_KEY.match(key):
        raise ValueError("activation key contains characters the command API cannot carry")
    return APPLY_COMMAND.format(key=key)


def _expiry(text: str) -> datetime | None:
    if text.lower() == "none":
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).date()
    except ValueError:
        return None
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def parse_option_line(line: str) -> LicenseStatus | None:
    """One `optionkey <feature> <state> <date|none>` line; None for anything else."""
    match = _LINE.match(line.strip())
    if match is None or match.group(1) == "end":
        return None
    feature, state, expires = match.groups()
    return LicenseStatus(feature=feature, state=license_state(state), expires_at=_expiry(expires))


def parse_option_list(reply: str) -> list[LicenseStatus]:
    """The `optionkey list` reply, which must end with `optionkey end`."""
    lines = [line.strip() for line in reply.replace("\r", "\n").split("\n") if line.strip()]
    if LIST_END not in lines:
        raise MalformedReply(f"`{LIST_COMMAND}`: reply without `optionkey end`")
    return [status for line in lines if (status := parse_option_line(line)) is not None]


def parse_apply_reply(reply: str) -> tuple[LicenseStatus | None, str | None]:
    """(option now active, None) or (None, the device's error line)."""
    error = gs_error_line(reply)
    if error is not None:
        return None, error
    for line in reply.replace("\r", "\n").split("\n"):
        status = parse_option_line(line)
        if status is not None:
            return status, None
    raise MalformedReply(f"`optionkey apply`: unexpected reply {reply.strip()[:80]!r}")
