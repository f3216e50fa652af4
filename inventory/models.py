"""The inventory's domain records (pydantic v2): what polyfleet knows about a fleet.

Identifiers are normalised on the way in, so every record in memory and in the store carries a
serial in upper case and a MAC as 12 lower-case hex digits. Secrets are `SecretStr` so that a
stray `print` or log line shows `**********`, never the value.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from inventory.catalog import ProductGroup
from inventory.errors import InvalidIdentifier
from inventory.hosts import normalize_host
from inventory.identifiers import normalize_mac, normalize_serial

STORED: dict[str, bool] = {"stored": True}
"""Validation context of records read back from the store: a host stored before hosts were
checked (issue 9) is kept, so the device can still be listed and fixed; its use is refused
where an address is needed (`DriverContext.host`)."""


def aware(value: datetime) -> datetime:
    """Timestamps are stored and shown with a timezone; naive input is taken as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


Serial = Annotated[str, AfterValidator(normalize_serial)]
Mac = Annotated[str, AfterValidator(normalize_mac)]
AwareDatetime = Annotated[datetime, AfterValidator(aware)]
Port = Annotated[int, Field(ge=1, le=65535)]


class _Record(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", str_strip_whitespace=True, defer_build=True
    )


class LicenseState(StrEnum):
    """Per-feature license state as a driver reports it (PRODUCT.md)."""

    ACTIVE = "active"
    EXPIRED = "expired"
    DEACTIVATED = "deactivated"
    MISSING = "missing"
    UNKNOWN = "unknown"


class DevicePorts(_Record):
    """Per-protocol ports where a device does not use the standard ones (161, 443, 22)."""

    snmp: Port | None = None
    https: Port | None = None
    ssh: Port | None = None


class Device(_Record):
    """One device, keyed by serial; the MAC is unique where present (analog products have none)."""

    serial: Serial
    mac: Mac | None = None
    model: str | None = None
    product_group: ProductGroup | None = None
    driver: str | None = None
    host: str | None = None
    ports: DevicePorts = DevicePorts()
    site: str | None = None
    firmware: str | None = None
    credentials: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    tls_fingerprint: str | None = None
    ssh_host_key: str | None = None
    first_seen: AwareDatetime | None = None
    last_seen: AwareDatetime | None = None

    @field_validator(
        "mac", "model", "driver", "host", "site", "firmware", "credentials", mode="before"
    )
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str | None, info: ValidationInfo) -> str | None:
        """An IP address or DNS name and nothing else (see `inventory.hosts`)."""
        if value is None or (info.context or {}).get("stored"):
            return value
        try:
            return normalize_host(value)
        except InvalidIdentifier as exc:  # the message alone, without pydantic's "Value error,"
            raise PydanticCustomError("host", "{reason}", {"reason": str(exc)}) from None


class Site(_Record):
    """A place devices live; its country picks the holiday calendar for SLA due dates."""

    name: str = Field(min_length=1, max_length=128)
    region: str | None = None
    country: str | None = Field(default=None, min_length=2, max_length=2)


class ContractKind(StrEnum):
    """What kind of agreement covers a device (eligibility source)."""

    WARRANTY = "warranty"
    SUPPORT = "support"
    EXTENDED_REACTIVATION = "extended-reactivation"


class Pricing(StrEnum):
    """How the extended reactivation service is charged (seed: per device or per contract term)."""

    PER_DEVICE = "per-device"
    PER_TERM = "per-term"


class Contract(_Record):
    """A warranty or service agreement, covering listed serials and/or whole product groups."""

    kind: ContractKind
    number: str = Field(min_length=1, max_length=64)
    start: date
    end: date
    serials: frozenset[Serial] = frozenset()
    product_groups: frozenset[ProductGroup] = frozenset()
    pricing: Pricing = Pricing.PER_DEVICE
    region: str | None = None

    @model_validator(mode="after")
    def _check_span(self) -> Contract:
        if self.end < self.start:
            raise ValueError(
                f"contract {self.number} ends ({self.end}) before it starts ({self.start})"
            )
        if not self.serials and not self.product_groups:
            raise ValueError(f"contract {self.number} covers no serials and no product groups")
        return self

    def covers(self, serial: str, product_group: ProductGroup | None, on: date) -> bool:
        """Whether this contract covers a device on a given day."""
        if not self.start <= on <= self.end:
            return False
        return serial in self.serials or (
            product_group is not None and product_group in self.product_groups
        )


class License(_Record):
    """One feature's license state on one device, as last observed."""

    serial: Serial
    feature: str = Field(min_length=1, max_length=64)
    state: LicenseState
    expires_at: AwareDatetime | None = None
    source: str = Field(min_length=1, description="driver or transport that observed it")
    observed_at: AwareDatetime


class LicenseRead(_Record):
    """Whether a scan read a device's license state and, if not, which call failed and what
    came back: a nightly check must never take "nothing read" for "nothing licensed"."""

    ok: bool
    call: str | None = None
    """The call that reads the license state (`GET /api/v1/mgmt/license/info`, an OID...)."""
    detail: str | None = None
    """What came back (`HTTP 404`, the device's error line, a timeout), or what was read."""
    modeled: bool = False
    """True when the call is modeled (no public Poly source documents it)."""

    def to_json(self) -> dict[str, object]:
        return {"ok": self.ok, "call": self.call, "detail": self.detail, "modeled": self.modeled}


class ActivationKey(_Record):
    """A key that activates `feature` on the device with `serial`, from a portal or a file."""

    serial: Serial
    feature: str = Field(min_length=1, max_length=64)
    key: SecretStr
    expires_at: AwareDatetime | None = None
    source: str = Field(min_length=1)
    used_at: AwareDatetime | None = None


class Confirmation(_Record):
    """A tamper-evident record of one completed activation (fields from PRODUCT.md)."""

    number: str = Field(pattern=r"^RC-\d{4}-\d{6}$")
    serial: Serial
    mac: Mac | None
    feature: str
    state_before: LicenseState
    state_after: LicenseState
    key_ref: str
    driver: str
    fee: Decimal
    currency: str = Field(default="USD", min_length=3, max_length=3)
    contract: str | None
    requested_at: AwareDatetime
    confirmed_at: AwareDatetime
    actor: str
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    prev_hash: str | None = Field(pattern=r"^[0-9a-f]{64}$")
    signature: str | None = None
    """`KEYID:BASE64` Ed25519 signature of `hash` (not part of what is hashed)."""


SnmpAuthProtocol = Literal["sha", "sha256"]
SnmpPrivProtocol = Literal["aes", "aes256"]

SECRET_FIELDS = (
    "http_password",
    "ssh_password",
    "snmp_community",
    "snmp_auth_key",
    "snmp_priv_key",
)
"""The fields of a credential profile that are secrets: encrypted at rest, never printed."""


ProfileName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
"""A credential profile's name, wherever one is named (a profile, a job asking for some)."""


class CredentialProfile(_Record):
    """How to log in to a set of devices over HTTP, SNMP and SSH; secrets are SecretStr."""

    name: ProfileName
    http_user: str | None = None
    http_password: SecretStr | None = None
    snmp_version: Literal["2c", "3"] = "2c"
    snmp_community: SecretStr | None = None
    snmp_user: str | None = None
    snmp_auth_protocol: SnmpAuthProtocol = "sha"
    snmp_auth_key: SecretStr | None = None
    snmp_priv_protocol: SnmpPrivProtocol = "aes"
    snmp_priv_key: SecretStr | None = None
    ssh_user: str | None = None
    ssh_password: SecretStr | None = None
    ssh_key_file: str | None = None

    @model_validator(mode="after")
    def _check_snmp(self) -> CredentialProfile:
        if self.snmp_version == "3" and self.snmp_user is None:
            raise ValueError("SNMP v3 needs --snmp-user")
        for name in ("snmp_auth_key", "snmp_priv_key"):
            secret = getattr(self, name)
            if secret is not None and len(secret.get_secret_value()) < 8:
                raise ValueError(f"{name} must be at least 8 characters (RFC 3414)")
        return self

    def secret_fields_set(self) -> list[str]:
        """Names of the secrets this profile holds (for listings: which, never what)."""
        return [name for name in SECRET_FIELDS if getattr(self, name) is not None]
