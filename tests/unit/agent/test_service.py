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


def fake_agent(controller: Any, runner: Any, spool: ResultSpool, **options: Any) -> Agent:
    """An Agent talking to a fake controller and running jobs with a fake runner."""
    client, job_runner = cast(ControllerClient, controller), cast(JobRunner, runner)
    return Agent(client, job_runner, spool, name="edge", version="test", **options)


async def stop_while_polling(tmp_path: Path, answer_after: float) -> tuple[Any, Any, float]:
    controller, runner = LateLeaseController(answer_after), FinishingRunner()
    spool = ResultSpool(tmp_path / "spool.db")
    agent = fake_agent(controller, runner, spool, poll_wait=30)
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


class QueueController(LateLeaseController):
    """Hands out the jobs of its queue one per poll, then has none."""

    def __init__(self, job_ids: list[str]) -> None:
        super().__init__(answer_after=0)
        self.queue = list(job_ids)

    async def next_job(self, wait: int) -> dict[str, Any] | None:
        self.polled.set()
        if not self.queue:
            await asyncio.sleep(min(wait, 0.05))
            return None
        job_id = self.queue.pop(0)
        return {"id": job_id, "lease_id": f"lease-{job_id}", "kind": "scan", "payload": {}}


class MeetingRunner(FinishingRunner):
    """Each job waits until `together` jobs are running at once (or gives up after 2 s), and
    records the most that ever ran together."""

    def __init__(self, together: int) -> None:
        super().__init__()
        self.together = together
        self.running = 0
        self.most = 0
        self.met = asyncio.Event()

    async def run(self, claimed: dict[str, Any], **_: Any) -> Outcome:
        self.running += 1
        self.most = max(self.most, self.running)
        if self.running >= self.together:
            self.met.set()
        try:
            await asyncio.wait_for(self.met.wait(), 2)
        except TimeoutError:
            pass
        finally:
            self.running -= 1
        return await super().run(claimed)


async def run_queue(tmp_path: Path, jobs: int, queued: int) -> tuple[Any, MeetingRunner]:
    controller, runner = QueueController([f"job-{i}" for i in range(queued)]), MeetingRunner(2)
    spool = ResultSpool(tmp_path / "spool.db")
    agent = fake_agent(controller, runner, spool, poll_wait=1, jobs=jobs)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    for _ in range(200):  # until every job's result is delivered, at most 10 s
        if len(controller.results) == queued:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert len(spool) == 0
    spool.close()
    return controller, runner


async def test_an_agent_runs_as_many_jobs_at_once_as_it_is_allowed(tmp_path: Path) -> None:
    controller, runner = await run_queue(tmp_path, jobs=2, queued=4)
    assert runner.most == 2
    assert sorted(controller.results) == [f"job-{i}" for i in range(4)]
    assert {r["state"] for r in controller.results.values()} == {"done"}


async def test_one_job_at_a_time_when_so_told(tmp_path: Path) -> None:
    controller, runner = await run_queue(tmp_path, jobs=1, queued=2)
    assert runner.most == 1  # the first job gave up waiting for a second one
    assert sorted(controller.results) == ["job-0", "job-1"]
