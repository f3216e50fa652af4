"""Scale-out (issue 12 item 5), on PostgreSQL: two `polyfleet serve` processes share one store,
three `polyfleet agent run` processes serve three simulated sites, each told both controller
URLs, and a fourth site has no agent. The agents run their sites' re-activations (reporting
each step to either controller), scans and probes; the controllers run the fourth site's. Mid-run
one controller and one agent are killed with SIGKILL and the agent is restarted. Every job still
ends done with its result stored once, every expired feature is confirmed exactly once, and
`confirmations verify` passes.

The issue's fleet, 300 devices, takes about 80 s; POLYFLEET_SCALE_DEVICES=24 runs a quick one
while working on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from inventory.agent_store import AgentStore
from inventory.database import DatabaseTarget, resolve_db
from inventory.schema import confirmations, jobs
from inventory.store import InventoryStore
from inventory.token_store import Role, TokenStore
from simulator.fleet import SITES
from simulator.licensing import effective_state
from simulator.state import LicenseState
from tests.conftest import pg_url
from tests.e2e.agent_site import BOUND_S, ApiServer, eventually
from tests.e2e.reactivation_fleet import expired_feature, make_devices, managed_fleet

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DEVICES = int(os.environ.get("POLYFLEET_SCALE_DEVICES", "300"))
EXPIRED = max(3, DEVICES // 5)
LEASE_S = 4
LATENCY_S = 0.3
LISTENING = re.compile(r"listening on (http://\S+)")


@dataclass
class Process:
    """A polyfleet subprocess whose stderr is collected as it runs (so its pipe never fills)."""

    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, *args: str, env: dict[str, str]) -> Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "controller.cli", *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, **env},
        )  # fmt: skip
        started = cls(proc)
        started.reader = asyncio.create_task(started._read())
        return started

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            self.lines.append(line.decode(errors="replace"))

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> int:
        """SIGTERM, then wait (SIGKILL if it does not stop within the bound)."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), BOUND_S)
        except TimeoutError:
            await self.kill()
        if self.reader is not None:
            await self.reader
        assert self.proc.returncode is not None
        return self.proc.returncode


async def serve(db: str, config: Path) -> tuple[Process, str]:
    process = await Process.start(
        "--db", db, "--config", str(config), "serve", "--port", "0",
        env={"POLYFLEET_SERVE__JOB_LEASE": str(LEASE_S)},
    )  # fmt: skip
    url: list[str] = []

    async def listening() -> bool:
        if process.proc.returncode is not None:
            raise AssertionError(f"serve exited: {process.stderr}")
        found = LISTENING.search(process.stderr)
        if found:
            url.append(found.group(1))
        return bool(found)

    await eventually(listening, "serve listens")
    return process, url[0]


async def agent(urls: list[str], token: str, work: Path, credentials: Path) -> Process:
    args = ["agent", "run", "--credentials", str(credentials), "--spool", str(work / "spool.db")]
    for url in urls:
        args += ["--controller", url]
    return await Process.start(*args, "--poll-wait", "1", env={"POLYFLEET_AGENT_TOKEN": token})


@contextlib.asynccontextmanager
async def stopping(processes: list[Process]) -> AsyncIterator[list[Process]]:
    try:
        yield processes
    finally:
        for process in processes:
            await process.stop()


async def test_two_controllers_three_agents_survive_sigkill_with_every_job_once(
    pg_schema: str, tmp_path: Path
) -> None:
    target: DatabaseTarget = resolve_db(pg_url(), schema=pg_schema)
    db = f"{pg_url()}?schema={pg_schema}"
    devices = make_devices(DEVICES, expired=EXPIRED)
    for index, device in enumerate(devices):
        device.site = SITES[index % 4]  # SITES[3] has no agent: its jobs are the controllers'
    expired = devices[:EXPIRED]
    async with (
        managed_fleet(tmp_path, db, devices, [d.serial for d in devices], target=target) as fleet,
        await InventoryStore.open(target) as store,
    ):
        for device in devices:
            device.faults.latency_s = LATENCY_S
        credentials = fleet.work / "fleet.credentials.toml"
        tokens = TokenStore(store.engine)
        made = [await tokens.create(Role.AGENT, site=SITES[i], name=f"edge-{i}") for i in range(3)]
        agent_tokens = [secret for _, secret in made]
        _, tech = await tokens.create(Role.TECHNICIAN, name="tech")

        first, url1 = await serve(db, fleet.config)
        second, url2 = await serve(db, fleet.config)
        api1, api2 = ApiServer(store), ApiServer(store)
        api1.port, api2.port = int(url1.rsplit(":", 1)[1]), int(url2.rsplit(":", 1)[1])
        work = [tmp_path / f"agent-{i}" for i in range(3)]
        agents = [
            await agent(
                [url1, url2] if i % 2 else [url2, url1], agent_tokens[i], work[i], credentials
            )
            for i in range(3)
        ]
        processes = [first, second, *agents]
        async with stopping(processes):

            async def enrolled() -> bool:
                listed = await AgentStore(store.engine).list_agents()
                return sum(a.enrolled_at is not None for a in listed) == 3

            await eventually(enrolled, "the three agents enrolled")  # else controllers scan
            job_ids: list[str] = []
            reactivations: dict[str, str] = {}
            for index, device in enumerate(expired):  # run by the site's agent, if it has one
                api = api1 if index % 2 else api2
                status, accepted = await api.call(
                    tech, "POST", "/reactivations", {"device": device.serial}
                )
                assert status == 202, accepted
                job_ids.append(accepted["job"])
                reactivations[accepted["job"]] = device.site
            for round_ in range(3):  # scans and probes likewise
                for site in SITES[:4]:
                    api = api1 if round_ % 2 else api2
                    status, accepted = await api.call(tech, "POST", "/scans", {"site": site})
                    assert status == 202, accepted
                    job_ids.append(accepted["job"])
            for device in devices[EXPIRED : EXPIRED + 6]:
                status, accepted = await api2.call(
                    tech, "POST", "/probes", {"device": device.serial}
                )
                assert status == 202, accepted
                job_ids.append(accepted["job"])

            doomed_agent = (await AgentStore(store.engine).by_token(made[0][0].id)).id
            doomed_controller = f"controller:{socket.gethostname()}/{first.proc.pid}"

            async def busy() -> bool:
                """Both victims hold a job: killing them interrupts work in flight."""
                states = await _job_states(store)
                held = {
                    holder: job
                    for job, (state, holder) in states.items()
                    if state == "running" and holder in (doomed_agent, doomed_controller)
                }
                return len(held) == 2

            try:
                await eventually(busy, "controllers and agents are working on jobs")
            except AssertionError as exc:
                logs = "\n".join(p.stderr[-3000:] for p in processes)
                raise AssertionError(f"{exc}: {await _job_states(store)}\n{logs}") from None
            await first.kill()  # SIGKILL one controller ...
            await agents[0].kill()  # ... and one agent
            cut_off = [  # what the dead controller held: only a lease expiry can finish it
                job
                for job, (state, holder) in (await _job_states(store)).items()
                if state == "running" and holder == doomed_controller
            ]
            agents[0] = await agent([url1, url2], agent_tokens[0], work[0], credentials)
            processes.append(agents[0])

            async def all_done() -> bool:
                states = await _job_states(store)
                return all(states[j][0] in ("done", "failed") for j in job_ids)

            await eventually(all_done, "every job finished")

        states = await _job_states(store)
        failed = {j: s for j, s in states.items() if s[0] != "done"}
        if failed:
            async with store.engine.connect() as conn:
                why = await conn.execute(
                    sa.select(jobs.c.id, jobs.c.kind, jobs.c.site, jobs.c.error).where(
                        jobs.c.id.in_(failed)
                    )
                )
                raise AssertionError(f"jobs failed: {why.all()}")
        async with store.engine.connect() as conn:
            retried = await conn.execute(
                sa.select(jobs.c.id, jobs.c.attempts).where(jobs.c.id.in_(cut_off))
            )
            # the killed controller's jobs went back to the queue and the other one finished them
            assert all(attempts >= 2 for _, attempts in retried), cut_off
        async with store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(jobs.c.id, jobs.c.kind, jobs.c.result, jobs.c.lease_agent)
                )
            ).all()
            confirmed = Counter(
                (serial, feature)
                for serial, feature in (
                    await conn.execute(sa.select(confirmations.c.serial, confirmations.c.feature))
                ).all()
            )
        assert len(rows) == len(job_ids)
        ran_by = {r.id: r.lease_agent for r in rows}
        by_controller = {j for j, site in reactivations.items() if site == SITES[3]}
        assert by_controller
        assert all(ran_by[j].startswith("controller:") for j in by_controller), ran_by
        by_agents = set(reactivations) - by_controller  # the agent sites' devices, at the site
        assert all(not ran_by[j].startswith("controller:") for j in by_agents), ran_by
        assert confirmed == Counter((d.serial, expired_feature(d)) for d in expired)
        for device in expired:
            lic = fleet.device(device.serial).licenses[expired_feature(device)]
            assert effective_state(lic) is LicenseState.ACTIVE, device.serial
        scans = [r for r in rows if r.kind == "scan"]
        assert all(isinstance(r.result, list) and r.result for r in scans)
        verified = await fleet.cli("confirmations", "verify", portal=False)
        assert verified.code == 0, verified.stderr
        for process in processes:
            assert "Traceback" not in process.stderr, process.stderr


async def _job_states(store: InventoryStore) -> dict[str, tuple[str, str | None]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(sa.select(jobs.c.id, jobs.c.state, jobs.c.lease_agent))
        return {job_id: (state, agent) for job_id, state, agent in rows}
