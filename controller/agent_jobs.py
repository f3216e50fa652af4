"""The controller's side of jobs run by site agents: what an agent is handed, what it sends back.

An agent has no access to the controller's store. With a claimed scan, probe or re-activation
it is handed the inventory records of the devices concerned (without pins: the agent pins on
first use itself, next to the devices), and with a re-activation the features to re-activate,
chosen here from the license observations as `polyfleet reactivate` chooses them. What it posts
back is stored once per job: a scan's result (`scan -o json`'s document) is recorded as the
observations a local scan would have written, a discovery's probe results as `polyfleet
discover` records them (the job's result is then that command's document). A re-activation
records nothing on delivery: each of its steps was recorded as it happened (agent_ledger).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from controller.discovery import Discovered, expand_targets
from controller.jobs import (
    DiscoveryPayload,
    JobFailed,
    ProbePayload,
    ReactivationPayload,
    ScanPayload,
)
from controller.usecases.discover import discovery_document, record_discovered
from controller.usecases.reactivate import NoLicenseOnRecord, TargetQuery, select_targets
from controller.usecases.scan import select_devices
from inventory.errors import InventoryError
from inventory.job_store import FINISHED_STATES, Job, JobKind, JobState, JobStore
from inventory.models import Device, License, LicenseRead, LicenseState
from inventory.observation_store import DeviceObservation, ObservationStore
from inventory.store import InventoryStore

DEVICES_KEY = "inventory"
"""The payload key of the device records handed to an agent."""


async def agent_payload(store: InventoryStore, job: Job) -> dict[str, Any]:
    """The job's payload plus the inventory records of its devices (an unknown device is left
    out: the agent's run then reports it, as the CLI would). Raises JobFailed for a
    re-activation that cannot be run as asked (no such device, no license on record)."""
    extra: dict[str, Any] = {}
    devices: list[Device] = []
    if job.kind is JobKind.SCAN:
        scan = ScanPayload.model_validate(job.payload)
        try:
            devices = await select_devices(store, scan.site, scan.devices)
        except InventoryError:
            devices = []
    elif job.kind is JobKind.PROBE:
        found = await store.find_device(ProbePayload.model_validate(job.payload).device)
        devices = [found] if found else []
    elif job.kind is JobKind.REACTIVATION:
        wanted = ReactivationPayload.model_validate(job.payload)
        query = TargetQuery(device_id=wanted.device, feature=wanted.feature)
        try:
            pairs = (await select_targets(store, query)).pairs
        except (InventoryError, NoLicenseOnRecord) as exc:
            raise JobFailed(str(exc)) from exc
        devices = [pair[0] for pair in pairs[:1]]
        extra["features"] = [feature for _, feature in pairs]
    records = [
        d.model_dump(mode="json", exclude={"tls_fingerprint", "ssh_host_key"}) for d in devices
    ]
    return {**job.payload, **extra, DEVICES_KEY: records}


async def store_agent_result(
    store: InventoryStore,
    jobs: JobStore,
    job: Job,
    *,
    lease_id: str,
    state: JobState,
    result: Any,
    error: str | None,
) -> bool:
    """Store an agent's result of `job`, delivered under `lease_id`, once (True), recording what
    it found; False when a result of the job was stored before (a repeated delivery records
    nothing), or when it is a re-activation's whose lease another run has since taken: that run
    resumes the job's operations and reports what became of them."""
    if state is JobState.DONE and job.kind is JobKind.DISCOVERY:
        # Recording comes first here, for the stored result to be `discover`'s document: it
        # adds or updates devices by serial, so a repeated delivery racing this one changes
        # nothing, and only one of them stores its document.
        if job.state in FINISHED_STATES:
            return False
        result = await _record_discovery(store, job, result)
    only = lease_id if job.kind is JobKind.REACTIVATION else None
    stored = await jobs.complete(job.id, state=state, result=result, error=error, lease_id=only)
    if stored and state is JobState.DONE and job.kind is JobKind.SCAN:
        await _record_scan(store, job, result)
    return stored


async def _record_discovery(store: InventoryStore, job: Job, result: Any) -> list[dict[str, Any]]:
    """The agent's probe results recorded as `polyfleet discover` records them; a row that is
    malformed or names an address outside the job's ranges is dropped."""
    payload = DiscoveryPayload.model_validate(job.payload)
    asked = set(expand_targets(payload.cidrs))
    found: list[Discovered] = []
    for row in result if isinstance(result, list) else []:
        try:
            probed = Discovered.model_validate(row)
        except ValidationError:
            continue
        if probed.address in asked:
            found.append(probed)
    return discovery_document(await record_discovered(store, found, payload.site))


async def _record_scan(store: InventoryStore, job: Job, result: Any) -> int:
    """Record a scan job's result from an agent as observations; how many were recorded."""
    if not isinstance(result, list):
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
