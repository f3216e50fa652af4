"""Jobs through the HTTP API with a site agent against a simulated fleet on loopback: the agent
runs its site's jobs with credentials only it holds, results made while the controller is down
are spooled and stored exactly once, an abandoned lease puts its job back, roles and sites are
enforced on the agent routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from inventory.observation_store import ObservationStore
from inventory.schema import credential_profiles
from inventory.store import InventoryStore
from inventory.token_store import Role
from simulator.fleet import SITES
from simulator.outputs import write_credentials_toml, write_inventory_csv
from simulator.runner import RunningFleet, run_fleet
from simulator.state import SimDevice
from tests.e2e.agent_site import (
    Gate,
    api_server,
    deliver_after_outage,
    eventually,
    gated,
    site_agent,
)
from tests.e2e.cli import polyfleet
from tests.e2e.reactivation_fleet import make_devices

SITE_A, SITE_B = SITES[0], SITES[1]


@pytest.fixture
async def fleet(
    store: InventoryStore, db_url: str, tmp_path: Path
) -> AsyncIterator[tuple[RunningFleet, list[SimDevice], Path]]:
    """Six devices (even ones at SITE_A, odd ones at SITE_B) in the controller's inventory; the
    credentials file is the agent's alone: the controller's store never sees it."""
    devices = make_devices(6, expired=0)
    async with run_fleet(devices, loopback_only=True, snmp=True, ssh=False) as running:
        inventory, credentials = tmp_path / "fleet.csv", tmp_path / "site.credentials.toml"
        write_inventory_csv(inventory, devices, running.endpoints)
        write_credentials_toml(credentials, "456")
        done = await asyncio.to_thread(polyfleet, db_url, "inventory", "import", str(inventory))
        assert done.code == 0, done.stderr
        yield running, devices, credentials


async def test_a_scan_asked_through_the_api_runs_at_the_sites_agent_with_its_own_credentials(
    store: InventoryStore, fleet: tuple[RunningFleet, list[SimDevice], Path], tmp_path: Path
) -> None:
    _running, devices, credentials = fleet
    async with api_server(store) as api:
        admin = await api.token(Role.ADMIN, name="ops")
        status, created = await api.call(
            admin, "POST", "/agents", {"name": "edge-a", "site": SITE_A}
        )
        assert status == 201, created
        async with site_agent(api.url, created["token"], tmp_path / "agent", credentials):
            tech = await api.token(Role.TECHNICIAN, name="tech")
            status, accepted = await api.call(tech, "POST", "/scans", {"site": SITE_A})
            assert status == 202, accepted
            job = await api.finished(tech, accepted["job"])

        assert job["state"] == "done", job
        assert job["agent"] == created["id"]
        site_a = sorted(d.serial for d in devices if d.site == SITE_A)
        assert sorted(row["serial"] for row in job["result"]) == site_a
        assert all(row["reachable"] and row["licenses"] for row in job["result"]), job["result"]

        # the controller recorded what the agent saw, and never held a device credential
        statuses = await ObservationStore(store.engine).statuses()
        assert sorted(s for s, st in statuses.items() if st.licenses) == site_a
        for serial in site_a:  # and in each device's history
            [seen] = (await ObservationStore(store.engine).history(serial, limit=5)).entries
            assert seen.reachable, serial
            assert seen.licenses, serial
        async with store.engine.connect() as conn:
            held = await conn.execute(sa.select(sa.func.count()).select_from(credential_profiles))
            assert held.scalar_one() == 0

        status, agents = await api.call(admin, "GET", "/agents")
        assert status == 200
        (listed,) = agents["items"]
        assert (listed["name"], listed["site"], listed["version"]) == ("edge", SITE_A, "test")
        assert listed["last_seen_at"] is not None


async def test_a_result_made_while_the_controller_is_down_is_spooled_and_stored_once(
    store: InventoryStore, fleet: tuple[RunningFleet, list[SimDevice], Path], tmp_path: Path
) -> None:
    _running, devices, credentials = fleet
    gate = Gate()
    async with api_server(store) as api:
        agent_token = await api.token(Role.AGENT, site=SITE_B, name="edge-b")
        tech = await api.token(Role.TECHNICIAN)
        async with site_agent(
            api.url, agent_token, tmp_path / "agent", credentials, runner=gated(gate)
        ) as edge:
            _, accepted = await api.call(tech, "POST", "/scans", {"site": SITE_B})
            job_id = accepted["job"]

            async def running() -> bool:
                return bool((await api.job(tech, job_id))["state"] == "running")

            await eventually(running, "the agent claimed the scan")
            waiting = await deliver_after_outage(api, edge, gate)
            job = await api.job(tech, job_id)

        assert job["state"] == "done"
        site_b = sorted(d.serial for d in devices if d.site == SITE_B)
        assert sorted(row["serial"] for row in job["result"]) == site_b
        # the same result delivered again (an answer lost on the way back) is not stored again
        status, again = await api.call(
            agent_token, "POST", f"/agent/jobs/{job_id}/result", waiting.body
        )
        assert (status, again) == (200, {"stored": False})
        assert (await api.job(tech, job_id))["result"] == job["result"]
        for serial in site_b:  # nor twice in a device's history
            assert (await ObservationStore(store.engine).history(serial, limit=5)).total == 1


async def test_an_abandoned_lease_expires_and_the_job_goes_to_the_next_claimer(
    store: InventoryStore, fleet: tuple[RunningFleet, list[SimDevice], Path]
) -> None:
    _running, devices, _credentials = fleet
    device = next(d for d in devices if d.site == SITE_A)
    async with api_server(store, lease=timedelta(seconds=1)) as api:
        tech = await api.token(Role.TECHNICIAN)
        dead = await api.token(Role.AGENT, site=SITE_A, name="dies")
        alive = await api.token(Role.AGENT, site=SITE_A, name="lives")
        _, accepted = await api.call(tech, "POST", "/probes", {"device": device.serial})
        job_id = accepted["job"]

        status, first = await api.call(dead, "GET", "/agent/jobs?wait=0")
        assert status == 200, first
        assert first["id"] == job_id
        assert first["payload"]["inventory"][0]["serial"] == device.serial

        second: dict[str, Any] = {}

        async def taken_over() -> bool:
            status, doc = await api.call(alive, "GET", "/agent/jobs?wait=0")
            if status == 200:
                second.update(doc)
            return status == 200

        await eventually(taken_over, "the expired lease put the job back for another agent")
        assert second["id"] == job_id
        assert second["lease_id"] != first["lease_id"]

        status, refused = await api.call(
            dead, "POST", f"/agent/jobs/{job_id}/lease", {"lease_id": first["lease_id"]}
        )
        assert status == 409, refused
        result = {"lease_id": second["lease_id"], "state": "done", "result": {"ok": True}}
        assert await api.call(alive, "POST", f"/agent/jobs/{job_id}/result", result) == (
            200,
            {"stored": True},
        )
        late = {"lease_id": first["lease_id"], "state": "failed", "error": "too late"}
        assert await api.call(dead, "POST", f"/agent/jobs/{job_id}/result", late) == (
            200,
            {"stored": False},
        )
        job = await api.job(tech, job_id)
        assert (job["state"], job["result"], job["error"]) == ("done", {"ok": True}, None)


async def test_roles_and_sites_are_enforced_on_job_and_agent_routes(
    store: InventoryStore, fleet: tuple[RunningFleet, list[SimDevice], Path]
) -> None:
    _running, devices, _credentials = fleet
    device = next(d for d in devices if d.site == SITE_A)
    async with api_server(store) as api:
        viewer = await api.token(Role.VIEWER)
        tech = await api.token(Role.TECHNICIAN)
        other_site = await api.token(Role.AGENT, site=SITE_B)
        status, _ = await api.call(viewer, "POST", "/scans", {"site": SITE_A})
        assert status == 403
        status, _ = await api.call(
            tech, "POST", "/discoveries", {"cidrs": ["127.0.0.1/32"], "site": SITE_A}
        )
        assert status == 403
        status, _ = await api.call(other_site, "GET", "/jobs")
        assert status == 403
        status, _ = await api.call(tech, "GET", "/agent/jobs?wait=0")
        assert status == 403

        _, accepted = await api.call(tech, "POST", "/probes", {"device": device.serial})
        status, _ = await api.call(other_site, "GET", "/agent/jobs?wait=0")
        assert status == 204  # a job of SITE_A is never handed to SITE_B's agent
        body = {"lease_id": "x", "state": "done", "result": None}
        status, _ = await api.call(
            other_site, "POST", f"/agent/jobs/{accepted['job']}/result", body
        )
        assert status == 403
        assert (await api.job(viewer, accepted["job"]))["state"] == "queued"

        status, problem = await api.call(tech, "POST", "/probes", {"device": "NOSUCHSERIAL1"})
        assert status == 404, problem
        status, problem = await api.call(tech, "POST", "/scans", {"sitex": SITE_A})
        assert status == 400
        assert problem["errors"][0]["field"] == "body.sitex"


async def test_a_listing_of_jobs_filters_by_state_and_kind(
    store: InventoryStore, fleet: tuple[RunningFleet, list[SimDevice], Path]
) -> None:
    _running, devices, _credentials = fleet
    async with api_server(store) as api:
        tech = await api.token(Role.TECHNICIAN)
        for device in devices[:2]:
            await api.call(tech, "POST", "/probes", {"device": device.serial})
        await api.call(tech, "POST", "/scans", {})
        status, page = await api.call(tech, "GET", "/jobs?kind=probe&state=queued&limit=1")
        assert status == 200, page
        assert (page["total"], len(page["items"]), page["items"][0]["kind"]) == (2, 1, "probe")
        status, page = await api.call(tech, "GET", "/jobs?state=done")
        assert (status, page["total"]) == (200, 0)


async def test_a_discovery_names_the_credential_profiles_the_agent_probes_with(
    store: InventoryStore, fleet: tuple[RunningFleet, list[SimDevice], Path], tmp_path: Path
) -> None:
    """The names travel with the job and are looked up in the agent's own file: one it does not
    hold fails the job saying which; a malformed name is refused before anything is queued."""
    _running, _devices, credentials = fleet
    async with api_server(store) as api:
        admin = await api.token(Role.ADMIN, name="ops")
        token = await api.token(Role.AGENT, site=SITE_A, name="edge-a")
        wanted = {"cidrs": ["127.0.0.1/32"], "site": SITE_A, "credentials": ["sim-uc", "nope"]}
        status, problem = await api.call(
            admin, "POST", "/discoveries", {**wanted, "credentials": ["bad name!"]}
        )
        assert status == 400, problem
        assert problem["errors"][0]["field"].startswith("body.credentials")
        assert (await api.call(admin, "GET", "/jobs?kind=discovery"))[1]["items"] == []

        status, accepted = await api.call(admin, "POST", "/discoveries", wanted)
        assert status == 202, accepted
        async with site_agent(api.url, token, tmp_path / "agent", credentials):
            job = await api.finished(admin, accepted["job"])
        assert job["state"] == "failed", job
        assert job["error"] == "no credential profile 'nope' in this agent's credentials file"
        assert job["agent"] is not None
