"""`polyfleet agent run` as a real process: it takes its token from the environment (never
printed), runs its site's scan, and on SIGTERM finishes the job in hand and delivers its result
before it exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from inventory.store import InventoryStore
from inventory.token_store import Role
from simulator.fleet import SITES
from simulator.outputs import write_credentials_toml, write_inventory_csv
from simulator.runner import run_fleet
from tests.e2e.agent_site import BOUND_S, api_server, eventually
from tests.e2e.cli import polyfleet
from tests.e2e.reactivation_fleet import make_devices

SLOW_S = 0.7
"""Each simulated device answers this late, so the scan is surely in flight at SIGTERM."""


async def test_sigterm_lets_the_agent_finish_and_deliver_the_job_in_hand(
    store: InventoryStore, db_url: str, tmp_path: Path
) -> None:
    devices = make_devices(4, expired=0)
    site = SITES[0]
    async with (
        run_fleet(devices, loopback_only=True, snmp=True, ssh=False) as running,
        api_server(store) as api,
    ):
        for device in devices:
            device.faults.latency_s = SLOW_S
        inventory, credentials = tmp_path / "fleet.csv", tmp_path / "site.credentials.toml"
        write_inventory_csv(inventory, devices, running.endpoints)
        write_credentials_toml(credentials, "456")
        done = await asyncio.to_thread(polyfleet, db_url, "inventory", "import", str(inventory))
        assert done.code == 0, done.stderr
        token = await api.token(Role.AGENT, site=site, name="edge")
        tech = await api.token(Role.TECHNICIAN)

        agent = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "controller.cli", "agent", "run",
            "--controller", api.url, "--credentials", str(credentials),
            "--spool", str(tmp_path / "agent" / "spool.db"), "--poll-wait", "1",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "POLYFLEET_AGENT_TOKEN": token},
        )  # fmt: skip
        try:
            _, accepted = await api.call(tech, "POST", "/scans", {"site": site})
            job_id = accepted["job"]

            async def running_at_agent() -> bool:
                return bool((await api.job(tech, job_id))["state"] == "running")

            await eventually(running_at_agent, "the agent process claimed the scan")
            agent.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(agent.communicate(), BOUND_S)
        finally:
            if agent.returncode is None:
                agent.kill()
                await agent.wait()

        stderr = err.decode()
        assert agent.returncode == 0, stderr
        assert "Traceback" not in stderr
        assert token not in stderr + out.decode()
        assert "agent stopped" in stderr
        job = await api.job(tech, job_id)
        assert job["state"] == "done", (job, stderr)
        expected = sorted(d.serial for d in devices if d.site == site)
        assert sorted(row["serial"] for row in job["result"]) == expected
        assert all(row["reachable"] for row in job["result"]), [
            (r["error_kind"], r["error"]) for r in job["result"]
        ]
