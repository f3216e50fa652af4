"""Modeled parameters of the drivers, settable per driver in the config file without forking.

A modeled call (poly-device-apis.md: no public source documents it) may differ on real hardware:
another route, other field names, another command. Each driver's `*_modeled.py` declares its
parameters as a `ModeledParams` model whose defaults are the values the simulator answers; a
site overrides them under `[drivers.<name>]` in the config file:

    [drivers.poly-uc]
    license_info_path = "/api/v1/mgmt/license/status"

The CLI hands the config file's `[drivers]` table to `configure` once; a driver reads its values
from its context (tests) or from here. `probe` and `drivers list` show the values in force.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from device_drivers.errors import DeviceDriversError

_CONFIGURED: dict[str, Mapping[str, Any]] = {}


class ModeledParams(BaseModel):
    """Base of every driver's modeled parameters: frozen, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class ModeledSettingsError(DeviceDriversError, ValueError):
    """A `[drivers.<name>]` section names an unknown driver or holds an invalid value."""


def configured(driver: str) -> Mapping[str, Any]:
    """The config file's `[drivers.<driver>]` values (empty: every default in force)."""
    return _CONFIGURED.get(driver, MappingProxyType({}))


def configure(
    sections: Mapping[str, Mapping[str, Any]],
    models: Mapping[str, type[ModeledParams]],
) -> None:
    """Check every section against its driver's parameters, then put them in force; an error
    names the driver and the key, so a typo fails at start-up, not on the first device."""
    problems: list[str] = []
    for name, values in sections.items():
        model = models.get(name)
        if model is None:
            known = ", ".join(sorted(models)) or "none"
            problems.append(f"[drivers.{name}]: no driver of that name (installed: {known})")
            continue
        try:
            model.model_validate(dict(values))
        except ValidationError as exc:
            for error in exc.errors():
                key = ".".join(str(part) for part in error["loc"]) or "(section)"
                problems.append(f"[drivers.{name}] {key}: {error['msg']}")
    if problems:
        raise ModeledSettingsError("; ".join(problems))
    _CONFIGURED.clear()
    _CONFIGURED.update({name: MappingProxyType(dict(values)) for name, values in sections.items()})


def reset() -> None:
    """Back to the defaults (tests)."""
    _CONFIGURED.clear()
