"""What drivers return: typed results shared by every driver (napalm's models.py habit)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from inventory.catalog import ProductGroup
from inventory.models import AwareDatetime, LicenseState, Mac, Serial


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeviceFacts(_Result):
    """Identity as the device reports it."""

    serial: Serial
    mac: Mac | None = None
    model: str | None = None
    firmware: str | None = None
    product_group: ProductGroup | None = None
    system_name: str | None = None


class LicenseStatus(_Result):
    """One feature's license state as read from the device."""

    feature: str = Field(min_length=1)
    state: LicenseState
    expires_at: AwareDatetime | None = None
    detail: str | None = None


class ApplyResult(_Result):
    """Outcome of applying an activation key; `state` is what the device reports afterwards."""

    feature: str
    applied: bool
    state: LicenseState
    expires_at: AwareDatetime | None = None
    detail: str | None = None
    licenses: list[LicenseStatus] | None = None
    """Every license as the device reported it after applying, when the driver read them back
    (a phone polled until it loaded the key): the workflow verifies with this read instead of
    asking the device the same again. None: the workflow reads them itself."""


class Observation(_Result):
    """A device's identity and licenses read at one moment (what a scan records)."""

    facts: DeviceFacts
    licenses: list[LicenseStatus]
    observed_at: datetime
