"""The discovery use case: probe addresses, add or update the Poly devices found."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from controller.device_session import open_transports
from controller.discovery import Discovered, Discoverer, Outcome, device_from_discovery
from device_drivers.context import Timeouts
from device_drivers.registry import DriverRegistry
from inventory.credential_store import CredentialStore
from inventory.models import DevicePorts
from inventory.secret_box import SecretBox
from inventory.store import InventoryStore


class DiscoverRequest(BaseModel):
    """Addresses to probe (already expanded, see `controller.discovery.expand_targets`)."""

    model_config = ConfigDict(frozen=True)

    addresses: list[str]
    site: str | None = None
    credentials: list[str] = Field(default_factory=list)
    """Profiles to probe with, in order; the one that works is remembered on the device."""
    concurrency: int = 256
    timeout: float = 1.0
    """Per probe (s); HTTPS gets three times as long, SSH 5 s."""
    ports: DevicePorts = Field(default_factory=DevicePorts)


class DiscoveredAddress(BaseModel):
    """One probed address and what was done about it (`action`: added, updated, conflict).
    Serialised, it is one row of `discover -o json`; `warning` (something to act on, e.g. a
    model the catalogue does not know) is a message beside the data, not one of its keys."""

    model_config = ConfigDict(frozen=True)

    address: str
    outcome: str
    action: str | None
    serial: str | None
    mac: str | None
    model: str | None
    driver: str | None
    detail: str | None
    warning: str | None = Field(default=None, exclude=True)


async def discover(store: InventoryStore, request: DiscoverRequest) -> list[DiscoveredAddress]:
    """Probe every address, then upsert the devices found; ProfileNotFound for a bad profile."""
    creds = CredentialStore(store.engine, SecretBox.from_environment())
    profiles = [await creds.get(name) for name in request.credentials]
    timeout = request.timeout
    async with open_transports(request.concurrency) as transports:
        discoverer = Discoverer(
            DriverRegistry(),
            transports,
            profiles,
            timeouts=Timeouts(snmp=timeout, snmp_retries=0, http=timeout * 3, ssh=5.0),
            concurrency=request.concurrency,
            ports=request.ports,
        )
        results = await discoverer.discover(request.addresses)
    found = [r for r in results if r.outcome is Outcome.FOUND]
    devices = [device_from_discovery(r, site=request.site) for r in found]
    known = {d.serial for d in devices if await store.find_device(d.serial) is not None}
    report = await store.upsert_devices(devices)
    actions = {
        id(r): "updated" if d.serial in known else "added"
        for r, d in zip(found, devices, strict=True)
    }
    for conflict in report.conflicts:
        actions[id(found[conflict.index])] = f"conflict: {conflict.error}"
    return [_address(r, actions.get(id(r))) for r in results]


def _address(result: Discovered, action: str | None) -> DiscoveredAddress:
    facts = result.facts
    return DiscoveredAddress(
        address=result.address,
        outcome=result.outcome.value,
        action=action or None,
        serial=facts.serial if facts else None,
        mac=facts.mac if facts else None,
        model=facts.model if facts else None,
        driver=result.driver,
        detail=result.detail,
        warning=result.warning,
    )
