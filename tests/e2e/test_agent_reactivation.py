"""Re-activations and discoveries asked through the API, run by the site's agent (issue 12):
the agent does the device I/O with a credentials file only it holds, the controller keeps the
operation, the key and the one confirmation; a result delivered twice, or a run cut off by an
agent killed right after the device loaded the key, still leaves exactly one confirmation and
an intact chain; a discovery probed by the agent is recorded by the controller."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import simulator.uc_phone_modeled
import simulator.videoos_modeled
from controller.settings import load_settings
from inventory.agent_store import AgentStore
from inventory.database import DatabaseTarget
from inventory.job_store import JobStore
from inventory.key_files import key_ref
from inventory.models import Device
from inventory.schema import confirmations, credential_profiles
from inventory.store import InventoryStore
from inventory.token_store import Role
from simulator.fleet import SITES, generate_fleet
from simulator.licensing import apply_key, effective_state
from simulator.outputs import write_credentials_toml
from simulator.runner import run_fleet
from simulator.state import LicenseState, SimDevice
from tests.e2e.agent_site import (
    ApiServer,
    Gate,
    api_server,
    deliver_after_outage,
    eventually,
    gated,
    site_agent,
)
from tests.e2e.reactivation_fleet import (
    ManagedFleet,
    expired_feature,
    finish,
    issued_keys,
    make_devices,
    managed_fleet,
    operations,
)
from tests.e2e.test_cli_discover import needs_standard_ports

SITE = SITES[0]
PATH = [
    "requested", "eligible", "quoted", "approved", "key_obtained", "applied", "verified",
    "confirmed",
]  # fmt: skip
"""Every state a re-activation passes through, in order."""


@dataclass
class AgentSite:
    """The fleet (its credentials file not imported), the controller's API with the fleet's
    licensing portal, and the device of SITE with an expired feature."""

    fleet: ManagedFleet
    api: ApiServer
    device: SimDevice
    credentials: Path

    @property
    def feature(self) -> str:
        return expired_feature(self.device)


@asynccontextmanager
async def agent_site(
    store: InventoryStore,
    db_target: DatabaseTarget,
    db_url: str,
    tmp_path: Path,
    lease: timedelta | None = None,
) -> AsyncIterator[AgentSite]:
    devices = make_devices(4, expired=2)  # 0 and 2 at SITE, 0 and 1 with an expired feature
    async with managed_fleet(
        tmp_path,
        db_url,
        devices,
        [d.serial for d in devices],
        target=db_target,
        site_credentials=True,
    ) as fleet:
        settings = load_settings(fleet.config)
        async with api_server(store, lease=lease, settings=settings) as api:
            credentials = fleet.work / "fleet.credentials.toml"
            yield AgentSite(fleet, api, devices[0], credentials)


async def confirmation_count(store: InventoryStore) -> int:
    async with store.engine.connect() as conn:
        count = await conn.execute(sa.select(sa.func.count()).select_from(confirmations))
        return int(count.scalar_one())


async def credentials_held(store: InventoryStore) -> int:
    async with store.engine.connect() as conn:
        count = await conn.execute(sa.select(sa.func.count()).select_from(credential_profiles))
        return int(count.scalar_one())


async def test_the_sites_agent_reactivates_with_its_own_credentials_and_the_controller_confirms(
    store: InventoryStore, db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    async with agent_site(store, db_target, db_url, tmp_path) as site:
        api, device = site.api, site.device
        admin = await api.token(Role.ADMIN, name="ops")
        _, created = await api.call(admin, "POST", "/agents", {"name": "edge-a", "site": SITE})
        tech = await api.token(Role.TECHNICIAN, name="tech")
        async with site_agent(api.url, created["token"], tmp_path / "agent", site.credentials):
            # the controller learns the expired feature from the agent's scan ...
            _, scan = await api.call(tech, "POST", "/scans", {"site": SITE})
            assert (await api.finished(tech, scan["job"]))["state"] == "done"
            # ... and re-activates it through the agent, twice asked
            _, first = await api.call(tech, "POST", "/reactivations", {"device": device.serial})
            once = await api.finished(tech, first["job"])
            _, again = await api.call(tech, "POST", "/reactivations", {"device": device.serial})
            twice = await api.finished(tech, again["job"])

        assert (once["state"], once["agent"]) == ("done", created["id"]), once
        (row,) = once["result"]
        assert (row["serial"], row["feature"], row["status"]) == (
            device.serial,
            site.feature,
            "confirmed",
        )
        assert row["confirmation"]["actor"] == "tech (api)"
        assert twice["agent"] == created["id"]
        (repeat,) = [r for r in twice["result"] if r["feature"] == site.feature]
        assert repeat["status"] == "already_confirmed"
        assert repeat["confirmation"]["number"] == row["confirmation"]["number"]
        assert all(r["status"] != "confirmed" for r in twice["result"]), twice["result"]

        license = site.fleet.device(device.serial).licenses[site.feature]
        assert effective_state(license) is LicenseState.ACTIVE
        (issued,) = issued_keys(site.fleet, device.serial)  # the controller got it from the portal
        assert device.applied_keys == [issued]
        assert row["confirmation"]["key_ref"] == key_ref(issued)
        (op,) = await operations(db_target, device.serial)
        assert (op.events, op.confirmation) == (PATH, row["confirmation"]["number"])
        assert await confirmation_count(store) == 1
        assert await credentials_held(store) == 0  # the device credentials stayed at the site
        verified = await site.fleet.cli("confirmations", "verify", portal=False)
        assert verified.code == 0, verified.stdout + verified.stderr


async def test_a_reactivation_result_spooled_while_the_controller_is_down_is_stored_once(
    store: InventoryStore, db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    gate = Gate()
    async with agent_site(store, db_target, db_url, tmp_path) as site:
        api, device = site.api, site.device
        token = await api.token(Role.AGENT, site=SITE, name="edge-a")
        tech = await api.token(Role.TECHNICIAN, name="tech")
        wanted = {"device": device.serial, "feature": site.feature}
        async with site_agent(
            api.url, token, tmp_path / "agent", site.credentials, runner=gated(gate)
        ) as edge:
            _, accepted = await api.call(tech, "POST", "/reactivations", wanted)
            job_id = accepted["job"]

            async def confirmed() -> bool:  # every step was recorded as the agent took it
                return await confirmation_count(store) == 1

            await eventually(confirmed, "the agent's run was confirmed by the controller")
            waiting = await deliver_after_outage(api, edge, gate)
            job = await api.job(tech, job_id)

        assert job["state"] == "done", job
        (row,) = job["result"]
        assert row["status"] == "confirmed"
        status, repeated = await api.call(
            token, "POST", f"/agent/jobs/{job_id}/result", waiting.body
        )
        assert (status, repeated) == (200, {"stored": False})
        assert (await api.job(tech, job_id))["result"] == job["result"]
        assert await confirmation_count(store) == 1
        verified = await site.fleet.cli("confirmations", "verify", portal=False)
        assert verified.code == 0, verified.stdout + verified.stderr


async def test_an_agent_killed_after_the_device_loaded_the_key_leaves_one_confirmation(
    store: InventoryStore, db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    async with agent_site(store, db_target, db_url, tmp_path, lease=timedelta(seconds=2)) as site:
        api, device = site.api, site.device
        dies = await api.token(Role.AGENT, site=SITE, name="dies")
        lives = await api.token(Role.AGENT, site=SITE, name="lives")
        tech = await api.token(Role.TECHNICIAN, name="tech")
        victim: list[asyncio.subprocess.Process] = []

        def apply_then_die(target: SimDevice, secret: bytes, key: str, **kw: Any) -> Any:
            """The device has loaded the key; the agent dies before it can report so."""
            outcome = apply_key(target, secret, key, **kw)
            if target.serial == device.serial and victim:
                os.kill(victim[0].pid, signal.SIGKILL)
            return outcome

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(simulator.uc_phone_modeled, "apply_key", apply_then_die)
            patch.setattr(simulator.videoos_modeled, "apply_key", apply_then_die)
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "controller.cli", "agent", "run",
                "--controller", api.url, "--credentials", str(site.credentials),
                "--spool", str(tmp_path / "dies" / "spool.db"), "--poll-wait", "1",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "POLYFLEET_AGENT_TOKEN": dies},
            )  # fmt: skip
            victim.append(process)
            wanted = {"device": device.serial, "feature": site.feature}
            _, accepted = await api.call(tech, "POST", "/reactivations", wanted)
            killed = await finish(process)
        assert killed.code == -signal.SIGKILL, killed.stderr
        assert len(device.applied_keys) == 1
        (op,) = await operations(db_target, device.serial)
        assert op.state == "key_obtained"  # the controller never heard the key was applied

        job_id = accepted["job"]
        async with site_agent(api.url, lives, tmp_path / "lives", site.credentials):
            job = await api.finished(tech, job_id)  # once the dead agent's lease ran out

        survivor = await AgentStore(store.engine).list_agents()
        assert job["agent"] == next(a.id for a in survivor if a.name == "edge")
        assert (await JobStore(store.engine).get(job_id)).attempts == 2
        assert job["state"] == "done", job
        (row,) = job["result"]
        assert (row["status"], row["operation"]) == ("confirmed", op.id)
        assert len(device.applied_keys) == 1  # the rerun saw the key active: not applied again
        (issued,) = issued_keys(site.fleet, device.serial)
        assert row["confirmation"]["key_ref"] == key_ref(issued)
        (op,) = await operations(db_target, device.serial)
        assert op.events == PATH
        assert op.details[PATH.index("applied")] == "device already reports it active"
        assert await confirmation_count(store) == 1
        verified = await site.fleet.cli("confirmations", "verify", portal=False)
        assert verified.code == 0, verified.stdout + verified.stderr


DISCOVERY_BASE = "127.89.0.1"
"""This module's discovery addresses (127.89.0.0/29); no other test uses 127.89.0.x."""


async def test_a_discovery_probed_by_the_agent_is_recorded_by_the_controller_once(
    store: InventoryStore, tmp_path: Path
) -> None:
    devices = generate_fleet(4, {"vvx": 2, "studiox": 2}, seed=89, base_address=DISCOVERY_BASE)
    credentials = tmp_path / "site.credentials.toml"
    write_credentials_toml(credentials, "456")
    gate = Gate()
    async with run_fleet(devices, seed=89, ssh=False) as running, api_server(store) as api:
        needs_standard_ports(running)
        admin = await api.token(Role.ADMIN, name="ops")
        token = await api.token(Role.AGENT, site=SITE, name="edge-a")
        wanted = {"cidrs": ["127.89.0.0/29"], "site": SITE}
        async with site_agent(
            api.url, token, tmp_path / "agent", credentials, runner=gated(gate)
        ) as edge:
            _, accepted = await api.call(admin, "POST", "/discoveries", wanted)
            job_id = accepted["job"]
            waiting = await deliver_after_outage(api, edge, gate)
            job = await api.job(admin, job_id)

        assert job["state"] == "done", job
        rows = {row["address"]: row for row in job["result"]}
        assert len(rows) == 6  # every host address of the /29
        for device in devices:
            row = rows[device.host]
            assert (row["outcome"], row["action"], row["serial"]) == (
                "found",
                "added",
                device.serial,
            ), row
        recorded = {d.serial: d for d in await store.list_devices()}
        assert sorted(recorded) == sorted(d.serial for d in devices)
        for device in devices:
            record = recorded[device.serial]
            assert (record.site, record.host) == (SITE, device.host)
            assert record.credentials in ("sim-uc", "sim-admin")  # the name, never the secret
        assert await credentials_held(store) == 0

        status, repeated = await api.call(
            token, "POST", f"/agent/jobs/{job_id}/result", waiting.body
        )
        assert (status, repeated) == (200, {"stored": False})
        assert (await api.job(admin, job_id))["result"] == job["result"]
        assert len(await store.list_devices()) == len(devices)


async def test_a_reactivation_run_whose_lease_was_taken_over_reports_nothing(
    store: InventoryStore,
) -> None:
    """Its operations are the next run's to resume: only that run's report is the job's."""
    device = Device(serial="SS2-0042", model="SoundStation 2", site=SITE)
    await store.upsert_devices([device])
    async with api_server(store, lease=timedelta(seconds=1)) as api:
        tech = await api.token(Role.TECHNICIAN)
        cut_off = await api.token(Role.AGENT, site=SITE, name="cut-off")
        next_run = await api.token(Role.AGENT, site=SITE, name="next")
        wanted = {"device": device.serial, "feature": "base"}
        _, accepted = await api.call(tech, "POST", "/reactivations", wanted)
        job_id = accepted["job"]
        status, first = await api.call(cut_off, "GET", "/agent/jobs?wait=0")
        assert (status, first["id"], first["payload"]["features"]) == (200, job_id, ["base"])
        second: dict[str, Any] = {}

        async def taken_over() -> bool:
            status, doc = await api.call(next_run, "GET", "/agent/jobs?wait=0")
            second.update(doc if status == 200 else {})
            return status == 200

        await eventually(taken_over, "the expired lease put the job back for the next run")
        late = {"lease_id": first["lease_id"], "state": "done", "result": [{"status": "held"}]}
        assert await api.call(cut_off, "POST", f"/agent/jobs/{job_id}/result", late) == (
            200,
            {"stored": False},
        )
        assert (await api.job(tech, job_id))["state"] == "running"
        ledger_call = {
            "lease_id": first["lease_id"],
            "call": {"call": "survey", "serial": device.serial, "feature": "base"},
        }
        status, _ = await api.call(cut_off, "POST", f"/agent/jobs/{job_id}/ledger", ledger_call)
        assert status == 409  # the cut-off run can record nothing more either
        body = {"lease_id": second["lease_id"], "state": "done", "result": []}
        assert await api.call(next_run, "POST", f"/agent/jobs/{job_id}/result", body) == (
            200,
            {"stored": True},
        )
        assert (await api.job(tech, job_id))["result"] == []
