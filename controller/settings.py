"""Typed settings of the controller and CLI, with one precedence: args > env > file > defaults.

The config file is TOML (`--config FILE` or `POLYFLEET_CONFIG`); environment variables are
`POLYFLEET_<NAME>`. Command-line options are applied by the CLI on top of what this loads.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from controller.errors import ControllerError
from inventory.input_files import DEFAULT_MAX_BYTES, DEFAULT_MAX_ROW, parse_toml, read_small_text
from inventory.observation_history import DEFAULT_KEEP

CONFIG_ENV = "POLYFLEET_CONFIG"


class ConfigError(ControllerError):
    """The config file cannot be read or holds invalid values."""


class PortalSettings(BaseModel):
    """The licensing portal used as entitlement provider (a section: only `POLYFLEET_PORTAL…`
    variables reach it, never a bare `URL` or `TOKEN`)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    token: SecretStr | None = None


class ServeSettings(BaseModel):
    """`[serve]`: where and how `polyfleet serve` listens (its options override these;
    `POLYFLEET_SERVE__PORT` and the like set one key)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", description="address to listen on")
    port: int = Field(default=8080, ge=0, le=65535)
    tls_cert: Path | None = Field(default=None, description="PEM certificate chain (with tls_key)")
    tls_key: Path | None = None
    log_format: Literal["text", "json"] = "text"
    auth_failures: int = Field(
        default=10, ge=1, description="failed authentications per address before 429"
    )
    auth_window: float = Field(
        default=60.0, gt=0, description="seconds over which auth_failures are counted"
    )
    shutdown_timeout: float = Field(
        default=10.0, gt=0, description="seconds requests in flight get to finish on SIGTERM"
    )
    job_lease: float = Field(
        default=60.0,
        ge=1,
        le=3600,
        description="seconds a job claim holds without renewal (a dead agent's job then requeues)",
    )
    list_cache_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=0,
        description="bytes of `GET /devices` answers kept in memory, least recently used "
        "dropped first (PostgreSQL only; 0: no cache)",
    )
    list_cache_max_age: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="seconds a cached `GET /devices` answer is served at most: the bound on "
        "how late it may show a write that committed while it was computed",
    )


class PolyfleetSettings(BaseSettings):
    """Everything polyfleet reads from the environment or the config file."""

    model_config = SettingsConfigDict(
        env_prefix="POLYFLEET_", env_nested_delimiter="__", extra="forbid"
    )

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
    observation_history: int = Field(
        default=DEFAULT_KEEP,
        ge=1,
        le=10_000,
        description="observations kept per device (its newest); older ones are dropped as new "
        "ones are recorded",
    )
    portal: PortalSettings = Field(default_factory=PortalSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    drivers: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="modeled parameters per driver: [drivers.<name>] key = value",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # env above file, so a deployment can override what the shared file says
        return (init_settings, env_settings, file_secret_settings)


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
        from_env = PolyfleetSettings()
        merged = {**file_values, **from_env.model_dump(exclude_unset=True)}
        return PolyfleetSettings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(f"invalid settings (config file {path}): {exc}") from exc
    except SettingsError as exc:  # e.g. POLYFLEET_PORTAL='{not json'
        raise ConfigError(f"invalid POLYFLEET_* environment variable: {exc}") from None
