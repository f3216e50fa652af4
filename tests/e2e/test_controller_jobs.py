"""The controller's own job worker (inside `serve`): it runs the jobs of a site without an agent,
and re-activations, through the same use cases as the CLI; a re-activation asked twice through
the API still leaves exactly one confirmation, and the audit chain verifies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from controller.job_worker import controller_worker
from controller.settings import load_settings
from inventory.database import DatabaseTarget
from inventory.schema import confirmations
from inventory.store import InventoryStore
from inventory.token_store import Role
from simulator.licensing import effective_state
from simulator.state import LicenseState
from tests.e2e.agent_site import api_server
from tests.e2e.reactivation_fleet import expired_feature, make_devices, managed_fleet


async def test_the_controller_runs_scans_and_reactivations_no_agent_takes(
    store: InventoryStore, db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    devices = make_devices(4, expired=1)
    expired = devices[0]
    async with (
        managed_fleet(
            tmp_path, db_url, devices, [d.serial for d in devices], target=db_target
        ) as fleet,
        api_server(store) as api,
    ):
        worker = controller_worker(store, load_settings(fleet.config))
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))
        try:
            tech = await api.token(Role.TECHNICIAN, name="tech")
            _, scan = await api.call(tech, "POST", "/scans", {"site": expired.site})
            _, first = await api.call(tech, "POST", "/reactivations", {"device": expired.serial})
            _, second = await api.call(tech, "POST", "/reactivations", {"device": expired.serial})
            scanned = await api.finished(tech, scan["job"])
            once = await api.finished(tech, first["job"])
            twice = await api.finished(tech, second["job"])
        finally:
            stop.set()
            await running

        assert scanned["state"] == "done", scanned
        assert {row["site"] for row in scanned["result"]} == {expired.site}
        assert scanned["agent"].startswith("controller:")

        feature = expired_feature(expired)
        assert (once["state"], twice["state"]) == ("done", "done")
        # The worker runs both jobs at once: whichever reaches the device's re-activation first
        # confirms it, the other finds it confirmed. Each job may also report the device's other
        # features (what it finds on record depends on when the scan job landed); the feature
        # itself is confirmed once, by one of them, no more.
        rows = [next(r for r in job["result"] if r["feature"] == feature) for job in (once, twice)]
        assert sorted(r["status"] for r in rows) == ["already_confirmed", "confirmed"], rows
        row, again = sorted(rows, key=lambda r: r["status"] != "confirmed")
        assert (row["serial"], again["serial"]) == (expired.serial, expired.serial)
        assert row["confirmation"]["actor"] == "tech (api)"
        confirming = once if row in once["result"] else twice
        other = twice if confirming is once else once
        assert all(r["status"] != "confirmed" for r in other["result"]), other["result"]
        assert again["confirmation"]["number"] == row["confirmation"]["number"]
        assert (
            effective_state(fleet.device(expired.serial).licenses[feature]) is LicenseState.ACTIVE
        )
        async with store.engine.connect() as conn:
            count = await conn.execute(sa.select(sa.func.count()).select_from(confirmations))
            assert count.scalar_one() == 1
        verified = await fleet.cli("confirmations", "verify", portal=False)
        assert verified.code == 0, verified.stderr
