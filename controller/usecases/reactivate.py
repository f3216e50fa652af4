"""Re-activation use cases: which (device, feature) pairs to re-activate, and the batch run.

`reactivate()` is the whole of `polyfleet reactivate` (select, plan or ask, run the batch); its
parts (`select_targets`, `reactivator`, `run_batch`) are what a job composes differently."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict

from controller.device_session import TrustOptions, open_transports
from controller.entitlements import EntitlementProvider
from controller.errors import ControllerError
from controller.fanout import fan_out
from controller.policy import Policy
from controller.reactivation import (
    Approver,
    Ledger,
    Outcome,
    Reactivator,
    Status,
    features_to_reactivate,
)
from controller.reactivation_ledger import LocalLedger
from controller.usecases.scan import profiles_for
from device_drivers.context import Timeouts
from device_drivers.registry import DriverRegistry
from inventory.models import CredentialProfile, Device
from inventory.observation_store import DeviceStatus, ObservationStore
from inventory.store import InventoryStore

log = logging.getLogger("polyfleet.reactivate")


class NoLicenseOnRecord(ControllerError, LookupError):
    """A single device was named without a feature and no license of it is on record."""


class TargetQuery(BaseModel):
    """Which features to re-activate: one device (`device_id`) or every expired one."""

    model_config = ConfigDict(frozen=True)

    device_id: str | None = None
    feature: str | None = None
    site: str | None = None
    """Only with every expired device: only this site."""


class Targets(BaseModel):
    """The (device, feature) pairs to re-activate, and the devices that could not be judged."""

    pairs: list[tuple[Device, str]]
    unread: list[str] = []
    """Networked devices whose license state was never read: the batch names them instead of
    passing over them in silence."""


class SessionSettings(BaseModel):
    """How a re-activation run reaches its devices: as a scan does (profiles, trust, timeouts)."""

    model_config = ConfigDict(frozen=True)

    concurrency: int = 16
    timeout: float = 5.0
    """Per request (s); SSH gets at least 10 s."""
    credentials: str | None = None
    """The profile of devices that name none."""
    ca_bundle: str | None = None
    insecure: bool = False


class ReactivationRequest(BaseModel):
    """One run of `reactivate`: which features, how devices are reached, whether to act."""

    model_config = ConfigDict(frozen=True)

    query: TargetQuery
    session: SessionSettings
    dry_run: bool = False
    """Plan every target and change nothing."""


class ReactivationRun(BaseModel):
    """What a run did: an outcome per target (plans on a dry run), and the devices it could not
    judge. `declined`: the reviewer said no to the batch's plan, so nothing was done."""

    outcomes: list[Outcome] = []
    unread: list[str] = []
    declined: bool = False


PlanReview = Callable[[Sequence[Outcome]], Awaitable[bool]]
"""Shown every target's plan before a batch starts; False: do nothing."""


async def reactivate(
    store: InventoryStore,
    request: ReactivationRequest,
    *,
    policy: Policy,
    provider: EntitlementProvider | None,
    actor: str,
    approve: Approver | None = None,
    review: PlanReview | None = None,
    on_start: Callable[[int], None] | None = None,
    on_outcome: Callable[[Outcome], Awaitable[None]] | None = None,
) -> ReactivationRun:
    """Select the targets, then plan them (dry run), or have `review` pass the batch's plan and
    run it, recorded in the store's ledger as done by `actor`. `approve` asks about each device
    before its key is applied, `on_start` is told the batch's size and `on_outcome` each result
    as it comes. NoLicenseOnRecord as select_targets."""
    selected = await select_targets(store, request.query)
    pairs = selected.pairs
    devices = [d for d, _ in pairs]
    ledger = LocalLedger(store, policy=policy, provider=provider, actor=actor, approve=approve)
    await ledger.prepare(pairs)
    async with reactivator(store, devices, request.session, ledger) as flow:
        if request.dry_run:
            plans = [await flow.plan(d, f) for d, f in pairs]
            return ReactivationRun(outcomes=plans, unread=selected.unread)
        if review is not None and pairs:
            plans = [await flow.plan(d, f) for d, f in pairs]
            if not await review(plans):
                return ReactivationRun(unread=selected.unread, declined=True)
        if on_start is not None:
            on_start(len(pairs))
        async with ledger.observations_batched():
            outcomes = await run_batch(
                flow, pairs, concurrency=request.session.concurrency, on_outcome=on_outcome
            )
    return ReactivationRun(outcomes=outcomes, unread=selected.unread)


@asynccontextmanager
async def reactivator(
    store: InventoryStore,
    devices: Sequence[Device],
    settings: SessionSettings,
    ledger: Ledger,
    *,
    profiles: Mapping[str, CredentialProfile] | None = None,
) -> AsyncIterator[Reactivator]:
    """A Reactivator for `devices` reporting to `ledger` (controller.reactivation_ledger's
    LocalLedger, or a site agent's), with shared transports, closed on exit (also on
    cancellation: every operation stays at its last committed state). `profiles` replaces the
    store's credentials (a site agent holds its own)."""
    if profiles is None:
        profiles = await profiles_for(store, devices, settings.credentials)
    timeout = settings.timeout
    async with open_transports(settings.concurrency) as transports:
        yield Reactivator(
            store,
            ledger,
            registry=DriverRegistry(),
            transports=transports,
            profiles=profiles,
            timeouts=Timeouts(snmp=timeout, http=timeout, ssh=max(timeout, 10.0)),
            default_credentials=settings.credentials,
            trust=TrustOptions(ca_bundle=settings.ca_bundle, insecure=settings.insecure),
        )


async def select_targets(store: InventoryStore, query: TargetQuery) -> Targets:
    """The named feature, else those last seen expired/deactivated. Raises NoLicenseOnRecord
    for a device with no license on record and no feature named."""
    observations = ObservationStore(store.engine)
    if query.device_id is not None:
        device = await store.get_device(query.device_id)
        if query.feature:
            return Targets(pairs=[(device, query.feature)])
        licenses = await observations.licenses_of(device.serial)
        # Nothing expired on record: ask about every known feature, so a repeated command
        # answers with the existing confirmations instead of doing anything twice.
        features = features_to_reactivate(licenses) or sorted(lic.feature for lic in licenses)
        if not features:
            raise NoLicenseOnRecord(
                f"no license of device {device.serial} on record "
                "(run `polyfleet scan --id` first, or name the feature with --feature)"
            )
        return Targets(pairs=[(device, f) for f in features])
    devices = {d.serial: d for d in await store.list_devices(site=query.site)}
    statuses = await observations.statuses(list(devices))
    unread = [
        serial
        for serial, device in sorted(devices.items())
        if device.host and license_state_unknown(statuses.get(serial))
    ]
    pairs = [
        (devices[serial], f)
        for serial, status in sorted(statuses.items())
        for f in features_to_reactivate(status.licenses)
        if query.feature is None or f == query.feature
    ]
    return Targets(pairs=pairs, unread=unread)


def license_state_unknown(status: DeviceStatus | None) -> bool:
    """Never observed, or observed without its license state read (issue 10's license_read;
    an observation from before it was recorded counts as unread when it lists nothing)."""
    if status is None:
        return True
    if status.license_read is not None:
        return not status.license_read.ok
    return not status.licenses


async def run_batch(
    flow: Reactivator,
    targets: Sequence[tuple[Device, str]],
    *,
    concurrency: int,
    on_outcome: Callable[[Outcome], Awaitable[None]] | None = None,
) -> list[Outcome]:
    """Bounded concurrency over devices; one operation at a time per device. Whatever happens to
    one device is that device's result: it never stops the batch nor loses another's report.
    A cancelled batch leaves each operation at its last committed state, for a rerun to resume."""

    async def one(target: tuple[Device, str]) -> Outcome:
        device, feature = target
        return await flow.reactivate(device, feature)

    return await fan_out(
        targets,
        one,
        on_error=_unexpected,
        concurrency=concurrency,
        one_at_a_time=lambda target: target[0].serial,
        on_result=on_outcome,
    )


def _unexpected(target: tuple[Device, str], exc: Exception) -> Outcome:
    """An unexpected error as a failed result in one line (its traceback only in debug
    logging), so the batch and the other devices' reports go on."""
    device, feature = target
    log.debug("re-activating %s %s failed", device.serial, feature, exc_info=exc)
    reason = f"unexpected error: {type(exc).__name__}: {exc}".splitlines()[0]
    return Outcome(
        serial=device.serial, feature=feature, status=Status.FAILED, reason=reason, resumable=True
    )


def outcome_row(outcome: Outcome) -> dict[str, Any]:
    """One outcome as a table or CSV row: its JSON with the confirmation by its number."""
    record = outcome.confirmation
    return {**outcome.model_dump(mode="json"), "confirmation": record.number if record else None}


def outcomes_json(outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    """`reactivate -o json`'s document (also a re-activation job's result)."""
    return [o.model_dump(mode="json") for o in outcomes]
