"""The probe use case: one inventory device's read-only calls, wired as a scan wires them."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from controller.device_session import SessionFactory, TrustOptions, open_transports
from controller.probe import ProbeReport, probe_inventory_device
from controller.usecases.scan import profiles_for
from device_drivers.context import Timeouts
from device_drivers.registry import DriverRegistry
from inventory.models import CredentialProfile
from inventory.store import InventoryStore


class ProbeRequest(BaseModel):
    """One device (serial or MAC, any spelling) and how to reach it."""

    model_config = ConfigDict(frozen=True)

    device_id: str
    timeout: float = 5.0
    """Per request (s); SSH gets at least 5 s."""
    credentials: str | None = None
    """The profile to use if the device names none."""
    ca_bundle: str | None = None
    insecure: bool = False


async def probe(
    store: InventoryStore,
    request: ProbeRequest,
    *,
    profiles: Mapping[str, CredentialProfile] | None = None,
) -> ProbeReport:
    """Every read-only call of the device's driver and what came back; nothing is applied or
    written. `profiles` replaces the store's credentials (a site agent holds its own). Raises
    DeviceNotFound, ProfileNotFound, or DriverRegistryError / LookupError when the device's
    driver is not installed."""
    device = await store.get_device(request.device_id)
    if profiles is None:
        profiles = await profiles_for(store, [device], request.credentials)
    timeout = request.timeout
    async with open_transports(1) as transports:
        sessions = SessionFactory(
            DriverRegistry(),
            transports,
            profiles,
            default_profile=request.credentials,
            timeouts=Timeouts(snmp=timeout, http=timeout, ssh=max(timeout, 5.0)),
            trust=TrustOptions(ca_bundle=request.ca_bundle, insecure=request.insecure),
        )
        return await probe_inventory_device(sessions, device)
