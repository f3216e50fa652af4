"""The runner's state file: license state, secrets, issued keys and provisioning files as JSON.

A restart with the same `--state-file` rebuilds the fleet from its seed and lays the saved
license state over it, so reactivations survive. The file holds the portal secret: mode 0600.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from simulator.state import LicenseState, SimDevice, SimLicense, SimLicenseUpdate

STATE_VERSION = 1


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def device_state(device: SimDevice) -> dict[str, Any]:
    """The mutable part of a device that must survive a restart."""
    update = device.last_license_update
    return {
        "licenses": [
            {
                "feature": lic.feature,
                "state": lic.state.value,
                "expires_at": _dt(lic.expires_at),
                "key": lic.key,
            }
            for lic in device.licenses.values()
        ],
        "last_license_update": None
        if update is None
        else {
            "at": update.at.isoformat(),
            "result": update.result,
            "feature": update.feature,
            "reason": update.reason,
        },
        "restart_required": device.restart_required,
        "config": dict(device.config),
    }


def apply_device_state(device: SimDevice, data: dict[str, Any]) -> None:
    """Lay saved state over a freshly generated device."""
    device.licenses = {
        item["feature"]: SimLicense(
            feature=item["feature"],
            state=LicenseState(item["state"]),
            expires_at=_parse_dt(item.get("expires_at")),
            key=item.get("key"),
        )
        for item in data.get("licenses", [])
    }
    update = data.get("last_license_update")
    if isinstance(update, dict):
        at = _parse_dt(update.get("at"))
        if at is not None:
            device.last_license_update = SimLicenseUpdate(
                at=at,
                result=str(update.get("result", "")),
                feature=update.get("feature"),
                reason=update.get("reason"),
            )
    device.restart_required = bool(data.get("restart_required", False))
    device.config = {str(k): str(v) for k, v in dict(data.get("config", {})).items()}


def devices_state(devices: Iterable[SimDevice]) -> dict[str, dict[str, Any]]:
    """State of many devices by serial."""
    return {device.serial: device_state(device) for device in devices}


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds secrets), replacing it atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write the state file (JSON, mode 0600)."""
    write_private(path, json.dumps({"version": STATE_VERSION, **state}, indent=1))


def load_state(path: Path) -> dict[str, Any] | None:
    """Read a state file, or None if there is none yet."""
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise ValueError(f"{path}: not a polyfleet simulator state file (version {STATE_VERSION})")
    return data
