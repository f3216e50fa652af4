"""Running one job: its payload through the same use case the CLI calls, its result the same JSON
the CLI prints with `-o json`. The controller's job worker and the site agents both run jobs
here, so a job cannot do anything the CLI would not.

A re-activation job drives the persisted state machine of `controller.reactivation` (one
operation per device feature, its transitions committed before each side effect, exactly one
confirmation): a job run again after a crash resumes the operation instead of repeating it.
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
from controller.reactivation import Outcome, Reactivator, Status
from controller.scan import ScanOptions
from controller.usecases.discover import DiscoverRequest, discover
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
    timeout: float = Field(default=5.0, gt=0, le=120)


@dataclass(frozen=True, slots=True)
class ReactivationSetup:
    """What only the controller holds for re-activations: the policy and the entitlement
    provider (keys are in its store)."""

    policy: Policy
    provider: EntitlementProvider | None


async def run_job(
    store: InventoryStore,
    job: Job,
    *,
    reactivation: ReactivationSetup | None = None,
    on_progress: Progress | None = None,
    profiles: Mapping[str, CredentialProfile] | None = None,
) -> Any:
    """The job's result JSON; raises JobFailed when it cannot run at all. Per-device failures
    are part of the result, as in the CLI's output. `profiles` replaces the store's
    credentials (a site agent's own file)."""
    try:
        if job.kind is JobKind.SCAN:
            scan = ScanPayload.model_validate(job.payload)
            return await _scan(store, scan, on_progress, profiles)
        if job.kind is JobKind.PROBE:
            return await _probe(store, ProbePayload.model_validate(job.payload), profiles)
        if job.kind is JobKind.DISCOVERY:
            return await _discover(store, DiscoveryPayload.model_validate(job.payload))
        if reactivation is None:
            raise JobFailed("re-activations run at the controller, which holds keys and policy")
        payload = ReactivationPayload.model_validate(job.payload)
        actor = job.created_by or "api"
        return await _reactivate(store, payload, reactivation, actor, on_progress)
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


async def _discover(store: InventoryStore, payload: DiscoveryPayload) -> Any:
    request = DiscoverRequest(
        addresses=expand_targets(payload.cidrs),
        site=payload.site,
        credentials=payload.credentials,
        timeout=payload.timeout,
    )
    results = await discover(store, request)
    return [r.model_dump(exclude={"warning"}) for r in results]


async def _reactivate(
    store: InventoryStore,
    payload: ReactivationPayload,
    setup: ReactivationSetup,
    actor: str,
    on_progress: Progress | None,
) -> Any:
    targets = await select_targets(
        store, TargetQuery(device_id=payload.device, feature=payload.feature)
    )
    session = SessionSettings(
        actor=actor,
        concurrency=1,
        timeout=payload.timeout,
        credentials=payload.credentials,
        ca_bundle=payload.ca_bundle,
        insecure=payload.insecure,
    )
    counter = _Counter(on_progress)
    counter.start(len(targets.pairs))

    async def step(_: object) -> None:
        counter.step()

    devices = [d for d, _ in targets.pairs]
    async with reactivator(
        store, devices, session, policy=setup.policy, provider=setup.provider
    ) as flow:
        outcomes = await run_batch(flow, targets.pairs, concurrency=1)
        outcomes = await _after_holders(flow, targets.pairs, outcomes)
        for _ in outcomes:
            await step(None)
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


AGENT_KINDS = frozenset({JobKind.SCAN, JobKind.PROBE})
"""What a site agent runs: device reads. Discoveries write new devices and re-activations need
the keys, policy and signing key, all of which only the controller's store holds."""
