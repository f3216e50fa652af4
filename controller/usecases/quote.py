"""The quote use case: may this device be re-activated, at what fee, under what contract?"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict

from controller.eligibility import Quote
from controller.policy import Policy
from controller.quoting import quote_device
from inventory.store import InventoryStore


class QuoteRequest(BaseModel):
    """One device (serial or MAC, any spelling), optionally one feature, on one day."""

    model_config = ConfigDict(frozen=True)

    device_id: str
    feature: str | None = None
    on: date


async def quote(store: InventoryStore, request: QuoteRequest, policy: Policy) -> Quote:
    """The quote the re-activation workflow would act on; DeviceNotFound if there is none."""
    device = await store.get_device(request.device_id)
    return await quote_device(store.engine, device, policy, request.on, feature=request.feature)
