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

from pydantic import field_validator

from device_drivers.errors import MalformedReply
from device_drivers.modeled_settings import ModeledParams
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


class Params(ModeledParams):
    """MODELED: the option-key commands and the API prompt; `[drivers.polycom-gs]` overrides
    each (an empty prompt: the device prints none)."""

    prompt: str = PROMPT
    list_command: str = LIST_COMMAND
    list_end: str = LIST_END
    apply_command: str = APPLY_COMMAND

    @field_validator("apply_command")
    @classmethod
    def _takes_the_key(cls, value: str) -> str:
        if value.count("{key}") != 1:
            raise ValueError("must contain {key} once (where the activation key goes)")
        return value


DEFAULTS = Params()


def reply_complete(text: str, params: Params = DEFAULTS) -> bool:
    """The modeled terminator: an `optionkey list` reply ends with `optionkey end`."""
    return text.rstrip().lower().endswith(params.list_end.lower())


def apply_command(key: str, params: Params = DEFAULTS) -> str:
    """The apply command line; a key with spaces or control characters never reaches the CLI."""
    if not _SAFE_KEY.match(key):
        raise ValueError("activation key contains characters the command API cannot carry")
    return params.apply_command.replace("{key}", key)


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


def parse_option_list(reply: str, params: Params = DEFAULTS) -> list[LicenseStatus]:
    """The `optionkey list` reply, which must end with `optionkey end`."""
    lines = [line.strip() for line in reply.replace("\r", "\n").split("\n") if line.strip()]
    if params.list_end not in lines:
        raise MalformedReply(f"`{params.list_command}`: reply without `{params.list_end}`")
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
