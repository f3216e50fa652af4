"""Running a claimed job at the site, with the controller's use cases and the same drivers.

The agent keeps a small inventory store of its own (a SQLite file next to its spool): the
controller hands it the records of a job's devices, the scan records its observations and the
first-use TLS/SSH pins there, as a local `polyfleet scan` would, and the pins are enforced on
the next job. Device credentials come from the agent's own file and stay in its memory.

A re-activation runs the controller's state machine here with the job's ledger (the controller
over HTTP, agent.ledger); a discovery probes with the agent's profiles and returns what it
found, for the controller to record.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from controller.agent_jobs import DEVICES_KEY
from controller.jobs import AGENT_KINDS, JobFailed, Progress, run_job
from controller.reactivation import Ledger
from inventory.job_store import Job, JobKind, JobState
from inventory.models import CredentialProfile, Device
from inventory.store import InventoryStore

Outcome = tuple[JobState, Any, str | None]
"""(done | failed, result JSON, error)"""


class JobRunner:
    """Runs claimed jobs (the agent may run several at once) against its local store."""

    def __init__(self, store: InventoryStore, profiles: Mapping[str, CredentialProfile]) -> None:
        self.store = store
        self.profiles = profiles

    async def run(
        self,
        claimed: dict[str, Any],
        on_progress: Progress | None = None,
        ledger: Ledger | None = None,
    ) -> Outcome:
        """Run a claimed job; a re-activation reports to `ledger`."""
        try:
            kind = JobKind(claimed["kind"])
        except ValueError:
            return JobState.FAILED, None, f"this agent does not run {claimed['kind']!r} jobs"
        if kind not in AGENT_KINDS:
            return JobState.FAILED, None, f"this agent does not run {kind.value} jobs"
        payload = dict(claimed.get("payload") or {})
        try:
            devices = [Device.model_validate(r) for r in payload.pop(DEVICES_KEY, [])]
        except ValidationError as exc:
            return JobState.FAILED, None, f"invalid device record from the controller: {exc}"
        await self.store.upsert_devices(devices)
        if kind is JobKind.SCAN:
            if not devices:
                return JobState.DONE, [], None  # nothing of this site to scan
            # exactly the devices handed over, not whatever else this store still holds
            payload = {**payload, "site": None, "devices": [d.serial for d in devices]}
        job = Job(
            id=str(claimed["id"]),
            kind=kind,
            site=None,
            payload=payload,
            state=JobState.RUNNING,
            created_at=datetime.now(UTC),
        )
        try:
            result = await run_job(
                self.store, job, ledger=ledger, on_progress=on_progress, profiles=self.profiles
            )
        except JobFailed as exc:
            return JobState.FAILED, None, str(exc)
        return JobState.DONE, result, None
