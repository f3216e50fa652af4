"""Pydantic models of the API's requests and responses shared by several routes.

Request models forbid unknown fields, so a typo (`?stat=ok`, `{"rol": ...}`) is a 400 naming
it rather than a silently ignored filter.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel

from controller.health import Health
from inventory.catalog import ProductGroup
from inventory.models import LicenseState
from inventory.token_store import Role

T = TypeVar("T")
MAX_LIMIT = 500
DeviceOrder = Literal["serial", "site", "model", "status", "expires_at"]


class Strict(BaseModel):
    """A request model: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


class PageQuery(Strict):
    """`?limit=&offset=` of every listing."""

    limit: int = Field(default=50, ge=1, le=MAX_LIMIT, description="items per page")
    offset: int = Field(default=0, ge=0, le=10_000_000, description="items to skip")


class Page(BaseModel, Generic[T]):
    """One page of a listing and the number of items in all pages."""

    items: list[T]
    total: int
    limit: int
    offset: int


class Me(BaseModel):
    """The caller's token: its role, site (agents) and name."""

    role: Role
    site: str | None
    name: str | None


class TokenCreate(Strict):
    """`POST /tokens`: an agent token needs its site."""

    role: Role
    site: str | None = Field(default=None, min_length=1, max_length=128)
    name: str | None = Field(default=None, min_length=1, max_length=128)


class TokenCreated(BaseModel):
    """The new token's id and the token itself, shown this once."""

    id: str
    token: str


class TokenInfo(BaseModel):
    """A token as listed: never its secret (`TokenInfo.model_validate(api_token)`)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    role: Role
    site: str | None
    name: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenList(BaseModel):
    items: list[TokenInfo]


class Status(BaseModel):
    """`/healthz`, `/readyz`: `{"status": "ok"}` (a failed check is a 503 problem)."""

    status: str


class DeviceQuery(PageQuery):
    """`GET /devices` filters; `q` is a serial prefix or a MAC (or its leading digits) in
    any spelling."""

    site: str | None = Field(default=None, min_length=1, max_length=128)
    model: str | None = Field(default=None, min_length=1, max_length=128)
    product_group: ProductGroup | None = None
    status: Health | None = Field(default=None, description="health verdict")
    q: str | None = Field(default=None, min_length=1, max_length=64, description="serial or MAC")
    sort: DeviceOrder = "serial"
    order: Literal["asc", "desc"] = "asc"


class LicenseOut(BaseModel):
    feature: str
    state: LicenseState
    expires_at: datetime | None


class LicenseReadOut(BaseModel):
    ok: bool
    call: str | None
    detail: str | None
    modeled: bool


class DeviceOut(BaseModel):
    """A device as `scan -o json` shows one (from its latest stored observation), plus its
    id, health verdict and tags."""

    id: str
    serial: str
    mac: str | None
    model: str | None
    product_group: ProductGroup | None
    driver: str | None
    host: str | None
    site: str | None
    reachable: bool | None = Field(description="null: never scanned")
    error: str | None
    error_kind: str | None
    firmware: str | None
    licenses: list[LicenseOut]
    license_read: LicenseReadOut | None
    observed_at: datetime | None
    status: Health
    reason: str
    tags: dict[str, str]


class DevicePage(Page[DeviceOut]):
    pass


class ObservationOut(BaseModel):
    """One stored observation of the device: its history keeps the newest
    `observation_history` (setting, default 50)."""

    observed_at: datetime
    reachable: bool
    driver: str | None
    error_kind: str | None
    error: str | None
    identity_mismatch: str | None
    licenses: list[LicenseOut] | None = Field(
        description="what this observation read; null: not read (license_read says why)"
    )
    license_read: LicenseReadOut | None


class ObservationPage(Page[ObservationOut]):
    """A device's kept observations, newest first."""


class ConfirmationOut(BaseModel):
    """PRODUCT.md's confirmation keys, and the record's signature, spelled as hashed (so a
    client can recompute each hash from this JSON)."""

    number: str
    serial: str
    mac: str | None
    feature: str
    state_before: LicenseState
    state_after: LicenseState
    key_ref: str
    driver: str
    fee: str = Field(description="decimal amount, 2 places")
    currency: str
    contract: str | None
    requested_at: str = Field(description="the chain's spelling: UTC, microseconds, Z")
    confirmed_at: str = Field(description="the chain's spelling: UTC, microseconds, Z")
    actor: str
    hash: str
    prev_hash: str | None
    signature: str | None


DETAIL_OBSERVATIONS = 20
"""Observations `GET /devices/{id}` includes; `GET /devices/{id}/observations` pages the rest."""


class DeviceDetail(DeviceOut):
    observations: list[ObservationOut] = Field(
        description=f"the newest {DETAIL_OBSERVATIONS}, newest first (all that are kept: "
        "GET /devices/{id}/observations)"
    )
    observations_total: int = Field(description="observations kept for this device")
    confirmations: list[ConfirmationOut]


class ConfirmationPage(Page[ConfirmationOut]):
    pass


class ChainVerdict(BaseModel):
    """`confirmations verify`'s verdict on the stored record."""

    intact: bool
    records: int = Field(description="records verified before the first problem (all if intact)")
    head_hash: str | None
    key_id: str | None = Field(description="the key signatures were checked with (null: none)")
    detail: str | None = Field(description="the first problem: record, field and why")


class HealthQuery(Strict):
    site: str | None = Field(default=None, min_length=1, max_length=128)


class HealthDeviceOut(BaseModel):
    serial: str
    mac: str | None
    status: Health
    reason: str
    site: str | None
    last_observed: datetime | None
    license_read: LicenseReadOut | None


class HealthReport(BaseModel):
    """Exactly `polyfleet health --format json`."""

    status: Health
    counts: dict[Health, int]
    checked_at: datetime
    devices: list[HealthDeviceOut]


class SiteOut(BaseModel):
    site: str | None = Field(description="null: devices without a site")
    devices: int
    counts: dict[Health, int]
    agent_last_seen: datetime | None


class SiteList(RootModel[list[SiteOut]]):
    pass


class QuoteQuery(Strict):
    feature: str | None = Field(default=None, min_length=1, max_length=64)
    on: date | None = Field(default=None, description="quote date (default: today)")
