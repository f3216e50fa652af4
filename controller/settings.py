"""Typed settings of the controller and CLI, with one precedence: args > env > file > defaults.

The config file is TOML (`--config FILE` or `POLYFLEET_CONFIG`); environment variables are
`POLYFLEET_<NAME>`, and `POLYFLEET_<SECTION>__<KEY>` sets one key of a section (`portal`,
`drivers`). Command-line options are applied by the CLI on top of what this loads.

The environment is read here rather than by pydantic-settings: importing it costs about a tenth
of a second of every command (issue 11, start-up budget) for the few variables read below.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from controller.errors import ControllerError
from inventory.input_files import DEFAULT_MAX_BYTES, DEFAULT_MAX_ROW, parse_toml, read_small_text

CONFIG_ENV = "POLYFLEET_CONFIG"
ENV_PREFIX = "POLYFLEET_"
_NESTED = "__"


class ConfigError(ControllerError):
    """The config file cannot be read or holds invalid values."""


class PortalSettings(BaseModel):
    """The licensing portal used as entitlement provider."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    token: SecretStr | None = None


class PolyfleetSettings(BaseModel):
    """Everything polyfleet reads from the environment or the config file."""

    model_config = ConfigDict(extra="forbid")

    db: str | None = Field(default=None, description="database URL or SQLite file path")
    policy: Path | None = None
    import_max_bytes: int = Field(
        default=DEFAULT_MAX_BYTES, ge=1, description="largest file an import reads (bytes)"
    )
    import_max_row_bytes: int = Field(
        default=DEFAULT_MAX_ROW,
        ge=1,
        description="longest CSV line or JSON item an import accepts (characters)",
    )
    portal: PortalSettings = Field(default_factory=PortalSettings)
    drivers: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="modeled parameters per driver: [drivers.<name>] key = value",
    )


_SECTIONS = frozenset({"portal", "drivers"})


def environment_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings the environment sets, by field: `POLYFLEET_DB` (names in any case), a
    section as JSON (`POLYFLEET_PORTAL='{"url": ...}'`) or key by key
    (`POLYFLEET_PORTAL__TOKEN`, `POLYFLEET_DRIVERS__<NAME>__<KEY>`), keys over a whole section.
    Other `POLYFLEET_` variables (`POLYFLEET_CONFIG`, `POLYFLEET_LOG_DIR`, ...) are not settings."""
    values: dict[str, Any] = {}
    # Sorted: a section given whole comes before its keys, which then update it.
    for name, raw in sorted(environ.items(), key=lambda item: item[0].upper()):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        field, *keys = name[len(ENV_PREFIX) :].lower().split(_NESTED)
        if field not in PolyfleetSettings.model_fields or (keys and field not in _SECTIONS):
            continue
        if not keys:
            values[field] = _json_section(name, raw) if field in _SECTIONS else raw
            continue
        section = values.setdefault(field, {})
        for key in keys[:-1]:
            section = section.setdefault(key, {})
            if not isinstance(section, dict):
                raise ConfigError(f"environment variable {name}: {key!r} is not a section")
        section[keys[-1]] = raw
    return values


def _json_section(name: str, raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"environment variable {name} is not a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"environment variable {name} is not a JSON object")
    return value


def load_settings(config_file: Path | None) -> PolyfleetSettings:
    """Settings from the environment over the TOML config file (if any) over defaults."""
    path = config_file or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    file_values: dict[str, Any] = {}
    if path is not None:
        try:
            file_values = parse_toml(read_small_text(path))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    try:
        return PolyfleetSettings.model_validate({**file_values, **environment_values(os.environ)})
    except ValidationError as exc:
        raise ConfigError(f"invalid settings (config file {path}): {exc}") from exc
