"""A controller API served on loopback (stoppable and restartable on the same port) and an
in-process site agent, for the job tests against simulated fleets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from agent.client import Backoff, ControllerClient
from agent.runner import JobRunner, Outcome
from agent.service import Agent
from agent.spool import ResultSpool, Spooled
from agent.trust import ControllerTrust
from controller.api.app import create_app
from controller.api.auth import FailedAuthThrottle
from controller.api.routes.agents import JOB_LEASE
from controller.cli.credentials_cmd import load_profiles_file
from controller.jobs import Progress
from controller.reactivation import Ledger
from controller.settings import PolyfleetSettings
from inventory.database import resolve_db
from inventory.store import InventoryStore
from inventory.token_store import Role, TokenStore

BOUND_S = 90.0
"""How long `eventually` waits for a condition before the test fails (a liveness bound, far
above what any step takes, not a timing assertion)."""


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait until `check()` holds; fail naming `what` if it never does within BOUND_S."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BOUND_S
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)


@dataclass
class ApiServer:
    """The API app over `store` on 127.0.0.1; `stop()` and `start()` again keep the port.
    `settings` give the controller its policy and licensing portal (re-activations)."""

    store: InventoryStore
    lease: timedelta | None = None
    settings: PolyfleetSettings | None = None
    port: int = 0
    _runner: web.AppRunner | None = None
    app: web.Application = field(init=False)

    def __post_init__(self) -> None:
        self.app = self._make_app()

    def _make_app(self) -> web.Application:
        app = create_app(
            self.store, settings=self.settings, throttle=FailedAuthThrottle(limit=1000, window=60)
        )
        if self.lease is not None:
            app[JOB_LEASE] = self.lease
        return app

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        if self._runner is not None:
            return
        if self.app.frozen:
            self.app = self._make_app()
        runner = web.AppRunner(self.app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        await site.start()
        self.port = runner.addresses[0][1]
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def token(self, role: Role, site: str | None = None, name: str | None = None) -> str:
        _, secret = await TokenStore(self.store.engine).create(role, site=site, name=name)
        return secret

    async def call(self, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One API request as a script makes it: (status, JSON body or None)."""
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method,
                f"{self.url}/api/v1{path}",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            ) as response,
        ):
            text = await response.text()
            return response.status, json.loads(text) if text else None

    async def job(self, token: str, job_id: str) -> dict[str, Any]:
        status, doc = await self.call(token, "GET", f"/jobs/{job_id}")
        assert status == 200, doc
        return dict(doc)

    async def finished(self, token: str, job_id: str) -> dict[str, Any]:
        """The job once it is done or failed."""
        found: dict[str, Any] = {}

        async def done() -> bool:
            found.update(await self.job(token, job_id))
            return found["state"] in ("done", "failed")

        await eventually(done, f"job {job_id} finished")
        return found


@asynccontextmanager
async def api_server(
    store: InventoryStore,
    lease: timedelta | None = None,
    settings: PolyfleetSettings | None = None,
) -> AsyncIterator[ApiServer]:
    server = ApiServer(store, lease, settings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@dataclass
class RunningAgent:
    agent: Agent
    spool: ResultSpool
    local: InventoryStore


@dataclass
class Gate:
    """Holds each finished job's outcome at the agent until the test opens it: `reached` is
    set once an outcome waits (the job's work, and its reports to the controller, are over)."""

    reached: asyncio.Event = field(default_factory=asyncio.Event)
    opened: asyncio.Event = field(default_factory=asyncio.Event)


class GatedRunner(JobRunner):
    """A runner whose outcomes wait at `gate`."""

    gate: Gate

    async def run(
        self,
        claimed: dict[str, Any],
        on_progress: Progress | None = None,
        ledger: Ledger | None = None,
    ) -> Outcome:
        outcome = await super().run(claimed, on_progress, ledger)
        self.gate.reached.set()
        await self.gate.opened.wait()
        return outcome


def gated(gate: Gate) -> Callable[[InventoryStore, Any], JobRunner]:
    """A `site_agent` runner whose outcomes wait at `gate` (to stop the controller first)."""

    def make(local: InventoryStore, profiles: Any) -> JobRunner:
        runner = GatedRunner(local, profiles)
        runner.gate = gate
        return runner

    return make


@asynccontextmanager
async def site_agent(
    url: str,
    token: str,
    work: Path,
    credentials: Path,
    *,
    runner: Callable[[InventoryStore, Any], JobRunner] = JobRunner,
) -> AsyncIterator[RunningAgent]:
    """An agent in this process with its own spool, local store and credentials file; stopped
    (as SIGTERM stops one) when the block ends."""
    profiles = {p.name: p for p in load_profiles_file(credentials)}
    spool = ResultSpool(work / "spool.db")
    trust = ControllerTrust(ca_bundle=None, pin_file=work / "pins.json")
    async with (
        await InventoryStore.open(resolve_db(str(work / "agent-inventory.db"))) as local,
        ControllerClient([url], token, trust=trust, request_timeout=10) as client,
    ):
        agent = Agent(
            client,
            runner(local, profiles),
            spool,
            name="edge",
            version="test",
            poll_wait=1,
            backoff=Backoff(base=0.05, cap=0.25),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        try:
            yield RunningAgent(agent, spool, local)
        finally:
            stop.set()
            await asyncio.wait_for(task, BOUND_S)
            spool.close()


async def deliver_after_outage(api: ApiServer, edge: RunningAgent, gate: Gate) -> Spooled:
    """Once the agent's job has reached `gate`, the controller goes away and the gate opens:
    the job's result waits in the spool until the controller is back on the same address and it
    is delivered. The result as it was spooled (to send it again)."""
    await asyncio.wait_for(gate.reached.wait(), BOUND_S)
    await api.stop()
    gate.opened.set()

    async def spooled() -> bool:
        return len(edge.spool) == 1

    await eventually(spooled, "the finished job's result waits in the spool")
    (waiting,) = edge.spool.pending()
    await api.start()

    async def delivered() -> bool:
        return len(edge.spool) == 0

    await eventually(delivered, "the spooled result was delivered")
    return waiting
