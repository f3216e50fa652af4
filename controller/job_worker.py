"""The controller's own job worker, inside `serve`: it runs the jobs no agent will.

That is every job of a site without a live agent (none seen within `agent_fresh`) or of no
site at all; a site's agent runs every kind of its site's jobs (re-activations reporting to
the controller's ledger, controller.agent_ledger). Each claim is a lease renewed while the job
runs, so a controller killed mid-job leaves a lease that expires and another controller (or
this one, restarted) takes the job again: a re-activation then resumes its persisted operation
rather than repeating it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

from aiohttp import web

from controller.entitlements import provider_from_settings
from controller.jobs import JobFailed, ReactivationSetup, run_job
from controller.policy import load_policy
from controller.settings import PolyfleetSettings
from inventory.job_store import (
    DEFAULT_LEASE,
    ClaimScope,
    Job,
    JobKind,
    JobState,
    JobStore,
    LeaseLost,
)
from inventory.store import InventoryStore

log = logging.getLogger("polyfleet.jobs")

AGENT_FRESH = timedelta(seconds=90)
"""An agent not seen for this long no longer counts: its site's new jobs run at the controller."""


def worker_name() -> str:
    """Who holds a lease taken by this controller process: host/pid."""
    return f"controller:{socket.gethostname()}/{os.getpid()}"


class JobWorker:
    """Claims and runs jobs, `concurrency` at a time, until `stop` is set (then drains)."""

    def __init__(
        self,
        store: InventoryStore,
        *,
        reactivation: ReactivationSetup | None,
        concurrency: int = 4,
        poll: float = 1.0,
        agent_fresh: timedelta = AGENT_FRESH,
        name: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
    ) -> None:
        self.store = store
        self.jobs = JobStore(store.engine, lease=lease)
        self.reactivation = reactivation
        self.concurrency = concurrency
        self.poll = poll
        self.agent_fresh = agent_fresh
        self.name = name or worker_name()

    async def claim(self) -> Job | None:
        unattended = datetime.now(UTC) - self.agent_fresh
        return await self.jobs.claim(ClaimScope(unattended_since=unattended), self.name)

    async def run(self, stop: asyncio.Event) -> None:
        """Claim while there is room and work; wait `poll` when there is none."""
        running: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                job = await self.claim() if len(running) < self.concurrency else None
                if job is not None:
                    task = asyncio.create_task(self.execute(job))
                    running.add(task)
                    task.add_done_callback(running.discard)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll)
        finally:
            if running:  # drain: finish what was claimed (its lease is ours)
                await asyncio.gather(*running, return_exceptions=True)

    async def execute(self, job: Job) -> None:
        """Run a claimed job under its lease and store its outcome once."""
        assert job.lease_id is not None
        renewer = asyncio.create_task(self._renew(job.id, job.lease_id))
        state, result, error = JobState.DONE, None, None
        try:
            setup = self.reactivation
            result = await run_job(
                self.store,
                job,
                ledger=setup.ledger(self.store, job) if setup is not None else None,
                on_progress=_progress_writer(self.jobs, job),
            )
        except JobFailed as exc:
            state, error = JobState.FAILED, str(exc)
        except Exception as exc:  # one job's bug must not stop the worker
            log.exception("job %s failed unexpectedly", job.id)
            state, error = JobState.FAILED, f"unexpected error: {type(exc).__name__}: {exc}"
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        # A re-activation's outcome is stored only while the run still holds the job: once
        # its lease was taken over, the run that took it resumes the operations and reports.
        only = job.lease_id if job.kind is JobKind.REACTIVATION else None
        if not await self.jobs.complete(
            job.id, state=state, result=result, error=error, lease_id=only
        ):
            log.warning("job %s: its outcome was not stored (finished or taken over)", job.id)

    async def _renew(self, job_id: str, lease_id: str) -> None:
        interval = self.jobs.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self.jobs.renew(job_id, lease_id)
            except LeaseLost:
                log.warning("job %s: lease lost while running", job_id)
                return


def _progress_writer(jobs: JobStore, job: Job) -> Callable[[int, int], None]:
    """Progress written in the background, at most one write in flight (the latest wins)."""
    assert job.lease_id is not None
    lease_id = job.lease_id
    latest: list[tuple[int, int]] = []
    writing: list[asyncio.Task[None]] = []

    async def write() -> None:
        while latest:
            done, total = latest.pop()
            latest.clear()
            await jobs.report_progress(job.id, lease_id, done, total)

    def hear(done: int, total: int) -> None:
        latest.append((done, total))
        if not writing or writing[0].done():
            writing[:] = [asyncio.get_running_loop().create_task(_quiet(write()))]

    return hear


async def _quiet(coro: Awaitable[None]) -> None:
    try:
        await coro
    except Exception:
        log.debug("progress not written", exc_info=True)


def controller_worker(store: InventoryStore, settings: PolyfleetSettings) -> JobWorker:
    """The worker of `polyfleet serve`, with the policy and licensing portal of its settings;
    PolicyError or EntitlementUnavailable when those cannot be loaded."""
    setup = ReactivationSetup(
        policy=load_policy(settings.policy), provider=provider_from_settings(settings.portal)
    )
    return JobWorker(store, reactivation=setup, lease=timedelta(seconds=settings.serve.job_lease))


def attach_job_worker(app: web.Application, worker: JobWorker) -> None:
    """Run `worker` for as long as `app` serves (`polyfleet serve`); on shutdown it stops
    claiming and finishes the jobs in hand (graceful shutdown)."""

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        yield
        stop.set()
        await task

    app.cleanup_ctx.append(lifetime)
