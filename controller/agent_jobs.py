"""The controller's side of jobs run by site agents: what an agent is handed, what it sends back.

An agent has no access to the controller's store. With a claimed scan or probe it is handed the
inventory records of the devices concerned (without pins: the agent pins on first use itself,
next to the devices); the scan result it posts back (`scan -o json`'s document) is recorded in
the controller's store as the observations a local scan would have written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controller.jobs import ProbePayload, ScanPayload
from controller.usecases.scan import select_devices
from inventory.errors import InventoryError
from inventory.job_store import Job, JobKind
from inventory.models import License, LicenseRead, LicenseState
from inventory.observation_store import DeviceObservation, ObservationStore
from inventory.store import InventoryStore

DEVICES_KEY = "inventory"
"""The payload key of the device records handed to an agent."""


async def agent_payload(store: InventoryStore, job: Job) -> dict[str, Any]:
    """The job's payload plus the inventory records of its devices (an unknown device is left
    out: the agent's run then reports it, as the CLI would)."""
    if job.kind is JobKind.SCAN:
        scan = ScanPayload.model_validate(job.payload)
        try:
            devices = await select_devices(store, scan.site, scan.devices)
        except InventoryError:
            devices = []
    elif job.kind is JobKind.PROBE:
        found = await store.find_device(ProbePayload.model_validate(job.payload).device)
        devices = [found] if found else []
    else:
        devices = []
    records = [
        d.model_dump(mode="json", exclude={"tls_fingerprint", "ssh_host_key"}) for d in devices
    ]
    return {**job.payload, DEVICES_KEY: records}


async def record_agent_result(store: InventoryStore, job: Job, result: Any) -> int:
    """Record a scan job's result from an agent as observations; how many were recorded."""
    if job.kind is not JobKind.SCAN or not isinstance(result, list):
        return 0
    observations = [_observation(row) for row in result if isinstance(row, dict)]
    known = {d.serial for d in await store.list_devices(site=job.site)} if observations else set()
    kept = [o for o in observations if o is not None and o.serial in known]
    await ObservationStore(store.engine, keep=store.observation_history).record(kept)
    return len(kept)


def _observation(row: dict[str, Any]) -> DeviceObservation | None:
    """One `scan -o json` row as the observation a local scan stores (None if malformed)."""
    try:
        serial = str(row["serial"])
        observed_at = datetime.fromisoformat(str(row["observed_at"]))
        read = row.get("license_read")
        license_read = LicenseRead.model_validate(read) if isinstance(read, dict) else None
        mismatch = row.get("error_kind") == "identity_mismatch"
        licenses = None
        if license_read is not None and license_read.ok and not mismatch:
            licenses = [
                License(
                    serial=serial,
                    feature=lic["feature"],
                    state=LicenseState(lic["state"]),
                    expires_at=(
                        datetime.fromisoformat(lic["expires_at"]) if lic["expires_at"] else None
                    ),
                    source=row.get("driver") or "scan",
                    observed_at=observed_at,
                )
                for lic in row.get("licenses") or []
            ]
        return DeviceObservation(
            serial=serial,
            observed_at=observed_at,
            reachable=bool(row.get("reachable")),
            driver=row.get("driver"),
            error_kind=row.get("error_kind"),
            error=row.get("error"),
            reported_model=row.get("model"),
            firmware=row.get("firmware"),
            identity_mismatch=row.get("error") if mismatch else None,
            licenses=licenses,
            license_read=license_read,
        )
    except (KeyError, TypeError, ValueError):
        return None
