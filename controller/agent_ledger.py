"""The controller's side of a site agent's re-activation: the agent's ledger calls, answered.

A site agent runs a re-activation job's state machine (`controller.reactivation`) next to the
device and reports each step here (`POST /agent/jobs/{id}/ledger`, one call per step; the
client is `agent.ledger`). Each call is answered by a `LocalLedger` over the controller's store
that claims operations as the job's lease (`job_claim_owner`), so the operation, the key and
the one confirmation are the controller's, and an agent that died leaves a claim the next run
of the job takes over at once. A call names only the job's own device, and brings only device
facts; the controller's device record, policy and actor are used for the rest.

Calls are safe to repeat: a step call names the state it starts from, and one that finds its
operation already where the step leads (the answer to an earlier try was lost) is answered
with that result instead of being refused. The job's lease, checked and renewed before each
call, makes sure that earlier try was this job's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.eligibility import Quote
from controller.entitlements import EntitlementError, EntitlementUnavailable
from controller.errors import ControllerError
from controller.jobs import ReactivationPayload, ReactivationSetup
from controller.reactivation import Settled
from controller.reactivation_ledger import LocalLedger
from device_drivers.models import LicenseStatus
from inventory.errors import InventoryError
from inventory.job_store import Job
from inventory.models import Confirmation, Device, LicenseState
from inventory.reactivation_store import (
    Operation,
    OpState,
    TransitionRefused,
    job_claim_owner,
)
from inventory.store import InventoryStore


class _Call(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _FeatureCall(_Call):
    serial: str = Field(max_length=64, description="the job's device")
    feature: str = Field(min_length=1, max_length=64)


class SurveyCall(_FeatureCall):
    call: Literal["survey"] = "survey"


class BeginCall(_FeatureCall):
    call: Literal["begin"] = "begin"
    live: LicenseState = Field(description="the feature's state as the device reports it")
    before: str | None = Field(default=None, description="the survey's confirmed operation")


class QuoteCall(_FeatureCall):
    call: Literal["quote"] = "quote"


class PreviewCall(_FeatureCall):
    call: Literal["preview"] = "preview"


class ObserveCall(_Call):
    call: Literal["observe"] = "observe"
    serial: str = Field(max_length=64)
    driver: str = Field(max_length=64)
    licenses: list[LicenseStatus] = Field(max_length=256)


class ResumeCall(_Call):
    call: Literal["resume"] = "resume"
    operation: str = Field(max_length=64)


class ReleaseCall(_Call):
    call: Literal["release"] = "release"
    operation: str = Field(max_length=64)


class KeySecretCall(_Call):
    call: Literal["key_secret"] = "key_secret"
    operation: str = Field(max_length=64)


class _StepCall(_Call):
    operation: str = Field(max_length=64)
    state: OpState = Field(description="the state the step starts from")


class JudgeCall(_StepCall):
    call: Literal["judge"] = "judge"
    state_before: LicenseState
    driver: str = Field(max_length=64)


class PriceCall(_StepCall):
    call: Literal["price"] = "price"


class ApproveCall(_StepCall):
    call: Literal["approve"] = "approve"


class ObtainKeyCall(_StepCall):
    call: Literal["obtain_key"] = "obtain_key"


class RecordCall(_StepCall):
    call: Literal["record"] = "record"
    to: Literal[OpState.APPLIED, OpState.VERIFIED, OpState.FAILED]
    detail: str | None = Field(default=None, max_length=2000)
    state_after: LicenseState | None = None
    reason: str | None = Field(default=None, max_length=2000)


class ConfirmCall(_StepCall):
    call: Literal["confirm"] = "confirm"


LedgerCall = Annotated[
    SurveyCall
    | BeginCall
    | QuoteCall
    | PreviewCall
    | ObserveCall
    | ResumeCall
    | ReleaseCall
    | KeySecretCall
    | JudgeCall
    | PriceCall
    | ApproveCall
    | ObtainKeyCall
    | RecordCall
    | ConfirmCall,
    Field(discriminator="call"),
]
StepCall = JudgeCall | PriceCall | ApproveCall | ObtainKeyCall | RecordCall | ConfirmCall


class LedgerRequest(BaseModel):
    """One ledger call of a re-activation job, under the job's lease."""

    model_config = ConfigDict(extra="forbid")

    lease_id: str = Field(min_length=1, max_length=64)
    call: LedgerCall


RefusalKind = Literal[
    "transition_refused", "entitlement_refused", "entitlement_unavailable", "refused"
]


class Refusal(BaseModel):
    """The ledger's refusal, for the agent to raise as the same error a local run gets."""

    kind: RefusalKind
    message: str


class LedgerAnswer(BaseModel):
    """What a call returns; only the fields of that call are set."""

    operation: Operation | None = None
    confirmed: Operation | None = Field(default=None, description="survey: the last confirmed")
    settled: Settled | None = None
    quote: Quote | None = None
    key: str | None = Field(default=None, description="the key to apply (over TLS only)")
    confirmation: Confirmation | None = None
    lines: list[str] | None = None
    refused: Refusal | None = None


def _started(start: Operation | Settled) -> LedgerAnswer:
    if isinstance(start, Settled):
        return LedgerAnswer(settled=start)
    return LedgerAnswer(operation=start)


def _targets(call: StepCall) -> frozenset[OpState]:
    """Where the step leads: an operation found there was moved by an earlier try of it."""
    match call:
        case JudgeCall():
            return frozenset({OpState.ELIGIBLE, OpState.INELIGIBLE})
        case PriceCall():
            return frozenset({OpState.QUOTED})
        case ApproveCall():
            return frozenset({OpState.APPROVED, OpState.FAILED})
        case ObtainKeyCall():
            return frozenset({OpState.KEY_OBTAINED})
        case RecordCall():
            return frozenset({call.to})
        case ConfirmCall():
            return frozenset({OpState.CONFIRMED})


class LedgerCallRefused(ControllerError):
    """A call this job may not make (another device's operation, a key out of turn)."""


async def answer_ledger_call(
    store: InventoryStore,
    job: Job,
    request: LedgerRequest,
    setup: Callable[[], ReactivationSetup],
) -> LedgerAnswer:
    """Answer one call of `job`'s agent (the caller has checked and renewed its lease)."""
    try:
        device = await store.get_device(ReactivationPayload.model_validate(job.payload).device)
        owner = job_claim_owner(job.id, request.lease_id)
        ledger = setup().ledger(store, job, owner=owner)
        return await _answer(ledger, device, request.call)
    except TransitionRefused as exc:
        return LedgerAnswer(refused=Refusal(kind="transition_refused", message=str(exc)))
    except EntitlementUnavailable as exc:
        return LedgerAnswer(refused=Refusal(kind="entitlement_unavailable", message=str(exc)))
    except EntitlementError as exc:
        return LedgerAnswer(refused=Refusal(kind="entitlement_refused", message=str(exc)))
    except (LedgerCallRefused, InventoryError, ValidationError) as exc:
        return LedgerAnswer(refused=Refusal(kind="refused", message=str(exc)))


async def _answer(ledger: LocalLedger, device: Device, call: LedgerCall) -> LedgerAnswer:
    match call:
        case SurveyCall() | BeginCall() | QuoteCall() | PreviewCall() | ObserveCall():
            if call.serial != device.serial:
                raise LedgerCallRefused(f"{call.serial} is not this job's device ({device.serial})")
    match call:
        case SurveyCall():
            seen = await ledger.survey(device.serial, call.feature)
            return LedgerAnswer(operation=seen.unfinished, confirmed=seen.confirmed)
        case BeginCall():
            before = await _operation(ledger, device, call.before) if call.before else None
            return _started(await ledger.begin(device, call.feature, call.live, before))
        case QuoteCall():
            return LedgerAnswer(quote=await ledger.quote(device, call.feature))
        case PreviewCall():
            return LedgerAnswer(lines=await ledger.preview(device, call.feature))
        case ObserveCall():
            await ledger.observe(device, call.driver, call.licenses)
            return LedgerAnswer()
    op = await _operation(ledger, device, call.operation)
    match call:
        case ResumeCall():
            return _started(await ledger.resume(op))
        case ReleaseCall():
            await ledger.release(op)
            return LedgerAnswer()
        case KeySecretCall():
            if op.state is not OpState.KEY_OBTAINED:
                raise LedgerCallRefused(
                    f"operation {op.id} is {op.state}: its key is not to be applied"
                )
            return LedgerAnswer(key=await ledger.key_secret(op))
    if op.state is not call.state:
        if op.state in _targets(call):
            return await _repeated(ledger, op)
        raise TransitionRefused(f"operation {op.id} is {op.state}, not {call.state}")
    try:
        return await _step(ledger, op, device, call)
    except TransitionRefused:
        now = await ledger.ops.get(op.id)
        if now.state in _targets(call):  # an earlier try, still in flight, got there first
            return await _repeated(ledger, now)
        raise


async def _operation(ledger: LocalLedger, device: Device, op_id: str) -> Operation:
    op = await ledger.ops.get(op_id)
    if op.serial != device.serial:
        raise LedgerCallRefused(f"operation {op_id} is not of this job's device")
    return op


async def _step(ledger: LocalLedger, op: Operation, device: Device, call: StepCall) -> LedgerAnswer:
    match call:
        case JudgeCall():
            moved = await ledger.judge(op, device, call.state_before, call.driver)
        case PriceCall():
            moved = await ledger.price(op, device)
        case ApproveCall():
            moved = await ledger.approve(op, device)
        case ObtainKeyCall():
            moved, key = await ledger.obtain_key(op, device)
            return LedgerAnswer(operation=moved, key=key)
        case RecordCall():
            moved = await ledger.record(
                op, call.to, detail=call.detail, state_after=call.state_after, reason=call.reason
            )
        case ConfirmCall():
            moved, record = await ledger.confirm(op, device)
            return LedgerAnswer(operation=moved, confirmation=record)
    return LedgerAnswer(operation=moved)


async def _repeated(ledger: LocalLedger, op: Operation) -> LedgerAnswer:
    """The answer an earlier try of a step got: the operation where it led, with its key or
    its confirmation record when that step hands one out."""
    if op.state is OpState.KEY_OBTAINED:
        return LedgerAnswer(operation=op, key=await ledger.key_secret(op))
    if op.state is OpState.CONFIRMED and op.confirmation:
        record = await ledger.confirmations.get(op.confirmation)
        return LedgerAnswer(operation=op, confirmation=record)
    return LedgerAnswer(operation=op)
