"""An agent's long poll: a job queued through this controller while the agent waits is handed
to it at once, not when the poll next looks at the queue."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from controller.api.routes import agents as agent_routes
from inventory.agent_store import Agent
from inventory.job_store import ClaimScope, Job, JobStore
from inventory.models import Device
from inventory.store import InventoryStore
from inventory.token_store import Role, TokenStore
from tests.api.conftest import Client, MakeToken, bearer

BOUND_S = 30.0
"""Far below the poll's wait (60 s) and its patched interval: only a wake-up answers within it."""


async def test_a_job_queued_while_the_agent_waits_is_handed_over_at_once(
    client: Client, make_token: MakeToken, store: InventoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_routes, "POLL_INTERVAL_S", 3600.0)  # no second look in the test
    looked = asyncio.Event()
    claim = JobStore.claim

    async def claim_and_tell(
        self: JobStore, scope: ClaimScope, agent: str, **kw: Any
    ) -> Job | None:
        job = await claim(self, scope, agent, **kw)
        if job is None:
            looked.set()  # the poll found nothing and waits
        return job

    monkeypatch.setattr(JobStore, "claim", claim_and_tell)
    await store.upsert_devices(
        [Device(serial="0004F2AABB01", mac="0004f2aabb01", model="VVX 450", site="hq")]
    )
    agent = await make_token(Role.AGENT, site="hq", name="edge")
    tech = await make_token(Role.TECHNICIAN)

    async def poll() -> tuple[int, Any]:
        async with client.get("/api/v1/agent/jobs?wait=60", headers=bearer(agent)) as response:
            return response.status, await response.json()

    waiting = asyncio.create_task(poll())
    await asyncio.wait_for(looked.wait(), BOUND_S)
    queued = await client.post(
        "/api/v1/probes", json={"device": "0004F2AABB01"}, headers=bearer(tech)
    )
    assert queued.status == 202, await queued.text()
    job_id = (await queued.json())["job"]

    status, claimed = await asyncio.wait_for(waiting, BOUND_S)
    assert status == 200, claimed
    assert (claimed["id"], claimed["kind"]) == (job_id, "probe")
    assert claimed["payload"]["inventory"][0]["serial"] == "0004F2AABB01"


def test_known_agents_are_read_again_after_they_were_kept_long_enough() -> None:
    now = [100.0]
    known = agent_routes.KnownAgents(clock=lambda: now[0], limit=2)
    edge = Agent(id="agt-1", name="edge", site="hq", token_id="t1")
    assert known.get("t1") is None
    known.keep("t1", edge, read=True)
    assert known.get("t1") == edge
    now[0] += agent_routes.AGENT_KEPT_S / 2
    seen = replace(edge, last_seen_at=datetime(2026, 12, 6, tzinfo=UTC))
    known.keep("t1", seen, read=False)  # written here: its age stays that of the read
    assert known.get("t1") == seen
    now[0] += agent_routes.AGENT_KEPT_S / 2
    assert known.get("t1") is None
    for token in ("t2", "t3", "t4"):  # bounded
        known.keep(token, edge, read=True)
    assert len([t for t in ("t1", "t2", "t3", "t4") if known.get(t)]) <= 2


async def test_a_revoked_agent_token_is_refused_at_once_though_its_agent_is_kept(
    client: Client, make_token: MakeToken, store: InventoryStore
) -> None:
    secret = await make_token(Role.AGENT, site="hq", name="edge")
    polled = await client.get("/api/v1/agent/jobs?wait=0", headers=bearer(secret))
    assert polled.status == 204, await polled.text()
    token_id = secret.split("_")[1]
    await TokenStore(store.engine).revoke(token_id)
    refused = await client.get("/api/v1/agent/jobs?wait=0", headers=bearer(secret))
    assert refused.status == 401
