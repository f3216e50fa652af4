"""The re-activation ledger as the store itself: operations, quotes and fees, keys, confirmations.

`LocalLedger` is the one implementation of every step the controller decides (see the seam in
`controller.reactivation`): the CLI and the controller's job worker drive it in-process, and the
controller answers a site agent's ledger calls with one (`controller.agent_ledger`), its claims
then made as the agent's job lease. What it is told is only what the device said; the actor,
the quote and fee, the key and the confirmation record are its own.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cached_property

from sqlalchemy.exc import SQLAlchemyError

from controller.confirmations import confirmation_store
from controller.eligibility import Quote
from controller.entitlements import EntitlementProvider, resolve_key
from controller.policy import Policy
from controller.quoting import quote_device, quote_devices
from controller.reactivation import (
    DEVICE_DECIDES,
    HELD,
    Approver,
    Settled,
    Status,
    Survey,
)
from device_drivers.models import LicenseStatus
from inventory.confirmation_store import ConfirmationDraft
from inventory.key_store import KeyStore
from inventory.models import Confirmation, Device, License, LicenseState
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

log = logging.getLogger("polyfleet.reactivate")

OBSERVATIONS_PER_WRITE = 64
"""In a batch, the licenses read after this many confirmations are written in one transaction."""


class LocalLedger:
    """The ledger over `store`, for one actor. `owner` is the claim its operations are held
    under (default: this run of this process); `approve` asks before a fee is committed."""

    def __init__(
        self,
        store: InventoryStore,
        *,
        policy: Policy,
        provider: EntitlementProvider | None,
        actor: str,
        approve: Approver | None = None,
        today: Callable[[], date] | None = None,
        owner: str | None = None,
    ) -> None:
        self.engine = store.engine
        self.policy = policy
        self.provider = provider
        self.actor = actor
        self.approver = approve
        self.today = today or (lambda: datetime.now(UTC).date())
        self.ops = OperationStore(self.engine, owner=owner or claim_owner(uuid.uuid4().hex[:12]))
        self.confirmations = confirmation_store(self.engine)
        self.observations = ObservationStore(self.engine, keep=store.observation_history)
        self._quotes: dict[tuple[str, str, date], Quote] = {}
        self._unwritten: dict[str, DeviceObservation] | None = None
        """Observations waiting to be written together (in `observations_batched` only)."""

    @cached_property
    def keys(self) -> KeyStore:
        """The key store (its secret box read only by the steps that handle keys)."""
        return KeyStore(self.engine, SecretBox.from_environment())

    async def survey(self, serial: str, feature: str) -> Survey:
        unfinished, confirmed = await self.ops.unfinished_else_latest(
            serial, feature, OpState.CONFIRMED
        )
        return Survey(unfinished, confirmed)

    async def begin(
        self, device: Device, feature: str, live: LicenseState, before: Operation | None
    ) -> Operation | Settled:
        if live is LicenseState.ACTIVE:  # idempotency: no new operation, nor a second key
            # Asked again, not taken from the survey: another run may have begun or confirmed
            # it meanwhile (which is why the device reports it active), and is named.
            now = await self.survey(device.serial, feature)
            if now.unfinished is not None:
                return await self.resume(now.unfinished)
            return await self._active(now.confirmed)
        op, created = await self.ops.open(device.serial, feature, self.actor)
        if not created:  # another run opened one since the survey
            return await self.resume(op)
        raced = await self._confirmed_meanwhile(op, before)
        return raced or op

    async def resume(self, op: Operation) -> Operation | Settled:
        held_by = await self.ops.claim(op.id)
        if held_by is not None:
            return Settled(
                status=Status.HELD, reason=f"{HELD} ({held_by})", operation=op.id, resumable=True
            )
        op = await self.ops.get(op.id)  # as the previous holder left it
        if op.finished:
            await self.ops.release(op.id)
            return await self._finished_elsewhere(op)
        return op

    async def release(self, op: Operation) -> None:
        await self.ops.release(op.id)

    async def _active(self, previous: Operation | None) -> Settled:
        if previous is not None and previous.confirmation:
            record = await self.confirmations.get(previous.confirmation)
            return Settled(
                status=Status.ALREADY_CONFIRMED,
                reason=f"already active; confirmed earlier as {record.number}",
                operation=previous.id,
                confirmation=record,
            )
        return Settled(status=Status.ALREADY_ACTIVE, reason="feature is active: nothing to do")

    async def _confirmed_meanwhile(self, op: Operation, before: Operation | None) -> Settled | None:
        """Another run confirmed the feature between the survey and our new operation: withdraw
        ours (it did nothing yet) rather than obtain a second key. Our operation was created,
        so theirs had finished by then: this read cannot miss it."""
        latest = await self.ops.latest(op.serial, op.feature, OpState.CONFIRMED)
        if latest is None or (before is not None and latest.id == before.id):
            return None
        await self.ops.withdraw(op.id)
        return await self._finished_elsewhere(latest)

    async def _finished_elsewhere(self, op: Operation) -> Settled:
        """What became of an operation another run finished while we waited for it."""
        if op.state is OpState.CONFIRMED and op.confirmation:
            record = await self.confirmations.get(op.confirmation)
            return Settled(
                status=Status.ALREADY_CONFIRMED,
                reason=f"confirmed by another run as {record.number}",
                operation=op.id,
                confirmation=record,
            )
        status = Status.INELIGIBLE if op.state is OpState.INELIGIBLE else Status.FAILED
        reason = f"another run ended it: {op.reason or op.state}"
        return Settled(status=status, reason=reason, operation=op.id)

    async def prepare(self, targets: Sequence[tuple[Device, str]]) -> None:
        """Quote every target of a batch for today at once (its contracts and sites in a few
        queries instead of two per device); `quote` then answers from these."""
        day = self.today()
        todo = [(d, f) for d, f in targets if (d.serial, f, day) not in self._quotes]
        quotes = await quote_devices(self.engine, todo, self.policy, day)
        for (device, feature), quote in zip(todo, quotes, strict=True):
            self._quotes[(device.serial, feature, day)] = quote

    async def quote(self, device: Device, feature: str) -> Quote:
        """The device's quote for today (computed once a day per device feature)."""
        day = self.today()
        key = (device.serial, feature, day)
        if key not in self._quotes:
            self._quotes[key] = await quote_device(
                self.engine, device, self.policy, day, feature=feature
            )
        return self._quotes[key]

    async def _fee(self, quote: Quote) -> tuple[Decimal, str | None]:
        """The fee to charge; a per-term fee is charged once per contract term."""
        fee = quote.fee if quote.fee is not None else Decimal("0.00")
        if quote.pricing is not None and quote.pricing.value == "per-term" and quote.contract:
            charged = await self.confirmations.charged_for_contract(quote.contract)
            if charged is not None:
                return Decimal("0.00"), f"per-term fee already charged on {charged}"
        return fee, None

    async def judge(
        self, op: Operation, device: Device, state_before: LicenseState, driver: str
    ) -> Operation:
        quote = await self.quote(device, op.feature)
        if not quote.eligible:
            reason = "; ".join(f"{r.name}: {r.reason}" for r in quote.failed)
            return await self.ops.advance(
                op,
                OpState.INELIGIBLE,
                detail=reason,
                reason=reason,
                state_before=state_before.value,
            )
        return await self.ops.advance(
            op,
            OpState.ELIGIBLE,
            state_before=state_before.value,
            driver=driver,
            contract=quote.contract,
        )

    async def price(self, op: Operation, device: Device) -> Operation:
        quote = await self.quote(device, op.feature)
        fee, detail = await self._fee(quote)
        return await self.ops.advance(
            op, OpState.QUOTED, detail=detail, fee=fee, currency=quote.currency,
            contract=quote.contract,
        )  # fmt: skip

    async def approve(self, op: Operation, device: Device) -> Operation:
        fee = op.fee if op.fee is not None else Decimal("0.00")
        if self.approver is not None and not await self.approver(
            device, op.feature, await self.quote(device, op.feature), fee
        ):
            reason = f"declined by {self.actor}"
            return await self.ops.advance(op, OpState.FAILED, detail=reason, reason=reason)
        return await self.ops.advance(op, OpState.APPROVED, detail=f"by {self.actor}")

    async def obtain_key(self, op: Operation, device: Device) -> tuple[Operation, str]:
        resolved = await resolve_key(
            self.keys, self.provider, device.serial, op.feature, operation_id=op.id
        )
        op = await self.ops.advance(
            op,
            OpState.KEY_OBTAINED,
            detail=f"key {resolved.key_ref} ({resolved.source})",
            key_id=resolved.key_id,
            key_ref=resolved.key_ref,
        )
        return op, resolved.key.get_secret_value()

    async def key_secret(self, op: Operation) -> str:
        if op.key_id is None:
            raise TransitionRefused(f"operation {op.id} has no key to apply")
        return (await self.keys.get(op.key_id)).key_secret.get_secret_value()

    async def record(
        self,
        op: Operation,
        to: OpState,
        *,
        detail: str | None = None,
        state_after: LicenseState | None = None,
        reason: str | None = None,
    ) -> Operation:
        if to not in DEVICE_DECIDES:
            raise TransitionRefused(f"operation {op.id}: {to} is not the device's to report")
        fields: dict[str, str] = {}
        if state_after is not None:
            fields["state_after"] = state_after.value
        if reason is not None:
            fields["reason"] = reason
        return await self.ops.advance(op, to, detail=detail, **fields)

    async def confirm(self, op: Operation, device: Device) -> tuple[Operation, Confirmation]:
        # The fee was fixed when quoted, but a per-term fee is settled here, atomically with
        # the append: devices of one contract quoted concurrently (a batch) pay the term once.
        pricing = (await self.quote(device, op.feature)).pricing
        per_term = pricing is not None and pricing.value == "per-term"
        record = await self.confirmations.append(self._draft(op, device, per_term=per_term))
        op = await self.ops.advance(
            op, OpState.CONFIRMED, detail=record.number, confirmation=record.number
        )
        return op, record

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

    async def observe(self, device: Device, driver: str, licenses: list[LicenseStatus]) -> None:
        now = datetime.now(UTC)
        observed = [
            License(
                serial=device.serial,
                feature=s.feature,
                state=s.state,
                expires_at=s.expires_at,
                source=driver,
                observed_at=now,
            )
            for s in licenses
        ]
        observation = DeviceObservation(
            serial=device.serial, observed_at=now, reachable=True, driver=driver, licenses=observed
        )
        if self._unwritten is None:
            await self.observations.record([observation])
            return
        self._unwritten.pop(device.serial, None)  # a later read of the device supersedes it
        self._unwritten[device.serial] = observation
        if len(self._unwritten) >= OBSERVATIONS_PER_WRITE:
            await self._write_observations()

    async def _write_observations(self) -> None:
        """Write the batch's waiting observations; those observed meanwhile wait for the next."""
        waiting, self._unwritten = self._unwritten or {}, {}
        await self.observations.record(list(waiting.values()))

    @asynccontextmanager
    async def observations_batched(self) -> AsyncIterator[None]:
        """For a batch: the licenses observed after confirmations are written
        OBSERVATIONS_PER_WRITE devices at a time (seven statements for all of them, not for
        each), the rest on leaving. Best effort as `observe` is: a run killed meanwhile leaves
        the unwritten ones for the next scan to read (the confirmations are all written)."""
        self._unwritten = {}
        try:
            yield
        finally:
            try:
                await self._write_observations()
            except SQLAlchemyError as exc:  # best effort: the batch's results stand
                log.warning("the licenses read after the confirmations were not kept: %s", exc)
            finally:
                self._unwritten = None

    async def preview(self, device: Device, feature: str) -> list[str]:
        quote = await self.quote(device, feature)
        fee, note = await self._fee(quote)
        lines = [
            f"fee {fee} {quote.currency} ({quote.pricing}), contract {quote.contract}"
            + (f" — {note}" if note else "")
        ]
        unused = await self.keys.next_unused(device.serial, feature)
        if unused is not None:
            lines.append(f"would use imported key {unused.key_ref}")
        elif self.provider is not None:
            lines.append(f"would request a key from {self.provider.name}")
        else:
            lines.append("no key: import one or configure the licensing portal")
        return lines
