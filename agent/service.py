"""The agent's main loop: enrol, long-poll for jobs, run each, deliver its result exactly once.

A re-activation job reports each of its steps to the controller while it runs (agent.ledger);
its result, like every other, goes through the spool.

Every result is spooled before it is sent and removed from the spool only once a controller has
answered for it, so a controller that is down (or an agent restarted) loses nothing: spooled
results go out oldest first when a controller answers again. Reconnection backs off
exponentially with full jitter and moves through every controller URL. Stopping (SIGTERM) ends
polling (a poll already answered by a lease still brings its job), finishes the jobs in hand,
and delivers what it can before exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from agent.client import (
    Backoff,
    ControllerClient,
    ControllerUnreachable,
    LeaseGone,
    ResultRejected,
)
from agent.ledger import RemoteLedger
from agent.runner import JobRunner
from agent.spool import ResultSpool
from inventory.job_store import JobState

log = logging.getLogger("polyfleet.agent")
T = TypeVar("T")

STOP_GRACE_S = 2.0
"""On stop, how long a poll in flight may still bring the job the controller has just leased
to this agent: that job is then run and delivered now, not left to expire back to the queue."""


class Agent:
    """One agent process: `await Agent(...).run(stop)` until `stop` is set."""

    def __init__(
        self,
        client: ControllerClient,
        runner: JobRunner,
        spool: ResultSpool,
        *,
        name: str,
        version: str,
        backoff: Backoff | None = None,
        poll_wait: int | None = None,
        jobs: int = 1,
    ) -> None:
        if jobs < 1:
            raise ValueError("an agent runs at least one job at a time")
        self.client = client
        self.runner = runner
        self.spool = spool
        self.name = name
        self.version = version
        self.backoff = backoff or Backoff()
        self.poll_wait = poll_wait
        self.lease_seconds = 60
        self.site: str | None = None
        self._stop = asyncio.Event()
        self._slots = asyncio.Semaphore(jobs)
        self._delivering = asyncio.Lock()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set, up to `jobs` jobs at once (a technician's re-activation does
        not wait behind the nightly scan); raises AgentRefused when the controller refuses the
        token. Stopping waits for every job in hand."""
        self._stop = stop
        await self._until_answered(self._enrol)
        async with asyncio.TaskGroup() as in_hand:
            while await self._free_slot():
                await self._until_answered(self.deliver)
                claimed = await self._until_answered(self._poll)
                if claimed is None:
                    self._slots.release()
                    continue
                in_hand.create_task(self._work_in_slot(claimed))
        with contextlib.suppress(ControllerUnreachable):  # a last try; the spool keeps the rest
            await self.deliver()

    async def _free_slot(self) -> bool:
        """Wait until fewer than `jobs` jobs run; False (holding no slot) once stopping."""
        acquiring = asyncio.ensure_future(self._slots.acquire())
        stopping = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not self._stop.is_set():
            return True
        if acquiring.done():
            self._slots.release()
        else:
            acquiring.cancel()
        return False

    async def _work_in_slot(self, claimed: dict[str, Any]) -> None:
        try:
            await self.work(claimed)
        except Exception:  # a spool or agent bug: this job's, never its siblings' end
            log.exception("job %s: the agent failed around it", claimed.get("id"))
        finally:
            self._slots.release()

    async def _enrol(self) -> None:
        answer = await self.client.enrol(self.name, self.version)
        self.site = str(answer["site"])
        self.lease_seconds = int(answer.get("lease_seconds") or 60)
        if self.poll_wait is None:
            self.poll_wait = int(answer.get("poll_wait") or 30)
        log.info(
            "enrolled at %s as agent %s of site %s", self.client.url, answer["agent_id"], self.site
        )

    async def _poll(self) -> dict[str, Any] | None:
        wait = self.poll_wait if self.poll_wait is not None else 30
        polling = asyncio.ensure_future(self.client.next_job(wait))
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({polling, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not polling.done():  # stopping: a lease granted just now is answered within the grace
            await asyncio.wait({polling}, timeout=STOP_GRACE_S)
        if not polling.done():  # a job leased after this expires back to the queue
            polling.cancel()
            with contextlib.suppress(asyncio.CancelledError, ControllerUnreachable):
                await polling
            return None
        return polling.result()

    async def _until_answered(self, step: Callable[[], Awaitable[T]]) -> T | None:
        """Run `step` until a controller answers, backing off and moving through the URLs;
        None if stopped before that."""
        attempt = 0
        while True:
            try:
                return await step()
            except ControllerUnreachable as exc:
                delay = self.backoff.delay(attempt)
                log.warning("controller unreachable (%s); retrying in %.1f s", exc, delay)
                self.client.rotate()
                attempt += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                if self._stop.is_set():
                    return None

    async def work(self, claimed: dict[str, Any]) -> None:
        """Run a claimed job under its lease, spool its result, try to deliver it."""
        job_id, lease_id = str(claimed["id"]), str(claimed["lease_id"])
        log.info("job %s (%s) claimed", job_id, claimed.get("kind"))
        progress: list[tuple[int, int]] = []
        renewer = asyncio.create_task(self._renew(job_id, lease_id, progress))
        ledger = RemoteLedger(
            self.client, job_id, lease_id, patience=self.lease_seconds, backoff=self.backoff
        )
        try:
            state, result, error = await self.runner.run(
                claimed,
                on_progress=lambda done, total: progress.append((done, total)),
                ledger=ledger,
            )
        except Exception as exc:  # a bug in one job must not stop the agent
            log.exception("job %s failed unexpectedly", job_id)
            state, result = JobState.FAILED, None
            error = f"unexpected error: {type(exc).__name__}: {exc}"
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        body = {"lease_id": lease_id, "state": state.value, "result": result, "error": error}
        self.spool.put(job_id, body)
        log.info("job %s %s; result spooled", job_id, state)
        with contextlib.suppress(ControllerUnreachable):
            await self.deliver()

    async def _renew(self, job_id: str, lease_id: str, progress: list[tuple[int, int]]) -> None:
        """Keep the lease while the job runs; an unreachable controller does not stop the job
        (its result is spooled), a lost lease is only logged: the result is still delivered."""
        while True:
            await asyncio.sleep(max(1.0, self.lease_seconds / 3))
            try:
                await self.client.renew(job_id, lease_id, progress[-1] if progress else None)
            except LeaseGone:
                log.warning("job %s: lease lost; finishing it and delivering the result", job_id)
                return
            except ControllerUnreachable as exc:
                log.warning("job %s: lease not renewed (%s)", job_id, exc)
                self.client.rotate()

    async def deliver(self) -> int:
        """Send every spooled result, oldest first; how many went out. Raises
        ControllerUnreachable (the rest stay spooled) when no controller answers. One delivery
        at a time: jobs finishing together do not send the same result twice."""
        async with self._delivering:
            return await self._deliver_spooled()

    async def _deliver_spooled(self) -> int:
        sent = 0
        for spooled in self.spool.pending():
            try:
                stored = await self.client.post_result(spooled.job_id, spooled.body)
            except ResultRejected as exc:
                log.error(
                    "job %s: the controller rejects its result (%s); dropped", spooled.job_id, exc
                )
                self.spool.delivered(spooled.job_id)
                continue
            self.spool.delivered(spooled.job_id)
            sent += 1
            log.info(
                "job %s: result %s",
                spooled.job_id,
                "stored" if stored else "already stored (not stored again)",
            )
        return sent
