"""The re-activation workflow: eligibility → quote → approval → key → apply → verify → confirm.

Each step is a transition of a persisted operation (inventory.reactivation_store), committed
before the next side effect. A rerun after a crash resumes the unfinished operation where it
stopped: a key already claimed is reused, and before applying a key the device is asked whether
the feature is already active (a crash between "device applied" and "we wrote applied" must not
apply the key twice). Confirming is idempotent per operation, so a crash after the confirmation
was appended but before the operation says so still ends with exactly one confirmation.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum

from controller.confirmations import confirmation_store
from controller.eligibility import Quote
from controller.entitlements import (
    EntitlementError,
    EntitlementProvider,
    EntitlementUnavailable,
    resolve_key,
)
from controller.policy import Policy
from controller.quoting import quote_device
from controller.scan import Transports, driver_name_for
from device_drivers.base import DeviceDriver
from device_drivers.context import DriverContext, Timeouts
from device_drivers.errors import ActivationRejected, DeviceError
from device_drivers.models import LicenseStatus
from device_drivers.registry import DriverRegistry
from inventory.confirmation_store import ConfirmationDraft
from inventory.key_store import KeyStore
from inventory.models import Confirmation, CredentialProfile, Device, License, LicenseState
from inventory.observation_store import DeviceObservation, ObservationStore
from inventory.reactivation_store import Operation, OperationStore, OpState, TransitionRefused
from inventory.secret_box import SecretBox
from inventory.store import InventoryStore

CRASH_AFTER_ENV = "POLYFLEET_TEST_CRASH_AFTER"
"""Fault-injection seam for the crash-safety test: after committing the named state, the process
kills itself with SIGKILL (as a power cut would). Never set outside tests."""

NEEDS_REACTIVATION = frozenset({LicenseState.EXPIRED, LicenseState.DEACTIVATED})


class Status(StrEnum):
    """How a re-activation request ended, for the technician and for exit codes."""

    CONFIRMED = "confirmed"
    ALREADY_CONFIRMED = "already_confirmed"
    ALREADY_ACTIVE = "already_active"
    INELIGIBLE = "ineligible"
    DECLINED = "declined"
    FAILED = "failed"
    PLANNED = "planned"  # --dry-run


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one device feature's re-activation (or of its dry run)."""

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
        engine = store.engine
        self.ops = OperationStore(engine)
        self.keys = KeyStore(engine, SecretBox.from_environment())
        self.confirmations = confirmation_store(engine)
        self.observations = ObservationStore(engine)

    def _driver(self, device: Device) -> DeviceDriver:
        profile = self.profiles.get(device.credentials) if device.credentials else None
        context = DriverContext(
            device=device,
            credentials=profile,
            snmp=self.transports.snmp,
            http=self.transports.http,
            ssh=self.transports.ssh,
            timeouts=self.timeouts,
            pin_store=self.store.pin_first_use,
        )
        return self.registry.get(driver_name_for(device))(context)

    async def _advance(
        self, op: Operation, to: OpState, *, detail: str | None = None, **fields: object
    ) -> Operation:
        op = await self.ops.advance(op, to, detail=detail, **fields)
        _checkpoint(to)
        return op

    async def reactivate(self, device: Device, feature: str) -> Outcome:
        """Re-activate `feature` on `device`, resuming an unfinished operation if one exists."""
        driver = self._driver(device)
        try:
            op = await self.ops.unfinished(device.serial, feature)
            if op is None:
                early = await self._already_done(driver, device, feature)
                if early is not None:
                    return early
                op, _ = await self.ops.open(device.serial, feature, self.actor)
                _checkpoint(OpState.REQUESTED)
            return await self._run(op, driver, device, feature)
        finally:
            await driver.close()

    async def _already_done(
        self, driver: DeviceDriver, device: Device, feature: str
    ) -> Outcome | None:
        """Idempotency: an active feature needs no new operation (nor a second key)."""
        try:
            live = await driver.verify(feature)
        except DeviceError as exc:
            return Outcome(device.serial, feature, Status.FAILED, f"cannot read the device: {exc}")
        if live.state is not LicenseState.ACTIVE:
            return None
        previous = await self.ops.latest(device.serial, feature, OpState.CONFIRMED)
        if previous is not None and previous.confirmation:
            record = await self.confirmations.get(previous.confirmation)
            return Outcome(
                device.serial, feature, Status.ALREADY_CONFIRMED,
                f"already active; confirmed earlier as {record.number}",
                operation=previous.id, confirmation=record,
            )  # fmt: skip
        return Outcome(
            device.serial, feature, Status.ALREADY_ACTIVE, "feature is active: nothing to do"
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
            statuses = await driver.read_licenses()
        except DeviceError:
            return
        now = datetime.now(UTC)
        await self.observations.record([_observation(device, driver.name, statuses, now)])

    async def plan(self, device: Device, feature: str) -> Outcome:
        """What `reactivate` would do, read-only: live state, quote, key source, driver call."""
        driver = self._driver(device)
        try:
            try:
                live = await driver.verify(feature)
            except DeviceError as exc:
                return Outcome(device.serial, feature, Status.FAILED, f"cannot read: {exc}")
            quote = await self._quote(device, feature)
            steps = [f"device reports {feature} {live.state}"]
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
                device.serial, feature, status, quote=quote, state_before=live.state,
                plan=tuple(steps),
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

    async def check_eligibility(self) -> None:
        live = await self.driver.verify(self.feature)
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
        run applied it and was stopped before it could record so (never apply twice)."""
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
        verified = await self.driver.verify(self.feature)
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
            op.serial,
            op.feature,
            status,
            reason or op.reason,
            op.id,
            confirmation,
            self.quote_,
            before,
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
