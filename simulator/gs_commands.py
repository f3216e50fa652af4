"""The Group Series / HDX command API as a pure interpreter: one input line in, reply lines out.

No I/O here, so the SSH face (`simulator.ssh_server`) and unit tests drive the same code. Replies
follow the public sources (poly-device-apis.md §2.2: the `whoami` labels, `status … status end`,
`systemsetting` echoes, `getcallstate` lines, the documented `error: …` strings). Option keys have
no public command, so `optionkey list|apply` are MODELED in `OptionKeyCommands` below.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from simulator.licensing import FEATURES_BY_FAMILY, ApplyOutcome, apply_key, effective_state
from simulator.state import LicenseState, SimDevice

EOL = "\r\n"
"""Replies end CR LF (manualslib Group Series p.108)."""
PROMPT = "-> "
"""MODELED: the API prompt after each reply (not given by the public sources)."""

ERR_NOT_FOUND = "error: command not found"
ERR_MORE_PARAMS = "error: command needs more parameters to execute successfully"
ERR_NOT_SUPPORTED = "error: this command is not supported on this model"
ERR_NOT_AVAILABLE = "command is not available in current system configuration"
ERR_BUSY = "error: system busy"
"""MODELED: the reply while the `busy` fault is on (no public source shows a busy reply)."""

DEFAULT_SETTINGS: dict[str, str] = {
    "sipregistrarserver": "sip.example.invalid",
    "sipusername": "",
    "h323name": "",
    "systemname": "",
    "autoanswerp2p": "no",
}
"""`systemsetting` names the simulated device knows and their factory values (MODELED); values
set over the API live in `SimDevice.config`, and `systemname` is the device's system name."""

_STATUS_LINES: tuple[tuple[str, str], ...] = (
    ("autoanswerp2p", "offline"),
    ("remotecontrol", "online"),
    ("ipnetwork", "online"),
    ("gatekeeper", "offline"),
    ("sipserver", "online"),
    ("logthreshold", "off"),
    ("trackablecamera", "offline"),
    ("camera", "online"),
    ("provisioning", "offline"),
    ("audio", "online"),
    ("globaldirectory", "online"),
    ("calendar", "offline"),
)
"""`status` item names seen in AVI-SPL's parser [R]; the online/offline values are MODELED."""


@dataclass(slots=True)
class CommandResult:
    """Reply of one command; `close` ends the session, `rebooted` drops the connection too."""

    lines: list[str] = field(default_factory=list)
    close: bool = False
    rebooted: bool = False

    @property
    def text(self) -> str:
        """The reply as sent: every line terminated by CR LF."""
        return "".join(line + EOL for line in self.lines)


def _build_of(firmware: str) -> str:
    return firmware.rsplit("-", 1)[1] if "-" in firmware else firmware


OPTIONKEY_REFUSALS: dict[str, str] = {
    "malformed": "error: invalid option key",
    "tampered": "error: invalid option key",
    "wrong_serial": "error: option key is for another system",
    "expired": "error: option key has expired",
    "unknown_feature": "error: option not supported on this model",
}
"""MODELED: the error line for each reason `simulator.licensing.apply_key` refuses a key."""


class OptionKeyCommands:
    """MODELED option-key commands (no public GS/HDX API exists; web UI only, §2.3).

    `optionkey list` -> one line `optionkey <feature> <state> <YYYY-MM-DD|none>` per feature the
    family offers, then `optionkey end`. `optionkey apply <key>` -> `optionkey <feature> active
    <YYYY-MM-DD>` when the device accepts the key for its own serial, else one error line:
    `error: invalid option key` (malformed or tampered), `error: option key is for another
    system`, `error: option key has expired`, `error: option not supported on this model`.
    """

    def __init__(self, device: SimDevice, portal_secret: bytes, clock: Callable[[], float]):
        self._device = device
        self._secret = portal_secret
        self._clock = clock

    def run(self, args: list[str]) -> list[str]:
        """Dispatch `optionkey …`."""
        if not args:
            return [ERR_MORE_PARAMS]
        if args[0] == "list":
            return self._list()
        if args[0] == "apply":
            return [ERR_MORE_PARAMS] if len(args) < 2 else self._apply(args[1])
        return [ERR_NOT_FOUND]

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _list(self) -> list[str]:
        now = self._now()
        features = list(FEATURES_BY_FAMILY.get(self._device.family, ()))
        features += sorted(set(self._device.licenses) - set(features))
        lines = []
        for feature in features:
            lic = self._device.licenses.get(feature)
            state = LicenseState.MISSING if lic is None else effective_state(lic, now)
            expires = "none"
            if lic is not None and lic.expires_at is not None:
                expires = lic.expires_at.date().isoformat()
            lines.append(f"optionkey {feature} {state.value} {expires}")
        return [*lines, "optionkey end"]

    def _apply(self, key: str) -> list[str]:
        outcome: ApplyOutcome = apply_key(self._device, self._secret, key, now=self._now())
        if outcome.ok and outcome.feature is not None and outcome.expires_at is not None:
            return [f"optionkey {outcome.feature} active {outcome.expires_at.date().isoformat()}"]
        return [OPTIONKEY_REFUSALS.get(outcome.reason or "malformed", "error: invalid option key")]


class GsCommandInterpreter:
    """One API session's command handling for a simulated Group Series / HDX system."""

    def __init__(
        self,
        device: SimDevice,
        portal_secret: bytes,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.device = device
        self._clock = clock
        self._options = OptionKeyCommands(device, portal_secret, clock)

    # --- fixed blocks -----------------------------------------------------------------------
    def whoami_lines(self) -> list[str]:
        """The `whoami` block; AVI-SPL detects a finished login by its `SNMP Enabled:` line."""
        d = self.device
        local = datetime.fromtimestamp(self._clock(), UTC)
        return [
            f"Hi, my name is : {d.system_name}",
            f"Model: {d.model}",
            f"Software Version: {d.firmware}",
            f"Build Information: {_build_of(d.firmware)}",
            f"Serial Number: {d.serial}",
            "Time In Last Call: 0:00:42:10",
            "Total Time In Calls: 3:07:15:02",
            "Total Calls: 318",
            "SNTP Time Service: auto insync pool.ntp.org",
            f"Local Time is: {local:%a, %d %b %Y %H:%M:%S} UTC",
            "H323 Enabled: True",
            "HTTP Enabled: True",
            "SNMP Enabled: True",
        ]

    def banner(self) -> str:
        """What the system prints right after login: its `whoami` block."""
        return CommandResult(self.whoami_lines()).text

    # --- commands ---------------------------------------------------------------------------
    def execute(self, line: str) -> CommandResult:
        """Run one command line; unknown input gets the documented error string."""
        words = line.strip().split()
        if not words:
            return CommandResult()
        command, args = words[0].lower(), words[1:]
        if command == "exit":
            return CommandResult(close=True)
        if self.device.faults.busy:
            return CommandResult([ERR_BUSY])
        handler = self._handlers().get(command)
        if handler is None:
            return CommandResult([ERR_NOT_FOUND])
        return handler(args)

    def _handlers(self) -> dict[str, Callable[[list[str]], CommandResult]]:
        return {
            "whoami": lambda _args: CommandResult(self.whoami_lines()),
            "status": lambda _args: CommandResult(self._status()),
            "systemsetting": self._systemsetting,
            "enablesnmp": self._enablesnmp,
            "getcallstate": lambda _args: CommandResult(self._callstate()),
            "reboot": self._reboot,
            "optionkey": lambda args: CommandResult(self._options.run(args)),
        }

    def _status(self) -> list[str]:
        lines = [f"{name} {value}" for name, value in _STATUS_LINES]
        return [*lines, "status end"]

    def _systemsetting(self, args: list[str]) -> CommandResult:
        if not args or (args[0] == "get" and len(args) < 2):
            return CommandResult([ERR_MORE_PARAMS])
        config = self.device.config  # persisted with the device (state file)
        if args[0] == "get":
            name = args[1].lower()
            if name not in DEFAULT_SETTINGS and name not in config:
                return CommandResult([ERR_NOT_SUPPORTED])
            if name == "systemname":
                value = self.device.system_name
            else:
                value = config.get(name, DEFAULT_SETTINGS.get(name, ""))
            return CommandResult([f"systemsetting {name} {value}".rstrip()])
        name = args[0].lower()
        if len(args) < 2:
            return CommandResult([ERR_MORE_PARAMS])
        if name not in DEFAULT_SETTINGS:
            return CommandResult([ERR_NOT_SUPPORTED])
        value = " ".join(args[1:]).strip('"')
        if name == "systemname":
            self.device.system_name = value
        else:
            config[name] = value
        return CommandResult([f"systemsetting {name} {value}"])

    @staticmethod
    def _enablesnmp(args: list[str]) -> CommandResult:
        """SNMP stays on in the simulator (the fleet needs it), so only `get` and `yes` succeed."""
        if not args:
            return CommandResult([ERR_MORE_PARAMS])
        if args[0] in ("get", "yes"):
            return CommandResult(["enablesnmp yes"])
        if args[0] == "no":
            return CommandResult([ERR_NOT_AVAILABLE])
        return CommandResult([ERR_NOT_FOUND])

    def _callstate(self) -> list[str]:
        if self.device.in_call:
            first = "cs: call[34] speed[1920] dialstr[10.0.0.42] state[connected]"
        else:
            first = "cs: call[0] inactive"
        return [first, "cs: call[1] inactive", "cs: call[2] inactive"]

    def _reboot(self, args: list[str]) -> CommandResult:
        if not args or args[0] != "now":
            return CommandResult([ERR_MORE_PARAMS])
        self.device.boot_time = self._clock()
        self.device.restart_required = False
        self.device.in_call = False
        return CommandResult(close=True, rebooted=True)
