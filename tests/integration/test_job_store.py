"""The job queue on both backends: claims are exclusive leases, a dead claimer's lease expires
back to the queue, a result delivered twice is stored once, sites with a live agent are theirs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from inventory.agent_store import AgentStore
from inventory.job_store import ClaimScope, JobKind, JobState, JobStore, LeaseLost
from inventory.store import InventoryStore

ANY = ClaimScope()


async def test_concurrent_claimers_never_get_the_same_job(store: InventoryStore) -> None:
    queue = JobStore(store.engine)
    queued = {(await queue.enqueue(JobKind.SCAN, {"n": n}, site="hq")).id for n in range(20)}

    async def claimer(name: str) -> list[str]:
        taken = []
        while (job := await queue.claim(ANY, name)) is not None:
            taken.append(job.id)
        return taken

    results = await asyncio.gather(*(claimer(f"agent-{i}") for i in range(5)))
    claimed = [job_id for taken in results for job_id in taken]
    assert sorted(claimed) == sorted(queued)  # every job once, none twice
    assert (await queue.depth())["running"] == 20


async def test_an_expired_lease_puts_the_job_back_for_another_claimer(
    store: InventoryStore,
) -> None:
    queue = JobStore(store.engine, lease=timedelta(seconds=30))
    job = await queue.enqueue(JobKind.PROBE, {"device": "X"}, site="hq")
    start = datetime.now(UTC)
    first = await queue.claim(ANY, "dead-agent", now=start)
    assert first is not None
    assert first.lease_id is not None
    assert await queue.claim(ANY, "other", now=start + timedelta(seconds=10)) is None

    later = start + timedelta(seconds=31)
    second = await queue.claim(ANY, "other", now=later)
    assert second is not None
    assert (second.id, second.lease_agent, second.attempts) == (job.id, "other", 2)
    with pytest.raises(LeaseLost):  # the dead agent, back, cannot renew what it lost
        await queue.renew(job.id, first.lease_id, now=later)
    assert second.lease_id is not None
    assert await queue.renew(job.id, second.lease_id, now=later) > later


async def test_a_result_delivered_twice_is_stored_once(store: InventoryStore) -> None:
    queue = JobStore(store.engine)
    job = await queue.enqueue(JobKind.SCAN, {}, site="hq")
    assert await queue.claim(ANY, "a") is not None
    assert await queue.complete(job.id, state=JobState.DONE, result=[{"serial": "1"}]) is True
    assert await queue.complete(job.id, state=JobState.FAILED, error="late copy") is False
    stored = await queue.get(job.id)
    assert (stored.state, stored.result, stored.error) == (JobState.DONE, [{"serial": "1"}], None)
    assert stored.to_json()["result"] == [{"serial": "1"}]


async def test_controllers_leave_the_jobs_of_sites_with_a_live_agent_to_it(
    store: InventoryStore,
) -> None:
    queue, registry = JobStore(store.engine), AgentStore(store.engine)
    agent = await registry.create("edge-1", "branch", token_id=None)
    now = datetime.now(UTC)
    await registry.enrol(agent.id, name="edge-1", version="0.1.0", now=now)
    branch = await queue.enqueue(JobKind.SCAN, {}, site="branch")
    hq = await queue.enqueue(JobKind.SCAN, {}, site="hq")

    controller = ClaimScope(unattended_since=now - timedelta(seconds=60))
    taken = await queue.claim(controller, "controller")
    assert taken is not None
    assert taken.id == hq.id
    assert await queue.claim(controller, "controller") is None
    assert await queue.claim(ClaimScope(site="hq"), "edge-1") is None
    mine = await queue.claim(ClaimScope(site="branch"), "edge-1")
    assert mine is not None
    assert mine.id == branch.id

    # the agent goes silent: a later controller takes its site's new jobs
    orphan = await queue.enqueue(JobKind.SCAN, {}, site="branch")
    silent = ClaimScope(unattended_since=now + timedelta(seconds=1))
    taken = await queue.claim(silent, "controller")
    assert taken is not None
    assert taken.id == orphan.id
    assert [a.id for a in await registry.list_agents(site="branch")] == [agent.id]


async def test_listing_filters_and_pages(store: InventoryStore) -> None:
    queue = JobStore(store.engine)
    for n in range(3):
        await queue.enqueue(JobKind.SCAN, {"n": n}, site="hq")
    await queue.enqueue(JobKind.PROBE, {}, site="hq")
    items, total = await queue.list_jobs(kind=JobKind.SCAN, limit=2)
    assert (len(items), total) == (2, 3)
    items, total = await queue.list_jobs(state=JobState.DONE)
    assert (items, total) == ([], 0)
