"""Re-activation operations on both backends: one unfinished operation per device feature,
guarded transitions, and an event per transition."""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from inventory.errors import InventoryError
from inventory.reactivation_store import OperationStore, OpState, TransitionRefused, claim_owner
from inventory.schema import reactivations
from inventory.store import InventoryStore

FEATURE = "productivity_suite"


@pytest.fixture
def ops(store: InventoryStore) -> OperationStore:
    return OperationStore(store.engine)


async def test_opening_twice_resumes_the_same_unfinished_operation(ops: OperationStore) -> None:
    first, created = await ops.open("SN-1", FEATURE, "tech@host")
    assert created
    assert (first.state, first.serial, first.feature, first.actor) == (
        OpState.REQUESTED, "SN-1", FEATURE, "tech@host",
    )  # fmt: skip
    again, created_again = await ops.open("SN-1", FEATURE, "someone-else@host")
    assert not created_again
    assert again == first  # the same operation, still the first actor's
    assert await ops.unfinished("SN-1", FEATURE) == first
    other, created_other = await ops.open("SN-1", "uc_features", "tech@host")
    assert created_other
    assert other.id != first.id
    assert await ops.unfinished("SN-2", FEATURE) is None


async def test_concurrent_opens_share_one_operation(ops: OperationStore) -> None:
    opened = await asyncio.gather(*(ops.open("SN-1", FEATURE, f"t{n}") for n in range(5)))
    assert len({op.id for op, _ in opened}) == 1
    assert sum(created for _, created in opened) == 1


async def test_advance_is_guarded_by_the_state_it_leaves(ops: OperationStore) -> None:
    op, _ = await ops.open("SN-1", FEATURE, "tech")
    eligible = await ops.advance(op, OpState.ELIGIBLE, state_before="expired", driver="poly-uc")
    assert (eligible.state, eligible.state_before, eligible.driver) == (
        OpState.ELIGIBLE, "expired", "poly-uc",
    )  # fmt: skip
    # `op` is stale (still says requested): another run already moved the operation on
    with pytest.raises(TransitionRefused, match="no longer requested"):
        await ops.advance(op, OpState.ELIGIBLE)
    with pytest.raises(TransitionRefused, match="is not a transition"):
        await ops.advance(eligible, OpState.CONFIRMED)
    with pytest.raises(ValueError, match="unknown operation fields"):
        await ops.advance(eligible, OpState.QUOTED, price=Decimal(1))
    stored = await ops.get(op.id)
    assert (stored.state, stored.state_before, stored.driver) == (
        OpState.ELIGIBLE, "expired", "poly-uc",
    )  # fmt: skip
    assert [state for state, _, _ in await ops.events(op.id)] == ["requested", "eligible"]
    with pytest.raises(InventoryError, match="no re-activation operation"):
        await ops.get("RA-nope")


async def test_two_runs_advancing_at_once_move_it_once(ops: OperationStore) -> None:
    op, _ = await ops.open("SN-1", FEATURE, "tech")
    results = await asyncio.gather(
        *(ops.advance(op, OpState.ELIGIBLE) for _ in range(3)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, TransitionRefused) for r in results if isinstance(r, BaseException))
    assert [state for state, _, _ in await ops.events(op.id)] == ["requested", "eligible"]


async def test_a_finished_operation_frees_the_feature_for_a_new_one(ops: OperationStore) -> None:
    op, _ = await ops.open("SN-1", FEATURE, "tech")
    failed = await ops.advance(op, OpState.FAILED, detail="no key", reason="no key")
    assert failed.finished
    assert await ops.unfinished("SN-1", FEATURE) is None
    with pytest.raises(TransitionRefused):
        await ops.advance(failed, OpState.ELIGIBLE)  # nothing leaves a finished state
    second, created = await ops.open("SN-1", FEATURE, "tech")
    assert created
    assert second.id != op.id
    latest = await ops.latest("SN-1", FEATURE, OpState.FAILED)
    assert latest is not None
    assert (latest.id, latest.reason) == (op.id, "no key")
    assert await ops.latest("SN-1", FEATURE, OpState.CONFIRMED) is None


async def test_a_survey_finds_the_unfinished_operation_else_the_last_confirmed(
    ops: OperationStore,
) -> None:
    """What a re-activation asks first, in one read: resume the unfinished operation, else
    compare with the last confirmed one (another device or feature never counts)."""
    path = [OpState.ELIGIBLE, OpState.QUOTED, OpState.APPROVED, OpState.KEY_OBTAINED,
            OpState.APPLIED, OpState.VERIFIED, OpState.CONFIRMED]  # fmt: skip

    async def confirmed() -> str:
        op, _ = await ops.open("SN-1", FEATURE, "tech")
        for state in path:
            op = await ops.advance(op, state)
        return op.id

    assert await ops.unfinished_else_latest("SN-1", FEATURE, OpState.CONFIRMED) == (None, None)
    failed, _ = await ops.open("SN-1", FEATURE, "tech")
    await ops.advance(failed, OpState.FAILED, reason="no key")
    assert await ops.unfinished_else_latest("SN-1", FEATURE, OpState.CONFIRMED) == (None, None)
    await confirmed()
    second = await confirmed()
    await ops.open("SN-1", "uc_features", "tech")  # another feature's unfinished operation
    await ops.open("SN-2", FEATURE, "tech")  # another device's
    unfinished, latest = await ops.unfinished_else_latest("SN-1", FEATURE, OpState.CONFIRMED)
    assert unfinished is None
    assert latest == await ops.get(second)
    third, _ = await ops.open("SN-1", FEATURE, "tech")
    third = await ops.advance(third, OpState.ELIGIBLE, state_before="expired")
    assert await ops.unfinished_else_latest("SN-1", FEATURE, OpState.CONFIRMED) == (third, None)


async def test_every_transition_is_an_event_with_its_detail(ops: OperationStore) -> None:
    op, _ = await ops.open("SN-1", FEATURE, "tech")
    path: list[tuple[OpState, str | None, dict[str, object]]] = [
        (OpState.ELIGIBLE, None, {"state_before": "expired", "contract": "C-1"}),
        (OpState.QUOTED, None, {"fee": Decimal("49.00"), "currency": "USD"}),
        (OpState.APPROVED, "by tech", {}),
        (OpState.KEY_OBTAINED, "key abc (portal)", {"key_id": 7, "key_ref": "abc"}),
        (OpState.APPLIED, "key applied", {}),
        (OpState.VERIFIED, None, {"state_after": "active"}),
        (OpState.CONFIRMED, "RC-2026-000001", {"confirmation": "RC-2026-000001"}),
    ]
    for state, detail, fields in path:
        op = await ops.advance(op, state, detail=detail, **fields)
    stored = await ops.get(op.id)
    assert stored == op
    assert (stored.fee, stored.key_id, stored.confirmation) == (
        Decimal("49.00"), 7, "RC-2026-000001",
    )  # fmt: skip
    assert await ops.unfinished("SN-1", FEATURE) is None
    assert await ops.latest("SN-1", FEATURE, OpState.CONFIRMED) == stored
    events = await ops.events(op.id)
    assert [(state, detail) for state, _, detail in events] == [
        ("requested", None),
        *((state.value, detail) for state, detail, _ in path),
    ]
    times = [at for _, at, _ in events]
    assert times == sorted(times)
    assert all(at.tzinfo is not None for at in times)


def _owner(pid: int, run: str, host: str | None = None) -> str:
    return f"{host or socket.gethostname()}/{pid}/{run}"


async def test_a_claimed_operation_is_held_for_other_runs_and_only_its_owner_advances_it(
    store: InventoryStore,
) -> None:
    mine = OperationStore(store.engine, owner=claim_owner("run-a"))
    theirs = OperationStore(store.engine, owner=claim_owner("run-b"))
    op, created = await mine.open("SN-1", FEATURE, "tech")
    assert created  # and claimed by run-a from the start
    held_by = await theirs.claim(op.id)
    assert held_by == f"process {os.getpid()} on {socket.gethostname()}"
    with pytest.raises(TransitionRefused):
        await theirs.advance(op, OpState.ELIGIBLE)
    assert await mine.claim(op.id) is None  # claiming again is a no-op for the owner
    op = await mine.advance(op, OpState.ELIGIBLE)
    await mine.release(op.id)
    assert await theirs.claim(op.id) is None  # released: the other run may go on
    assert (await theirs.advance(op, OpState.QUOTED)).state is OpState.QUOTED


async def _claimed(store: InventoryStore, serial: str, holder: str, minutes: float) -> str:
    """An operation another run claimed, its lease ending `minutes` from now; its id."""
    op, _ = await OperationStore(store.engine).open(serial, FEATURE, "tech")
    until = datetime.now(UTC) + timedelta(minutes=minutes)
    async with store.engine.begin() as conn:
        await conn.execute(
            reactivations.update()
            .where(reactivations.c.id == op.id)
            .values(claimed_by=holder, claimed_until=until)
        )
    return op.id


async def test_a_claim_left_by_a_dead_process_or_an_expired_lease_is_free(
    store: InventoryStore,
) -> None:
    gone = await asyncio.create_subprocess_exec("true")  # a process that existed and is gone
    await gone.wait()
    rerun = OperationStore(store.engine, owner=claim_owner("rerun"))
    killed = await _claimed(store, "SN-1", _owner(gone.pid, "x"), minutes=5)
    assert await rerun.claim(killed) is None  # no need to wait for its lease
    expired = await _claimed(store, "SN-2", _owner(1, "x", "other-host"), minutes=-0.1)
    assert await rerun.claim(expired) is None
    elsewhere = await _claimed(store, "SN-3", _owner(1, "x", "other-host"), minutes=5)
    assert await rerun.claim(elsewhere) == "process 1 on other-host"  # alive, as far as we know


async def test_concurrent_claims_have_one_winner(store: InventoryStore) -> None:
    op, _ = await OperationStore(store.engine).open("SN-1", FEATURE, "tech")
    runs = [OperationStore(store.engine, owner=claim_owner(f"run-{n}")) for n in range(5)]
    answers = await asyncio.gather(*(run.claim(op.id) for run in runs))
    assert answers.count(None) == 1
