"""Asking for device work: scans, probes, re-activations and discoveries become queued jobs.

Each job names the site whose agent runs it (the site of its devices), so the work happens next
to the devices; a job whose devices span several sites, or name none, is run by a controller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controller.discovery import expand_targets
from controller.usecases.scan import select_devices
from inventory.job_store import Job, JobKind, JobStore
from inventory.store import InventoryStore


def _one_site(sites: Sequence[str | None]) -> str | None:
    distinct = set(sites)
    return distinct.pop() if len(distinct) == 1 else None


async def submit_scan(
    store: InventoryStore,
    *,
    site: str | None,
    devices: Sequence[str] | None,
    created_by: str,
) -> Job:
    """A scan of the named devices (each must exist: DeviceNotFound) or of a site, else all."""
    payload: dict[str, Any] = {"site": site}
    job_site = site
    if devices:
        chosen = await select_devices(store, site, devices)
        payload["devices"] = [d.serial for d in chosen]
        job_site = site or _one_site([d.site for d in chosen])
    return await JobStore(store.engine).enqueue(
        JobKind.SCAN, payload, site=job_site, created_by=created_by
    )


async def submit_probe(store: InventoryStore, *, device: str, created_by: str) -> Job:
    found = await store.get_device(device)
    return await JobStore(store.engine).enqueue(
        JobKind.PROBE, {"device": found.serial}, site=found.site, created_by=created_by
    )


async def submit_reactivation(
    store: InventoryStore, *, device: str, feature: str | None, created_by: str
) -> Job:
    """Re-activate one device (its expired features, or `feature`); the job's creator is the
    actor on the audit record."""
    found = await store.get_device(device)
    return await JobStore(store.engine).enqueue(
        JobKind.REACTIVATION,
        {"device": found.serial, "feature": feature},
        site=found.site,
        created_by=created_by,
    )


async def submit_discovery(
    store: InventoryStore,
    *,
    cidrs: Sequence[str],
    site: str,
    created_by: str,
    credentials: Sequence[str] = (),
) -> Job:
    """Probe address ranges for Poly devices with the named credential profiles (none: every
    profile); DiscoveryError for a bad or too large range."""
    expand_targets(cidrs)  # refused now rather than as a failed job
    payload = {"cidrs": list(cidrs), "site": site, "credentials": list(credentials)}
    return await JobStore(store.engine).enqueue(
        JobKind.DISCOVERY, payload, site=site, created_by=created_by
    )
