"""The discovery use case: probe addresses, add or update the Poly devices found.

Probing and recording are two steps, so a site agent can probe next to the devices with its own
credentials (`probe_addresses`) and the controller record what it found (`record_discovered`)
exactly as `polyfleet discover` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from controller.device_session import open_transports
from controller.discovery import Discovered, Discoverer, Outcome, device_from_discovery
from device_drivers.context import Timeouts
from device_drivers.registry import DriverRegistry
from inventory.credential_store import CredentialStore
from inventory.models import CredentialProfile, DevicePorts
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
    return await record_discovered(store, await probe_addresses(request, profiles), request.site)


async def probe_addresses(
    request: DiscoverRequest, profiles: Sequence[CredentialProfile]
) -> list[Discovered]:
    """What answers at each address, probed with `profiles` (not `request.credentials`: the
    caller has read them, from the store or from a site agent's file)."""
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
        return await discoverer.discover(request.addresses)


async def record_discovered(
    store: InventoryStore, results: Sequence[Discovered], site: str | None
) -> list[DiscoveredAddress]:
    """Add or update the devices found (at `site`); every address with what was done."""
    found = [r for r in results if r.outcome is Outcome.FOUND]
    devices = [device_from_discovery(r, site=site) for r in found]
    known = {d.serial for d in devices if await store.find_device(d.serial) is not None}
    report = await store.upsert_devices(devices)
    actions = {
        id(r): "updated" if d.serial in known else "added"
        for r, d in zip(found, devices, strict=True)
    }
    for conflict in report.conflicts:
        actions[id(found[conflict.index])] = f"conflict: {conflict.error}"
    return [_address(r, actions.get(id(r))) for r in results]


def discovery_document(results: Sequence[DiscoveredAddress]) -> list[dict[str, Any]]:
    """`discover -o json`'s document (also a discovery job's result)."""
    return [r.model_dump(mode="json") for r in results]


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
