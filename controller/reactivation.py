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
"""

from __future__ import annotations

import os
import random
import signal
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, model_serializer

from controller.confirmations import canonical_record, confirmation_store
from controller.device_session import (
    RETRY_ATTEMPTS,
    RETRY_BACKOFF_S,
    SessionFactory,
    Transports,
    TrustOptions,
    with_retries,
)
from controller.eligibility import Quote
from controller.entitlements import (
    EntitlementError,
    EntitlementProvider,
    EntitlementUnavailable,
    resolve_key,
)
from controller.errors import ControllerError
from controller.policy import Policy
from controller.quoting import quote_device
from controller.scan import identity_mismatch
from device_drivers.base import DeviceDriver
from device_drivers.context import Timeouts
from device_drivers.errors import ActivationRejected, DeviceError, ErrorKind
from device_drivers.models import LicenseStatus
from device_drivers.registry import DriverRegistry
from inventory.confirmation_store import ConfirmationDraft
from inventory.key_store import KeyStore
from inventory.models import Confirmation, CredentialProfile, Device, License, LicenseState
from inventory.observation_store import DeviceObservation, ObservationStore
from inventory.reactivation_store import (
    Operation,
    OperationStore,
    OpState,
    TransitionRefused,
    claim_owner,
)
from inventory.secret_box import SecretBox
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


Approver = Callable[[Device, str, Quote, Decimal], Awaitable[bool]]
"""Asks whether to go ahead: (device, feature, quote, the fee this operation will charge)."""


def _checkpoint(state: OpState) -> None:
    if os.environ.get(CRASH_AFTER_ENV) == state.value:
        os.kill(os.getpid(), signal.SIGKILL)


class Reactivator:
    """Runs re-activations for one actor with shared transports and stores."""

    def __init__(
        self,
        store: InventoryStore,
        *,
        registry: DriverRegistry,
        transports: Transports,
        profiles: Mapping[str, CredentialProfile],
        policy: Policy,
        provider: EntitlementProvider | None,
        actor: str,
        approve: Approver | None = None,
        timeouts: Timeouts | None = None,
        today: Callable[[], date] | None = None,
        attempts: int = RETRY_ATTEMPTS,
        backoff: float = RETRY_BACKOFF_S,
        default_credentials: str | None = None,
        trust: TrustOptions | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.transports = transports
        self.profiles = profiles
        self.policy = policy
        self.provider = provider
        self.actor = actor
        self.approve = approve
        self.timeouts = timeouts or Timeouts()
        self.today = today or (lambda: datetime.now(UTC).date())
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
        self.owner = claim_owner(uuid.uuid4().hex[:12])
        engine = store.engine
        self.ops = OperationStore(engine, owner=self.owner)
        self.keys = KeyStore(engine, SecretBox.from_environment())
        self.confirmations = confirmation_store(engine)
        self.observations = ObservationStore(engine, keep=store.observation_history)

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

    async def _advance(
        self, op: Operation, to: OpState, *, detail: str | None = None, **fields: object
    ) -> Operation:
        op = await self.ops.advance(op, to, detail=detail, **fields)
        _checkpoint(to)
        return op

    async def reactivate(self, device: Device, feature: str) -> Outcome:
        """Re-activate `feature` on `device`, resuming an unfinished operation if one exists."""
        session = self.sessions.open(device)
        driver = session.driver
        op: Operation | None = None
        try:
            op = await self.ops.unfinished(device.serial, feature)
            try:
                await self.check_identity(driver, device)
            except DeviceError as exc:
                reason = str(exc) if isinstance(exc, WrongDevice) else f"cannot read: {exc}"
                resumable = op is not None
                return Outcome(
                    serial=device.serial, feature=feature, status=Status.FAILED, reason=reason,
                    operation=op.id if op else None, resumable=resumable,
                )  # fmt: skip
            await session.identity_proven()
            created = False
            if op is None:
                confirmed = await self.ops.latest(device.serial, feature, OpState.CONFIRMED)
                early = await self._already_done(driver, device, feature, confirmed)
                if early is not None:
                    return early
                op, created = await self.ops.open(device.serial, feature, self.actor)
                if created:
                    _checkpoint(OpState.REQUESTED)
                    raced = await self._confirmed_meanwhile(op, confirmed)
                    if raced is not None:
                        return raced
            if not created:
                held_by = await self.ops.claim(op.id)
                if held_by is not None:
                    return Outcome(
                        serial=device.serial, feature=feature, status=Status.HELD,
                        reason=f"{HELD} ({held_by})", operation=op.id, resumable=True,
                    )  # fmt: skip
                op = await self.ops.get(op.id)  # as the previous holder left it
                if op.finished:
                    return await self._finished_elsewhere(op)
            outcome = await self._run(op, driver, device, feature)
            if not outcome.resumable:  # finished: its last transition gave up the claim
                op = None
            return outcome
        finally:
            try:
                if op is not None:
                    await self.ops.release(op.id)
            finally:
                await driver.close()

    async def _confirmed_meanwhile(self, op: Operation, before: Operation | None) -> Outcome | None:
        """Another run confirmed the feature between our look at the device and our new
        operation: withdraw ours (it did nothing yet) rather than obtain a second key. Our
        operation was created, so theirs had finished by then: this read cannot miss it."""
        latest = await self.ops.latest(op.serial, op.feature, OpState.CONFIRMED)
        if latest is None or (before is not None and latest.id == before.id):
            return None
        await self.ops.withdraw(op.id)
        return await self._finished_elsewhere(latest)

    async def _finished_elsewhere(self, op: Operation) -> Outcome:
        """The outcome of an operation another run finished while we waited for it."""
        if op.state is OpState.CONFIRMED and op.confirmation:
            record = await self.confirmations.get(op.confirmation)
            return Outcome(
                serial=op.serial, feature=op.feature, status=Status.ALREADY_CONFIRMED,
                reason=f"confirmed by another run as {record.number}",
                operation=op.id, confirmation=record,
            )  # fmt: skip
        status = Status.INELIGIBLE if op.state is OpState.INELIGIBLE else Status.FAILED
        reason = f"another run ended it: {op.reason or op.state}"
        return Outcome(
            serial=op.serial, feature=op.feature, status=status, reason=reason, operation=op.id
        )

    async def _already_done(
        self, driver: DeviceDriver, device: Device, feature: str, previous: Operation | None
    ) -> Outcome | None:
        """Idempotency: an active feature needs no new operation (nor a second key)."""
        try:
            live = await self.retrying(lambda: driver.verify(feature))
        except DeviceError as exc:
            return Outcome(
                serial=device.serial,
                feature=feature,
                status=Status.FAILED,
                reason=f"cannot read the device: {exc}",
            )
        if live.state is not LicenseState.ACTIVE:
            return None
        if previous is not None and previous.confirmation:
            record = await self.confirmations.get(previous.confirmation)
            return Outcome(
                serial=device.serial, feature=feature, status=Status.ALREADY_CONFIRMED,
                reason=f"already active; confirmed earlier as {record.number}",
                operation=previous.id, confirmation=record,
            )  # fmt: skip
        return Outcome(
            serial=device.serial,
            feature=feature,
            status=Status.ALREADY_ACTIVE,
            reason="feature is active: nothing to do",
        )

    async def _run(
        self, op: Operation, driver: DeviceDriver, device: Device, feature: str
    ) -> Outcome:
        run = _Run(self, op, driver, device, feature)
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
        op = run.op
        if run.declined:
            return run.outcome(Status.DECLINED)
        if op.state is OpState.INELIGIBLE:
            return run.outcome(Status.INELIGIBLE)
        if op.state is OpState.CONFIRMED and op.confirmation:
            record = run.record or await self.confirmations.get(op.confirmation)
            status = Status.CONFIRMED if run.record else Status.ALREADY_CONFIRMED
            return run.outcome(status, confirmation=record)
        return run.outcome(Status.FAILED)

    async def _quote(self, device: Device, feature: str) -> Quote:
        return await quote_device(
            self.store.engine, device, self.policy, self.today(), feature=feature
        )

    async def _fee(self, quote: Quote) -> tuple[Decimal, str | None]:
        """The fee to charge; a per-term fee is charged once per contract term."""
        fee = quote.fee if quote.fee is not None else Decimal("0.00")
        if quote.pricing is not None and quote.pricing.value == "per-term" and quote.contract:
            charged = await self.confirmations.charged_for_contract(quote.contract)
            if charged is not None:
                return Decimal("0.00"), f"per-term fee already charged on {charged}"
        return fee, None

    def _draft(self, op: Operation, device: Device, *, per_term: bool) -> ConfirmationDraft:
        if not (op.key_ref and op.state_before and op.state_after and op.driver):
            raise TransitionRefused(f"operation {op.id} reached verified without its key or states")
        return ConfirmationDraft(
            reactivation_id=op.id,
            serial=device.serial,
            mac=device.mac,
            feature=op.feature,
            state_before=LicenseState(op.state_before),
            state_after=LicenseState(op.state_after),
            key_ref=op.key_ref,
            driver=op.driver,
            fee=op.fee if op.fee is not None else Decimal("0.00"),
            currency=op.currency or self.policy.currency,
            contract=op.contract,
            requested_at=op.requested_at,
            actor=op.actor,
            fee_once_per_contract=per_term,
        )

    async def _record_licenses(self, driver: DeviceDriver, device: Device) -> None:
        """Store the device's licenses as read after the confirmation (best effort)."""
        try:
            statuses = await self.retrying(driver.read_licenses)
        except DeviceError:
            return
        now = datetime.now(UTC)
        await self.observations.record([_observation(device, driver.name, statuses, now)])

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
            quote = await self._quote(device, feature)
            steps = [
                f"device at {device.host} is {device.serial} (serial and MAC match the inventory)",
                f"device reports {feature} {live.state}",
            ]
            unfinished = await self.ops.unfinished(device.serial, feature)
            if unfinished is not None:
                steps.append(f"would resume operation {unfinished.id} from {unfinished.state}")
            if live.state is LicenseState.ACTIVE:
                steps.append("nothing to do: the feature is active")
            elif not quote.eligible:
                steps += [f"ineligible: {r.name}: {r.reason}" for r in quote.failed]
            else:
                fee, note = await self._fee(quote)
                steps.append(
                    f"fee {fee} {quote.currency} ({quote.pricing}), contract {quote.contract}"
                    + (f" — {note}" if note else "")
                )
                unused = await self.keys.next_unused(device.serial, feature)
                if unused is not None:
                    steps.append(f"would use imported key {unused.key_ref}")
                elif self.provider is not None:
                    steps.append(f"would request a key from {self.provider.name}")
                else:
                    steps.append("no key: import one or configure the licensing portal")
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
    """One pass of the state machine over one operation: a method per state."""

    def __init__(
        self, flow: Reactivator, op: Operation, driver: DeviceDriver, device: Device, feature: str
    ) -> None:
        self.flow = flow
        self.op = op
        self.driver = driver
        self.device = device
        self.feature = feature
        self.quote_: Quote | None = None
        self.key_secret: str | None = None
        self.record: Confirmation | None = None
        self.declined = False

    async def _quoted(self) -> Quote:
        if self.quote_ is None:
            self.quote_ = await self.flow._quote(self.device, self.feature)
        return self.quote_

    async def advance(self, to: OpState, *, detail: str | None = None, **fields: object) -> None:
        self.op = await self.flow._advance(self.op, to, detail=detail, **fields)

    async def fail(self, reason: str, **fields: object) -> None:
        await self.advance(OpState.FAILED, detail=reason, reason=reason, **fields)

    async def read_state(self) -> LicenseStatus:
        """The feature's state on the device, retried like the scan's reads when it is busy."""
        return await self.flow.retrying(lambda: self.driver.verify(self.feature))

    async def check_eligibility(self) -> None:
        live = await self.read_state()
        quote = await self._quoted()
        if not quote.eligible:
            reason = "; ".join(f"{r.name}: {r.reason}" for r in quote.failed)
            await self.advance(
                OpState.INELIGIBLE, detail=reason, reason=reason, state_before=live.state.value
            )
            return
        await self.advance(
            OpState.ELIGIBLE,
            state_before=live.state.value,
            driver=self.driver.name,
            contract=quote.contract,
        )

    async def quote(self) -> None:
        quote = await self._quoted()
        fee, detail = await self.flow._fee(quote)
        await self.advance(
            OpState.QUOTED, detail=detail, fee=fee, currency=quote.currency, contract=quote.contract
        )

    async def approve(self) -> None:
        approver = self.flow.approve
        fee = self.op.fee if self.op.fee is not None else Decimal("0.00")
        if approver is not None and not await approver(
            self.device, self.feature, await self._quoted(), fee
        ):
            self.declined = True
            await self.fail(f"declined by {self.flow.actor}")
            return
        await self.advance(OpState.APPROVED, detail=f"by {self.flow.actor}")

    async def obtain_key(self) -> None:
        resolved = await resolve_key(
            self.flow.keys,
            self.flow.provider,
            self.device.serial,
            self.feature,
            operation_id=self.op.id,
        )
        self.key_secret = resolved.key.get_secret_value()
        await self.advance(
            OpState.KEY_OBTAINED,
            detail=f"key {resolved.key_ref} ({resolved.source})",
            key_id=resolved.key_id,
            key_ref=resolved.key_ref,
        )

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
            await self.advance(OpState.APPLIED, detail="device already reports it active")
            return
        if self.key_secret is None:
            if self.op.key_id is None:
                raise TransitionRefused(f"operation {self.op.id} has no key to apply")
            stored = await self.flow.keys.get(self.op.key_id)
            self.key_secret = stored.key_secret.get_secret_value()
        result = await self.driver.apply_activation(self.feature, self.key_secret)
        await self.advance(OpState.APPLIED, detail=result.detail or "key applied")

    async def verify(self) -> None:
        verified = await self.read_state()
        if verified.state is not LicenseState.ACTIVE:
            reason = f"after applying the key the device reports {verified.state}"
            await self.fail(reason, state_after=verified.state.value)
            return
        await self.advance(OpState.VERIFIED, state_after=verified.state.value)

    async def confirm(self) -> None:
        # The fee was fixed when quoted, but a per-term fee is settled here, atomically with
        # the append: devices of one contract quoted concurrently (a batch) pay the term once.
        pricing = (await self._quoted()).pricing
        per_term = pricing is not None and pricing.value == "per-term"
        draft = self.flow._draft(self.op, self.device, per_term=per_term)
        self.record = await self.flow.confirmations.append(draft)
        await self.advance(
            OpState.CONFIRMED, detail=self.record.number, confirmation=self.record.number
        )
        await self.flow._record_licenses(self.driver, self.device)

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


def _observation(
    device: Device, driver: str, statuses: list[LicenseStatus], now: datetime
) -> DeviceObservation:
    licenses = [
        License(
            serial=device.serial,
            feature=s.feature,
            state=s.state,
            expires_at=s.expires_at,
            source=driver,
            observed_at=now,
        )
        for s in statuses
    ]
    return DeviceObservation(
        serial=device.serial, observed_at=now, reachable=True, driver=driver, licenses=licenses
    )


def features_to_reactivate(licenses: list[License]) -> list[str]:
    """The features of a device whose last observed state calls for a re-activation."""
    return sorted(lic.feature for lic in licenses if lic.state in NEEDS_REACTIVATION)
