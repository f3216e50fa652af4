"""The agent's main loop at the moment it is told to stop: a job the controller leased to it
while it was polling is still run and its result delivered, so the job does not sit "running"
at the controller until its lease expires."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

from agent.client import ControllerClient
from agent.runner import JobRunner, Outcome
from agent.service import STOP_GRACE_S, Agent
from agent.spool import ResultSpool
from inventory.job_store import JobState


class LateLeaseController:
    """Enrols the agent, then answers its first poll with a job `answer_after` seconds later
    (the lease is granted, the answer still on the wire); records the results posted."""

    def __init__(self, answer_after: float) -> None:
        self.answer_after = answer_after
        self.polled = asyncio.Event()
        self.results: dict[str, dict[str, Any]] = {}
        self._leased = False
        self.url = "http://127.0.0.1:1"

    async def enrol(self, name: str, version: str) -> dict[str, Any]:
        return {"site": "hq-berlin", "agent_id": "agt-test", "lease_seconds": 60}

    async def next_job(self, wait: int) -> dict[str, Any] | None:
        self.polled.set()
        if self._leased:
            await asyncio.sleep(wait)
            return None
        self._leased = True
        await asyncio.sleep(self.answer_after)
        return {"id": "job-1", "lease_id": "lease-1", "kind": "scan", "payload": {}}

    async def post_result(self, job_id: str, body: dict[str, Any]) -> bool:
        self.results[job_id] = body
        return True

    def rotate(self) -> None:
        pass


class FinishingRunner:
    """Runs any job to `done`, remembering which."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    async def run(self, claimed: dict[str, Any], **_: Any) -> Outcome:
        self.ran.append(str(claimed["id"]))
        return JobState.DONE, {"devices": 0}, None


async def stop_while_polling(tmp_path: Path, answer_after: float) -> tuple[Any, Any, float]:
    controller, runner = LateLeaseController(answer_after), FinishingRunner()
    spool = ResultSpool(tmp_path / "spool.db")
    agent = Agent(
        cast(ControllerClient, controller),
        cast(JobRunner, runner),
        spool,
        name="edge",
        version="test",
        poll_wait=30,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.wait_for(controller.polled.wait(), 5)
    stop.set()
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(task, 10)
    took = asyncio.get_running_loop().time() - started
    spool.close()
    return controller, runner, took


async def test_a_lease_answered_just_after_stop_is_run_and_delivered(tmp_path: Path) -> None:
    controller, runner, _ = await stop_while_polling(tmp_path, answer_after=0.2)
    assert runner.ran == ["job-1"]
    assert controller.results["job-1"]["state"] == "done"
    assert controller.results["job-1"]["lease_id"] == "lease-1"


async def test_an_idle_poll_does_not_hold_the_stop_past_the_grace(tmp_path: Path) -> None:
    controller, runner, took = await stop_while_polling(tmp_path, answer_after=STOP_GRACE_S * 5)
    assert runner.ran == []
    assert controller.results == {}
    assert took < STOP_GRACE_S * 3  # not the 10 s the lease answer would have taken
