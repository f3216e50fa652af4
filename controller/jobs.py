"""Running one job: its payload through the same use case the CLI calls, its result the same JSON
the CLI prints with `-o json`. The controller's job worker and the site agents both run jobs
here, so a job cannot do anything the CLI would not.

A re-activation job drives the persisted state machine of `controller.reactivation` (one
operation per device feature, its transitions committed before each side effect, exactly one
confirmation): a job run again after a crash resumes the operation instead of repeating it.
It reports to the `Ledger` it is given: the controller's store at the controller, the
controller over HTTP at a site agent, which does the device I/O with its own credentials.

A discovery job at a site agent probes with the agent's credentials and returns what it found
(`Discovered` rows); the controller records them on delivery (controller.agent_jobs), with the
same use case as `polyfleet discover`, so the job's stored result is the CLI's document there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.discovery import DiscoveryError, expand_targets
from controller.entitlements import EntitlementProvider
from controller.errors import ControllerError
from controller.policy import Policy
from controller.reactivation import Ledger, Outcome, Reactivator, Status
from controller.reactivation_ledger import LocalLedger
from controller.scan import ScanOptions
from controller.usecases.discover import (
    DiscoverRequest,
    discover,
    discovery_document,
    probe_addresses,
)
from controller.usecases.probe import ProbeRequest, probe
from controller.usecases.reactivate import (
    NoLicenseOnRecord,
    SessionSettings,
    TargetQuery,
    outcomes_json,
    reactivator,
    run_batch,
    select_targets,
)
from controller.usecases.scan import ScanRequest, run_scan
from device_drivers.context import Timeouts
from device_drivers.registry import DriverRegistryError
from inventory.errors import InventoryError
from inventory.job_store import Job, JobKind
from inventory.models import CredentialProfile, Device
from inventory.reactivation_store import CLAIM_LEASE
from inventory.store import InventoryStore

Progress = Callable[[int, int], None]
"""Hears (done, total) as a job advances."""


class JobFailed(ControllerError):
    """The job cannot be run as asked (unknown device, bad payload, missing profile): its
    message is the job's `error`."""


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    credentials: str | None = None
    timeout: float = Field(default=2.0, gt=0, le=600)
    ca_bundle: str | None = None
    insecure: bool = False


class ScanPayload(_Payload):
    site: str | None = None
    devices: list[str] | None = None
    concurrency: int = Field(default=256, ge=1, le=4096)


class ProbePayload(_Payload):
    device: str
    timeout: float = Field(default=5.0, gt=0, le=600)


class DiscoveryPayload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    cidrs: list[str] = Field(min_length=1)
    site: str | None = None
    credentials: list[str] = Field(default_factory=list)
    timeout: float = Field(default=1.0, gt=0, le=60)


class ReactivationPayload(_Payload):
    device: str
    feature: str | None = None
    features: list[str] | None = None
    """The features to re-activate, chosen by the controller when it hands the job to a site
    agent (whose store holds no license observations to choose by)."""
    timeout: float = Field(default=5.0, gt=0, le=120)


def job_actor(job: Job) -> str:
    """Who a job's re-activations are recorded as done by: whoever asked for the job."""
    return job.created_by or "api"


@dataclass(frozen=True, slots=True)
class ReactivationSetup:
    """What only the controller holds for re-activations: the policy and the entitlement
    provider (keys and the confirmation chain are in its store)."""

    policy: Policy
    provider: EntitlementProvider | None

    def ledger(self, store: InventoryStore, job: Job, *, owner: str | None = None) -> LocalLedger:
        """The ledger of `job`'s re-activations in `store`, claiming as `owner` (default: this
        process's run)."""
        return LocalLedger(
            store, policy=self.policy, provider=self.provider, actor=job_actor(job), owner=owner
        )


async def run_job(
    store: InventoryStore,
    job: Job,
    *,
    ledger: Ledger | None = None,
    on_progress: Progress | None = None,
    profiles: Mapping[str, CredentialProfile] | None = None,
) -> Any:
    """The job's result JSON; raises JobFailed when it cannot run at all. Per-device failures
    are part of the result, as in the CLI's output. `profiles` replaces the store's
    credentials (a site agent's own file); `ledger` is where a re-activation reports."""
    try:
        if job.kind is JobKind.SCAN:
            scan = ScanPayload.model_validate(job.payload)
            return await _scan(store, scan, on_progress, profiles)
        if job.kind is JobKind.PROBE:
            return await _probe(store, ProbePayload.model_validate(job.payload), profiles)
        if job.kind is JobKind.DISCOVERY:
            discovery = DiscoveryPayload.model_validate(job.payload)
            return await _discover(store, discovery, profiles)
        if ledger is None:
            raise JobFailed("a re-activation job needs the controller's ledger to report to")
        payload = ReactivationPayload.model_validate(job.payload)
        return await _reactivate(store, payload, ledger, on_progress, profiles)
    except ValidationError as exc:
        raise JobFailed(f"invalid {job.kind.value} job payload: {exc.errors()[0]['msg']}") from None
    except (InventoryError, DiscoveryError, DriverRegistryError, NoLicenseOnRecord) as exc:
        raise JobFailed(str(exc)) from exc


def _timeouts(payload: _Payload, ssh_floor: float) -> Timeouts:
    return Timeouts(snmp=payload.timeout, http=payload.timeout, ssh=max(payload.timeout, ssh_floor))


async def _scan(
    store: InventoryStore,
    payload: ScanPayload,
    on_progress: Progress | None,
    profiles: Mapping[str, CredentialProfile] | None,
) -> Any:
    request = ScanRequest(
        site=payload.site,
        ids=payload.devices,
        credentials=payload.credentials,
        options=ScanOptions(
            concurrency=payload.concurrency,
            timeouts=_timeouts(payload, 5.0),
            ca_bundle=payload.ca_bundle,
            insecure=payload.insecure,
        ),
    )
    counter = _Counter(on_progress)
    results = await run_scan(
        store,
        request,
        on_selected=counter.start,
        on_result=lambda _r: counter.step(),
        profiles=profiles,
    )
    return [r.model_dump(mode="json") for r in results]


class _Counter:
    """Turns "n selected" and "one more done" into (done, total) progress calls."""

    def __init__(self, on_progress: Progress | None) -> None:
        self.on_progress = on_progress
        self.done = self.total = 0

    def start(self, total: int) -> None:
        self.total = total
        self._tell()

    def step(self) -> None:
        self.done += 1
        self._tell()

    def _tell(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.done, self.total)


async def _probe(
    store: InventoryStore,
    payload: ProbePayload,
    profiles: Mapping[str, CredentialProfile] | None,
) -> Any:
    request = ProbeRequest(
        device_id=payload.device,
        timeout=payload.timeout,
        credentials=payload.credentials,
        ca_bundle=payload.ca_bundle,
        insecure=payload.insecure,
    )
    report = await probe(store, request, profiles=profiles)
    return report.model_dump(mode="json")


async def _discover(
    store: InventoryStore,
    payload: DiscoveryPayload,
    profiles: Mapping[str, CredentialProfile] | None,
) -> Any:
    """At the controller, `polyfleet discover`'s document; at a site agent (`profiles`: its
    file; every profile of it unless the job names some), the probe results to record."""
    request = DiscoverRequest(
        addresses=expand_targets(payload.cidrs),
        site=payload.site,
        credentials=payload.credentials,
        timeout=payload.timeout,
    )
    if profiles is None:
        return discovery_document(await discover(store, request))
    missing = [name for name in payload.credentials if name not in profiles]
    if missing:
        raise JobFailed(f"no credential profile {missing[0]!r} in this agent's credentials file")
    chosen = [profiles[name] for name in payload.credentials] or list(profiles.values())
    found = await probe_addresses(request, chosen)
    return [r.model_dump(mode="json") for r in found]


async def _reactivate(
    store: InventoryStore,
    payload: ReactivationPayload,
    ledger: Ledger,
    on_progress: Progress | None,
    profiles: Mapping[str, CredentialProfile] | None,
) -> Any:
    if payload.features is not None:
        device = await store.get_device(payload.device)
        pairs = [(device, feature) for feature in payload.features]
    else:
        query = TargetQuery(device_id=payload.device, feature=payload.feature)
        pairs = (await select_targets(store, query)).pairs
    session = SessionSettings(
        concurrency=1,
        timeout=payload.timeout,
        credentials=payload.credentials,
        ca_bundle=payload.ca_bundle,
        insecure=payload.insecure,
    )
    counter = _Counter(on_progress)
    counter.start(len(pairs))
    devices = [d for d, _ in pairs]
    async with reactivator(store, devices, session, ledger, profiles=profiles) as flow:
        outcomes = await run_batch(flow, pairs, concurrency=1)
        outcomes = await _after_holders(flow, pairs, outcomes)
        for _ in outcomes:
            counter.step()
    return outcomes_json(outcomes)


HELD_RETRY_S = (0.5, 1.0, 2.0, 5.0)
"""Waits between looks at an operation another run holds (the last one repeats)."""


async def _after_holders(
    flow: Reactivator, pairs: Sequence[tuple[Device, str]], outcomes: list[Outcome]
) -> list[Outcome]:
    """Ask again, until its holder lets go, about each operation another run held: a job must
    end with what became of the feature (confirmed, already confirmed), not with "held". The
    holder's claim ends with it (at the latest when its lease runs out, CLAIM_LEASE)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CLAIM_LEASE.total_seconds() + 60
    attempt = 0
    while loop.time() < deadline:
        held = [i for i, o in enumerate(outcomes) if o.status is Status.HELD]
        if not held:
            break
        await asyncio.sleep(HELD_RETRY_S[min(attempt, len(HELD_RETRY_S) - 1)])
        attempt += 1
        again = await run_batch(flow, [pairs[i] for i in held], concurrency=1)
        for index, outcome in zip(held, again, strict=True):
            outcomes[index] = outcome
    return outcomes


AGENT_KINDS = frozenset(JobKind)
"""What a site agent runs: every kind. Scans and probes read devices; a discovery's findings
are recorded by the controller; a re-activation reports each step to the controller's ledger,
which keeps the keys, the policy and the signing key."""
