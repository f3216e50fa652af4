"""Two `polyfleet reactivate --all-expired` runs at once on the same devices, as two overlapping
cron jobs (or two admins) would start them: real processes against one simulated fleet and one
store, on both backends. Every device is confirmed exactly once, each run reports every device
(a device the other run holds says so), and neither run shows a traceback.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from inventory.database import DatabaseTarget
from simulator.licensing import effective_state
from simulator.state import LicenseState
from tests.e2e.reactivation_fleet import (
    expired_feature,
    finish,
    issued_keys,
    make_devices,
    managed_fleet,
    operations,
)

DEVICES = 10
LATENCY_S = 0.2
DONE_BY_THIS_RUN = {"confirmed"}
DONE_ELSEWHERE = {"already_confirmed", "held"}


async def test_two_batches_at_once_confirm_each_device_once_and_both_report_every_device(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    devices = make_devices(DEVICES, expired=DEVICES)
    async with managed_fleet(
        tmp_path, db_url, devices, [d.serial for d in devices], target=db_target
    ) as fleet:
        for device in devices:  # each device takes a moment, so the two runs surely overlap
            device.faults.latency_s = LATENCY_S
        args = ("reactivate", "--all-expired", "--yes", "--concurrency", "4", "-o", "json")
        first, second = await asyncio.gather(
            finish(await fleet.spawn(*args)), finish(await fleet.spawn(*args))
        )
        reports: list[dict[str, dict[str, Any]]] = []
        for run in (first, second):
            assert "Traceback" not in run.stderr, run.stderr
            assert "database is locked" not in run.stderr, run.stderr
            assert run.code in (0, 1), run.stderr
            rows = {row["serial"]: row for row in run.json()}
            assert set(rows) == {d.serial for d in devices}, run.stderr  # a complete report
            reports.append(rows)
        for device in devices:
            statuses = sorted(report[device.serial]["status"] for report in reports)
            assert statuses[0] in DONE_ELSEWHERE | DONE_BY_THIS_RUN, statuses
            assert statuses.count("confirmed") == 1, (device.serial, statuses)
            held = [r[device.serial] for r in reports if r[device.serial]["status"] == "held"]
            assert all("held by another run" in row["reason"] for row in held)
            assert len(device.applied_keys) == 1, device.serial
            assert len(issued_keys(fleet, device.serial)) == 1, device.serial
            state = effective_state(device.licenses[expired_feature(device)])
            assert state is LicenseState.ACTIVE
            [op] = await operations(db_target, device.serial)
            assert op.state == "confirmed"
        for run, report in zip((first, second), reports, strict=True):
            everything_done_here = all(row["status"] != "held" for row in report.values())
            assert run.code == (0 if everything_done_here else 1), run.stderr
        listed = await fleet.cli("confirmations", "list", "-o", "json")
        assert sorted(r["serial"] for r in listed.json()) == sorted(d.serial for d in devices)
        verify = await fleet.cli("confirmations", "verify")
        assert verify.code == 0, verify.stdout + verify.stderr
