"""The re-activation workflow: eligibility → quote → approval → key → apply → verify → confirm.

Each step is a transition of a persisted operation (inventory.reactivation_store), committed
before the next side effect. A rerun after a crash resumes the unfinished operation where it
stopped: a key already claimed is reused, and before applying a key the device is asked whether
the feature is already active (a crash between "device applied" and "we wrote applied" must not
apply the key twice). Confirming is idempotent per operation, so a crash after the confirmation
was appended but before the operation says so still ends with exactly one confirmation.

Identity before side effects: the device at the inventory's address must report the inventory's
serial and MAC before anything is claimed, pinned or applied, and again right before the key is
sent (DHCP moves devices). A run claims the operation it drives, so two runs at once never both
drive one (the second reports it as held by another run), and busy or slow devices get the
scan's jittered retries, each step resuming where it was.

The seam: `Reactivator` does the device I/O (identify, verify, apply, read licenses) and asks a
`Ledger` for everything else, one call per step, with only what the device said:

    Reactivator ──device facts──▶ Ledger ── LocalLedger (controller.reactivation_ledger): the
        (CLI, job worker,                   store itself; the CLI's, the job worker's, and the
         site agent)                        controller's answer to a site agent's call
                                         └─ a site agent's ledger (agent.ledger): the controller
                                            over HTTP (controller.agent_ledger answers it)

So a site agent runs this very state machine next to the device, with its own credentials,
while the operation, the quote and fee, the key and the one signed confirmation stay with the
controller; each step has one implementation, whichever side runs the device I/O.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, model_serializer

from controller.confirmations import canonical_record
from controller.device_session import (
    RETRY_ATTEMPTS,
    RETRY_BACKOFF_S,
    SessionFactory,
    Transports,
    TrustOptions,
    with_retries,
)
from controller.eligibility import Quote
from controller.entitlements import EntitlementError, EntitlementUnavailable
from controller.errors import ControllerError
from controller.scan import identity_mismatch
from device_drivers.base import DeviceDriver, feature_status
from device_drivers.context import Timeouts
from device_drivers.errors import ActivationRejected, DeviceError, ErrorKind
from device_drivers.models import LicenseStatus
from device_drivers.registry import DriverRegistry
from inventory.models import Confirmation, CredentialProfile, Device, License, LicenseState
from inventory.reactivation_store import Operation, OpState, TransitionRefused
from inventory.store import InventoryStore

CRASH_AFTER_ENV = "POLYFLEET_TEST_CRASH_AFTER"
"""Fault-injection seam for the crash-safety test: after committing the named state, the process
kills itself with SIGKILL (as a power cut would). Never set outside tests."""

NEEDS_REACTIVATION = frozenset({LicenseState.EXPIRED, LicenseState.DEACTIVATED})
HELD = "held by another run"
T = TypeVar("T")


class WrongDevice(DeviceError, ControllerError):
    """The device at the inventory's address is another device: nothing may be sent to it."""

    kind = ErrorKind.IDENTITY_MISMATCH

    def __str__(self) -> str:
        return self.message


class LedgerUnavailable(ControllerError):
    """The ledger cannot be asked (a site agent's controller unreachable, or the job's lease
    gone): nothing more was recorded, and the operation resumes on the next run."""


NOTHING_DONE = "nothing was claimed or applied"


def _wrong_device(device: Device, mismatch: str, done: str) -> WrongDevice:
    fix = (
        f"repair the record with `polyfleet discover` or "
        f"`polyfleet inventory add {device.serial} --host ADDRESS`"
    )
    return WrongDevice(f"identity mismatch: {mismatch}; {done}; {fix}", host=device.host)


class Status(StrEnum):
    """How a re-activation request ended, for the technician and for exit codes."""

    CONFIRMED = "confirmed"
    ALREADY_CONFIRMED = "already_confirmed"
    ALREADY_ACTIVE = "already_active"
    INELIGIBLE = "ineligible"
    DECLINED = "declined"
    FAILED = "failed"
    HELD = "held"  # another run is working on this operation
    PLANNED = "planned"  # --dry-run


class Outcome(BaseModel):
    """The result of one device feature's re-activation (or of its dry run). Serialised
    (`model_dump(mode="json")`), it is one entry of `reactivate -o json`: the status, the fee
    as `AMOUNT CURRENCY`, and the whole confirmation record in PRODUCT.md's keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    serial: str
    feature: str
    status: Status
    reason: str | None = None
    operation: str | None = None
    confirmation: Confirmation | None = None
    quote: Quote | None = None
    state_before: LicenseState | None = None
    plan: tuple[str, ...] = ()
    resumable: bool = False

    @property
    def ok(self) -> bool:
        return self.status in (
            Status.CONFIRMED,
            Status.ALREADY_CONFIRMED,
            Status.ALREADY_ACTIVE,
            Status.PLANNED,
        )

    @model_serializer
    def _reactivation(self) -> dict[str, Any]:
        record = self.confirmation
        quote = self.quote
        fee = record.fee if record else (quote.fee if quote else None)
        currency = record.currency if record else (quote.currency if quote else "")
        return {
            "serial": self.serial,
            "feature": self.feature,
            "status": self.status.value,
            "operation": self.operation,
            "confirmation": canonical_record(record) if record else None,
            "fee": f"{fee} {currency}".strip() if fee is not None else None,
            "contract": record.contract if record else (quote.contract if quote else None),
            "reason": self.reason,
            "resumable": self.resumable,
            "plan": list(self.plan),
        }


class Settled(BaseModel):
    """The ledger's answer when there is no operation to drive: what became of the feature
    (confirmed earlier, active already, held by another run, ended by another run)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Status
    reason: str | None = None
    operation: str | None = None
    confirmation: Confirmation | None = None
    resumable: bool = False

    def outcome(self, serial: str, feature: str) -> Outcome:
        return Outcome(serial=serial, feature=feature, **dict(self))


@dataclass(frozen=True, slots=True)
class Survey:
    """What the ledger holds on a device feature before the device is looked at: the
    unfinished operation to resume, else the last confirmed one (None: none)."""

    unfinished: Operation | None
    confirmed: Operation | None


class Ledger(Protocol):
    """The authority a re-activation reports to, one call per step (see the module docstring).
    The device facts are the Reactivator's; the actor, quote, fee, key and confirmation are the
    ledger's own. Every call that changes an operation is one committed transition, refused
    (TransitionRefused) unless the operation is in the state it starts from and the run's claim
    holds; a ledger that cannot be asked raises LedgerUnavailable."""

    async def survey(self, serial: str, feature: str) -> Survey: ...

    async def begin(
        self, device: Device, feature: str, live: LicenseState, before: Operation | None
    ) -> Operation | Settled:
        """No operation was unfinished and the device reports `live`: nothing to do for an
        active feature (confirmed earlier, or active without us), else a new operation
        (claimed), or another run's if one raced us; `before` is the survey's confirmed
        operation (one confirmed since is noticed, and no second key obtained)."""
        ...

    async def resume(self, op: Operation) -> Operation | Settled:
        """Claim an unfinished operation: it (as its last holder left it), or why not."""
        ...

    async def release(self, op: Operation) -> None: ...

    async def quote(self, device: Device, feature: str) -> Quote: ...

    async def judge(
        self, op: Operation, device: Device, state_before: LicenseState, driver: str
    ) -> Operation:
        """requested → eligible | ineligible, by the quote, with the state the device reports."""
        ...

    async def price(self, op: Operation, device: Device) -> Operation:
        """eligible → quoted, with the fee to charge."""
        ...

    async def approve(self, op: Operation, device: Device) -> Operation:
        """quoted → approved, or failed when the approver declines."""
        ...

    async def obtain_key(self, op: Operation, device: Device) -> tuple[Operation, str]:
        """approved → key_obtained, and the key's secret (to send to the device only)."""
        ...

    async def key_secret(self, op: Operation) -> str:
        """The secret of the key an operation obtained earlier (a resumed run applies it)."""
        ...

    async def record(
        self,
        op: Operation,
        to: OpState,
        *,
        detail: str | None = None,
        state_after: LicenseState | None = None,
        reason: str | None = None,
    ) -> Operation:
        """A transition the device decided: applied, verified or failed."""
        ...

    async def confirm(self, op: Operation, device: Device) -> tuple[Operation, Confirmation]:
        """verified → confirmed, with the operation's one confirmation record."""
        ...

    async def observe(self, device: Device, driver: str, licenses: list[LicenseStatus]) -> None:
        """Keep the licenses the device reported when the re-activation was verified."""
        ...

    async def preview(self, device: Device, feature: str) -> list[str]:
        """What the ledger would do for an eligible feature (fee, key source), for a dry run."""
        ...


Approver = Callable[[Device, str, Quote, Decimal], Awaitable[bool]]
"""Asks whether to go ahead: (device, feature, quote, the fee this operation will charge)."""

DEVICE_DECIDES = frozenset({OpState.APPLIED, OpState.VERIFIED, OpState.FAILED})
"""The transitions `Ledger.record` takes: what the device said decides them."""


def _checkpoint(state: OpState) -> None:
    if os.environ.get(CRASH_AFTER_ENV) == state.value:
        os.kill(os.getpid(), signal.SIGKILL)


class Reactivator:
    """Runs re-activations with shared transports, reporting every step to `ledger`."""

    def __init__(
        self,
        store: InventoryStore,
        ledger: Ledger,
        *,
        registry: DriverRegistry,
        transports: Transports,
        profiles: Mapping[str, CredentialProfile],
        timeouts: Timeouts | None = None,
        attempts: int = RETRY_ATTEMPTS,
        backoff: float = RETRY_BACKOFF_S,
        default_credentials: str | None = None,
        trust: TrustOptions | None = None,
    ) -> None:
        self.ledger = ledger
        self.timeouts = timeouts or Timeouts()
        self.attempts = attempts
        self.backoff = backoff
        self.sessions = SessionFactory(
            registry,
            transports,
            profiles,
            default_profile=default_credentials,
            timeouts=self.timeouts,
            trust=trust or TrustOptions(),
            pin_sink=store.pin_first_use,
        )
        self._rng = random.Random()

    async def retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """`call` with the scan's jittered back-off for busy and timeout answers."""
        return await with_retries(call, attempts=self.attempts, backoff=self.backoff, rng=self._rng)

    async def check_identity(
        self, driver: DeviceDriver, device: Device, *, done: str = NOTHING_DONE
    ) -> None:
        """Raise WrongDevice (saying `done`: what happened so far) unless the device at this
        address is the inventory's device."""
        facts = await self.retrying(driver.identify)
        mismatch = identity_mismatch(device, facts)
        if mismatch is not None:
            raise _wrong_device(device, mismatch, done)

    async def reactivate(self, device: Device, feature: str) -> Outcome:
        """Re-activate `feature` on `device`, resuming an unfinished operation if one exists."""
        session = self.sessions.open(device)
        driver = session.driver
        op: Operation | None = None
        fresh: LicenseStatus | None = None
        try:
            try:
                seen = await self.ledger.survey(device.serial, feature)
                op = seen.unfinished
                try:
                    await self.check_identity(driver, device)
                except DeviceError as exc:
                    reason = str(exc) if isinstance(exc, WrongDevice) else f"cannot read: {exc}"
                    resumable = op is not None
                    return Outcome(
                        serial=device.serial, feature=feature, status=Status.FAILED,
                        reason=reason, operation=op.id if op else None, resumable=resumable,
                    )  # fmt: skip
                await session.identity_proven()
                if op is None:
                    try:
                        live = await self.retrying(lambda: driver.verify(feature))
                    except DeviceError as exc:
                        reason = f"cannot read the device: {exc}"
                        return Outcome(
                            serial=device.serial, feature=feature, status=Status.FAILED,
                            reason=reason,
                        )  # fmt: skip
                    start = await self.ledger.begin(device, feature, live.state, seen.confirmed)
                    if isinstance(start, Operation) and start.state is OpState.REQUESTED:
                        _checkpoint(OpState.REQUESTED)
                        fresh = live  # our new operation: judged by the read it began with
                else:
                    start = await self.ledger.resume(op)
                if isinstance(start, Settled):
                    return start.outcome(device.serial, feature)
                op = start
                outcome = await self._run(op, driver, device, feature, fresh)
            except LedgerUnavailable as exc:
                return Outcome(
                    serial=device.serial, feature=feature, status=Status.FAILED, reason=str(exc),
                    operation=op.id if op else None, resumable=True,
                )  # fmt: skip
            if not outcome.resumable:  # finished: its last transition gave up the claim
                op = None
            return outcome
        finally:
            try:
                if op is not None:
                    await self.ledger.release(op)
            finally:
                await driver.close()

    async def _run(
        self,
        op: Operation,
        driver: DeviceDriver,
        device: Device,
        feature: str,
        fresh: LicenseStatus | None = None,
    ) -> Outcome:
        run = _Run(self, op, driver, device, feature, fresh)
        steps: dict[OpState, Callable[[], Awaitable[None]]] = {
            OpState.REQUESTED: run.check_eligibility,
            OpState.ELIGIBLE: run.quote,
            OpState.QUOTED: run.approve,
            OpState.APPROVED: run.obtain_key,
            OpState.KEY_OBTAINED: run.apply,
            OpState.APPLIED: run.verify,
            OpState.VERIFIED: run.confirm,
        }
        try:
            while not run.op.finished:
                await steps[run.op.state]()
        except ActivationRejected as exc:
            await run.fail(exc.message)
        except EntitlementUnavailable as exc:
            return run.outcome(Status.FAILED, reason=str(exc), resumable=True)
        except EntitlementError as exc:
            await run.fail(str(exc))
        except TransitionRefused as exc:  # another run took the operation over (lease expired)
            return run.outcome(Status.HELD, reason=f"{HELD}: {exc}", resumable=True)
        except WrongDevice as exc:  # the device was swapped since this run started
            return run.outcome(Status.FAILED, reason=str(exc), resumable=True)
        except DeviceError as exc:
            # The device did not answer: the operation stays where it is, a rerun resumes it.
            return run.outcome(Status.FAILED, reason=str(exc), resumable=True)
        except LedgerUnavailable as exc:
            return run.outcome(Status.FAILED, reason=str(exc), resumable=True)
        op = run.op
        if run.declined:
            return run.outcome(Status.DECLINED)
        if op.state is OpState.INELIGIBLE:
            return run.outcome(Status.INELIGIBLE)
        if op.state is OpState.CONFIRMED and run.record is not None:
            return run.outcome(Status.CONFIRMED, confirmation=run.record)
        return run.outcome(Status.FAILED)

    async def plan(self, device: Device, feature: str) -> Outcome:
        """What `reactivate` would do, read-only: identity, live state, quote, key source, driver
        call. A swapped device is refused here already, so the plan is never another's."""
        session = self.sessions.open(device)
        driver = session.driver
        try:
            try:
                await self.check_identity(driver, device)
                await session.identity_proven()
                live = await self.retrying(lambda: driver.verify(feature))
            except WrongDevice as exc:
                return Outcome(
                    serial=device.serial, feature=feature, status=Status.FAILED, reason=str(exc)
                )
            except DeviceError as exc:
                return Outcome(
                    serial=device.serial,
                    feature=feature,
                    status=Status.FAILED,
                    reason=f"cannot read: {exc}",
                )
            quote = await self.ledger.quote(device, feature)
            steps = [
                f"device at {device.host} is {device.serial} (serial and MAC match the inventory)",
                f"device reports {feature} {live.state}",
            ]
            unfinished = (await self.ledger.survey(device.serial, feature)).unfinished
            if unfinished is not None:
                steps.append(f"would resume operation {unfinished.id} from {unfinished.state}")
            if live.state is LicenseState.ACTIVE:
                steps.append("nothing to do: the feature is active")
            elif not quote.eligible:
                steps += [f"ineligible: {r.name}: {r.reason}" for r in quote.failed]
            else:
                steps += await self.ledger.preview(device, feature)
                modeled = driver.modeled_calls.get("apply_activation")
                steps.append(
                    f"would apply it with driver {driver.name}"
                    + (f" ({modeled})" if modeled else "")
                )
                steps.append("would verify, then append a confirmation record")
            status = (
                Status.PLANNED
                if quote.eligible or live.state is LicenseState.ACTIVE
                else (Status.INELIGIBLE)
            )
            return Outcome(
                serial=device.serial, feature=feature, status=status, quote=quote,
                state_before=live.state, plan=tuple(steps),
            )  # fmt: skip
        finally:
            await driver.close()


class _Run:
    """One pass of the state machine over one operation: a method per state, each doing its
    device I/O (if any) and then one ledger call. A read of the device is not repeated while
    nothing happened to the device since: a new operation is judged by the read it began with,
    the verification uses the licenses a driver read back after applying, and the licenses
    kept after the confirmation are those the verification read."""

    def __init__(
        self,
        flow: Reactivator,
        op: Operation,
        driver: DeviceDriver,
        device: Device,
        feature: str,
        fresh: LicenseStatus | None = None,
    ) -> None:
        self.flow = flow
        self.ledger = flow.ledger
        self.op = op
        self.driver = driver
        self.device = device
        self.feature = feature
        self.quote_: Quote | None = None
        self.key_secret: str | None = None
        self.record: Confirmation | None = None
        self.declined = False
        self.fresh = fresh
        """The feature's state as this run read it before beginning (nothing done since)."""
        self.read_back: list[LicenseStatus] | None = None
        """Every license the driver read back after this run applied the key."""
        self.verified_licenses: list[LicenseStatus] | None = None
        """Every license as read by this run's verification."""

    async def _quoted(self) -> Quote:
        """The quote, for the outcome's fee and contract (the ledger prices by its own)."""
        if self.quote_ is None:
            self.quote_ = await self.ledger.quote(self.device, self.feature)
        return self.quote_

    def _now(self, op: Operation) -> None:
        """The ledger committed a transition: carry on from it (or die here, in the test)."""
        self.op = op
        _checkpoint(op.state)

    async def fail(self, reason: str, *, state_after: LicenseState | None = None) -> None:
        failed = await self.ledger.record(
            self.op, OpState.FAILED, detail=reason, reason=reason, state_after=state_after
        )
        self._now(failed)

    async def read_state(self) -> LicenseStatus:
        """The feature's state on the device, retried like the scan's reads when it is busy."""
        return await self.flow.retrying(lambda: self.driver.verify(self.feature))

    async def check_eligibility(self) -> None:
        live, self.fresh = self.fresh or await self.read_state(), None
        await self._quoted()
        self._now(await self.ledger.judge(self.op, self.device, live.state, self.driver.name))

    async def quote(self) -> None:
        await self._quoted()
        self._now(await self.ledger.price(self.op, self.device))

    async def approve(self) -> None:
        await self._quoted()
        self._now(await self.ledger.approve(self.op, self.device))
        self.declined = self.op.state is OpState.FAILED

    async def obtain_key(self) -> None:
        op, self.key_secret = await self.ledger.obtain_key(self.op, self.device)
        self._now(op)

    async def apply(self) -> None:
        """Apply the key, unless the device already has the feature active: then an earlier
        run applied it and was stopped before it could record so (never apply twice). The
        device proves its identity once more first: the key goes to the right device only.
        A busy or dropped attempt is retried from the look at the device, never blindly."""
        kept = f"nothing was applied; operation {self.op.id} keeps its key for the rerun"
        await self.flow.check_identity(self.driver, self.device, done=kept)
        await self.flow.retrying(self._apply_once)

    async def _apply_once(self) -> None:
        current = await self.driver.verify(self.feature)
        if current.state is LicenseState.ACTIVE:
            detail = "device already reports it active"
            self._now(await self.ledger.record(self.op, OpState.APPLIED, detail=detail))
            return
        if self.key_secret is None:
            self.key_secret = await self.ledger.key_secret(self.op)
        result = await self.driver.apply_activation(self.feature, self.key_secret)
        self.read_back = result.licenses
        detail = result.detail or "key applied"
        self._now(await self.ledger.record(self.op, OpState.APPLIED, detail=detail))

    async def verify(self) -> None:
        """The feature must read active now: by the driver's read-back after the apply (the
        phone polled until it loaded the key), else by reading the device's licenses."""
        licenses, self.read_back = self.read_back, None
        if licenses is None:
            licenses = await self.flow.retrying(self.driver.read_licenses)
        self.verified_licenses = licenses
        verified = feature_status(licenses, self.feature, self.device.serial)
        if verified.state is not LicenseState.ACTIVE:
            reason = f"after applying the key the device reports {verified.state}"
            await self.fail(reason, state_after=verified.state)
            return
        self._now(await self.ledger.record(self.op, OpState.VERIFIED, state_after=verified.state))

    async def confirm(self) -> None:
        op, self.record = await self.ledger.confirm(self.op, self.device)
        self._now(op)
        await self._record_licenses()

    async def _record_licenses(self) -> None:
        """Report the device's licenses as the verification read them (confirming changes
        nothing on the device), else as read now (a resumed run); best effort."""
        statuses = self.verified_licenses
        if statuses is None:
            try:
                statuses = await self.flow.retrying(self.driver.read_licenses)
            except DeviceError:
                return
        with contextlib.suppress(LedgerUnavailable):
            await self.ledger.observe(self.device, self.driver.name, statuses)

    def outcome(
        self,
        status: Status,
        *,
        reason: str | None = None,
        confirmation: Confirmation | None = None,
        resumable: bool = False,
    ) -> Outcome:
        op = self.op
        before = LicenseState(op.state_before) if op.state_before else None
        return Outcome(
            serial=op.serial,
            feature=op.feature,
            status=status,
            reason=reason or op.reason,
            operation=op.id,
            confirmation=confirmation,
            quote=self.quote_,
            state_before=before,
            resumable=resumable,
        )


def features_to_reactivate(licenses: list[License]) -> list[str]:
    """The features of a device whose last observed state calls for a re-activation."""
    return sorted(lic.feature for lic in licenses if lic.state in NEEDS_REACTIVATION)
