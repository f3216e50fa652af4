"""A re-activation job's ledger at a site agent: the controller, asked over HTTP.

The agent runs the controller's re-activation state machine (`controller.reactivation`) next to
the device, with its own credentials; every step it takes is one call here, answered by the
controller's store (`controller.agent_ledger`), so the operation, the key and the one signed
confirmation never live at the site. Only device facts go out; the key to apply comes back.

A controller that cannot be reached is tried again, moving through the controller URLs, for
up to `patience` seconds (the job's lease: beyond it the job is another run's anyway); calls are
safe to repeat. Then, or when the job's lease is gone, the step raises LedgerUnavailable: the
run stops before its next side effect and the operation resumes in the next run of the job.
The best-effort calls (releasing the claim, the licenses read after the confirmation) are made
once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from agent.client import (
    AgentRefused,
    Backoff,
    ControllerClient,
    ControllerUnreachable,
    LeaseGone,
    ResultRejected,
)
from controller.agent_ledger import (
    ApproveCall,
    BeginCall,
    ConfirmCall,
    JudgeCall,
    KeySecretCall,
    LedgerAnswer,
    LedgerCall,
    LedgerRequest,
    ObserveCall,
    ObtainKeyCall,
    PreviewCall,
    PriceCall,
    QuoteCall,
    RecordCall,
    Refusal,
    ReleaseCall,
    ResumeCall,
    SurveyCall,
)
from controller.eligibility import Quote
from controller.entitlements import EntitlementRefused, EntitlementUnavailable
from controller.reactivation import DEVICE_DECIDES, LedgerUnavailable, Settled, Survey
from device_drivers.models import LicenseStatus
from inventory.models import Confirmation, Device, LicenseState
from inventory.reactivation_store import Operation, OpState, TransitionRefused

log = logging.getLogger("polyfleet.agent")


def _raise(refusal: Refusal) -> None:
    """The controller's refusal as the error a local run of the step raises."""
    if refusal.kind == "transition_refused":
        raise TransitionRefused(refusal.message)
    if refusal.kind == "entitlement_unavailable":
        raise EntitlementUnavailable(refusal.message)
    if refusal.kind == "entitlement_refused":
        raise EntitlementRefused(refusal.message)
    raise LedgerUnavailable(f"the controller refused: {refusal.message}")


class RemoteLedger:
    """The `Ledger` of job `job_id` under lease `lease_id`, at the controller."""

    def __init__(
        self,
        client: ControllerClient,
        job_id: str,
        lease_id: str,
        *,
        patience: float,
        backoff: Backoff,
    ) -> None:
        self.client = client
        self.job_id = job_id
        self.lease_id = lease_id
        self.patience = patience
        self.backoff = backoff

    async def _ask(self, call: LedgerCall, *, once: bool = False) -> LedgerAnswer:
        """The controller's answer to `call`; `once`: no second try (a best-effort call)."""
        body = LedgerRequest(lease_id=self.lease_id, call=call).model_dump(mode="json")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (0.0 if once else self.patience)
        attempt = 0
        while True:
            try:
                data = await self.client.ledger(self.job_id, body)
                break
            except ControllerUnreachable as exc:
                if loop.time() >= deadline:
                    raise LedgerUnavailable(f"no controller answers: {exc}") from None
                delay = self.backoff.delay(attempt)
                log.warning("job %s: controller unreachable (%s); asking again", self.job_id, exc)
                self.client.rotate()
                attempt += 1
                await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
            except LeaseGone as exc:
                raise LedgerUnavailable(
                    f"the lease of job {self.job_id} is gone ({exc}); its next run takes over"
                ) from None
            except (AgentRefused, ResultRejected) as exc:
                raise LedgerUnavailable(str(exc)) from None
        answer = LedgerAnswer.model_validate(data)
        if answer.refused is not None:
            _raise(answer.refused)
        return answer

    @staticmethod
    def _operation(answer: LedgerAnswer) -> Operation:
        if answer.operation is None:
            raise LedgerUnavailable("the controller answered without the operation")
        return answer.operation

    def _started(self, answer: LedgerAnswer) -> Operation | Settled:
        return answer.settled if answer.settled is not None else self._operation(answer)

    async def survey(self, serial: str, feature: str) -> Survey:
        answer = await self._ask(SurveyCall(serial=serial, feature=feature))
        return Survey(answer.operation, answer.confirmed)

    async def begin(
        self, device: Device, feature: str, live: LicenseState, before: Operation | None
    ) -> Operation | Settled:
        call = BeginCall(
            serial=device.serial, feature=feature, live=live, before=before.id if before else None
        )
        return self._started(await self._ask(call))

    async def resume(self, op: Operation) -> Operation | Settled:
        return self._started(await self._ask(ResumeCall(operation=op.id)))

    async def release(self, op: Operation) -> None:
        """Best effort: a claim not released ends with the job's lease anyway."""
        with contextlib.suppress(LedgerUnavailable):
            await self._ask(ReleaseCall(operation=op.id), once=True)

    async def quote(self, device: Device, feature: str) -> Quote:
        answer = await self._ask(QuoteCall(serial=device.serial, feature=feature))
        if answer.quote is None:
            raise LedgerUnavailable("the controller answered without the quote")
        return answer.quote

    async def judge(
        self, op: Operation, device: Device, state_before: LicenseState, driver: str
    ) -> Operation:
        call = JudgeCall(operation=op.id, state=op.state, state_before=state_before, driver=driver)
        return self._operation(await self._ask(call))

    async def price(self, op: Operation, device: Device) -> Operation:
        return self._operation(await self._ask(PriceCall(operation=op.id, state=op.state)))

    async def approve(self, op: Operation, device: Device) -> Operation:
        return self._operation(await self._ask(ApproveCall(operation=op.id, state=op.state)))

    async def obtain_key(self, op: Operation, device: Device) -> tuple[Operation, str]:
        answer = await self._ask(ObtainKeyCall(operation=op.id, state=op.state))
        if answer.key is None:
            raise LedgerUnavailable("the controller answered without the key")
        return self._operation(answer), answer.key

    async def key_secret(self, op: Operation) -> str:
        answer = await self._ask(KeySecretCall(operation=op.id))
        if answer.key is None:
            raise LedgerUnavailable("the controller answered without the key")
        return answer.key

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
        call = RecordCall(
            operation=op.id, state=op.state, to=to, detail=detail, state_after=state_after,
            reason=reason,
        )  # fmt: skip
        return self._operation(await self._ask(call))

    async def confirm(self, op: Operation, device: Device) -> tuple[Operation, Confirmation]:
        answer = await self._ask(ConfirmCall(operation=op.id, state=op.state))
        if answer.confirmation is None:
            raise LedgerUnavailable("the controller answered without the confirmation")
        return self._operation(answer), answer.confirmation

    async def observe(self, device: Device, driver: str, licenses: list[LicenseStatus]) -> None:
        """Best effort, as the read it reports: asked once."""
        call = ObserveCall(serial=device.serial, driver=driver, licenses=licenses)
        await self._ask(call, once=True)

    async def preview(self, device: Device, feature: str) -> list[str]:
        answer = await self._ask(PreviewCall(serial=device.serial, feature=feature))
        return answer.lines or []
