"""Crash safety of `polyfleet reactivate`: killed with SIGKILL after every committed state of the
workflow, and once while the device is loading the key, a rerun still ends with the device's
feature active, the key applied exactly once, one confirmation and an intact hash chain.

The fleet runs in this process, so the test sees what each simulated device really loaded; the
command runs as a subprocess, so it can die like a process on a power cut. Each state gets a
device of its own (with one expired feature each), so every assertion below is exact: one
operation, one key, one confirmation per device.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest

import simulator.uc_phone_modeled
import simulator.videoos_modeled
from controller.reactivation import CRASH_AFTER_ENV
from inventory.database import DatabaseTarget
from inventory.key_files import key_ref
from inventory.reactivation_store import OpState
from simulator.licensing import apply_key, effective_state
from simulator.state import LicenseState, SimDevice
from tests.e2e.reactivation_fleet import (
    ManagedFleet,
    expired_feature,
    finish,
    issued_keys,
    make_devices,
    managed_fleet,
    operations,
)

PATH = [
    OpState.REQUESTED,
    OpState.ELIGIBLE,
    OpState.QUOTED,
    OpState.APPROVED,
    OpState.KEY_OBTAINED,
    OpState.APPLIED,
    OpState.VERIFIED,
    OpState.CONFIRMED,
]
"""Every state a successful re-activation passes through, in order."""


def reactivate_args(device: SimDevice) -> tuple[str, ...]:
    return ("reactivate", device.serial, "--feature", expired_feature(device), "--yes")


async def rerun(fleet: ManagedFleet, device: SimDevice) -> dict[str, Any]:
    """The technician runs the same command again (no fault injection): it must succeed."""
    again = await fleet.cli(*reactivate_args(device), "-o", "json")
    assert again.code == 0, again.stdout + again.stderr
    [row] = again.json()
    assert isinstance(row, dict)
    return row


async def kill_while_loading_the_key(fleet: ManagedFleet, device: SimDevice) -> None:
    """SIGKILL the command right after the device loaded the key, before the command hears of
    it: the window between "device applied" and "we wrote applied"."""
    victim: list[asyncio.subprocess.Process] = []

    def apply_then_die(target: SimDevice, secret: bytes, key: str, **kw: Any) -> Any:
        outcome = apply_key(target, secret, key, **kw)
        if target is device and victim:
            os.kill(victim[0].pid, signal.SIGKILL)
        return outcome

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(simulator.uc_phone_modeled, "apply_key", apply_then_die)
        patch.setattr(simulator.videoos_modeled, "apply_key", apply_then_die)
        process = await fleet.spawn(*reactivate_args(device))
        victim.append(process)
        killed = await finish(process)
    assert killed.code == -signal.SIGKILL, killed.stdout + killed.stderr
    assert len(device.applied_keys) == 1
    [op] = await operations_of(fleet, device)
    assert op.state == OpState.KEY_OBTAINED  # the store never heard that the key was applied


async def operations_of(fleet: ManagedFleet, device: SimDevice) -> list[Any]:
    return await operations(fleet.target, device.serial)


async def test_killed_after_every_state_each_device_ends_confirmed_exactly_once(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    devices = make_devices(len(PATH) + 2, expired=len(PATH) + 1)
    expired, bystander = devices[:-1], devices[-1]  # the bystander must stay untouched
    # A camera loads whatever key it is sent, so applying twice would show in its counter.
    mid_apply = next(d for d in expired if d.family == "studiox")
    by_state = dict(zip(PATH, [d for d in expired if d is not mid_apply], strict=True))
    async with managed_fleet(
        tmp_path, db_url, devices, [d.serial for d in devices], target=db_target
    ) as fleet:
        for state, device in by_state.items():
            killed = await fleet.run(*reactivate_args(device), env={CRASH_AFTER_ENV: state.value})
            assert killed.code == -signal.SIGKILL, (state, killed.stdout + killed.stderr)
            assert killed.stdout == ""  # died before it could report anything
            [op] = await operations_of(fleet, device)
            assert (op.state, op.events) == (state, PATH[: PATH.index(state) + 1])

            row = await rerun(fleet, device)
            # After a kill at "confirmed" the record exists already: the rerun returns it.
            expected = "already_confirmed" if state is OpState.CONFIRMED else "confirmed"
            assert row["status"] == expected, (state, row)

        await kill_while_loading_the_key(fleet, mid_apply)
        row = await rerun(fleet, mid_apply)
        assert row["status"] == "confirmed"
        assert len(mid_apply.applied_keys) == 1
        [op] = await operations_of(fleet, mid_apply)
        applied = op.details[op.events.index(OpState.APPLIED)]
        assert applied == "device already reports it active"  # resumed without applying again

        listed = await fleet.cli("confirmations", "list", "-o", "json")
        assert listed.code == 0, listed.stderr
        records = {(r["serial"], r["feature"]): r for r in listed.json()}
        reactivated = [*by_state.values(), mid_apply]
        assert len(listed.json()) == len(records) == len(reactivated)  # one per device feature
        verified = await fleet.cli("confirmations", "verify")
        assert verified.code == 0, verified.stdout + verified.stderr

        for device in reactivated:
            feature = expired_feature(device)
            record = records[(device.serial, feature)]
            assert (record["state_before"], record["state_after"]) == ("expired", "active")
            # the key was obtained once, applied once, and it is the key the record names
            assert len(issued_keys(fleet, device.serial)) == 1, device.serial
            assert len(device.applied_keys) == 1, device.serial
            assert key_ref(device.applied_keys[0]) == record["key_ref"]
            assert effective_state(device.licenses[feature]) is LicenseState.ACTIVE
            [op] = await operations_of(fleet, device)
            assert (op.state, op.confirmation) == (OpState.CONFIRMED, record["number"])
            assert op.events == PATH, (device.serial, op.events)
        assert bystander.applied_keys == []
        assert await operations_of(fleet, bystander) == []


async def test_killed_after_the_portal_issued_a_key_the_rerun_gets_that_key_not_a_second(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    devices = make_devices(2, expired=1)
    phone = devices[0]
    async with managed_fleet(
        tmp_path, db_url, devices, [d.serial for d in devices], target=db_target
    ) as fleet:
        portal = fleet.running.portal
        issue = portal.issue
        victim: list[asyncio.subprocess.Process] = []

        def issue_then_die(serial: str, feature: str) -> Any:
            """The portal has issued (and billed) the key; polyfleet dies before storing it."""
            issued = issue(serial, feature)
            os.kill(victim[0].pid, signal.SIGKILL)
            return issued

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(portal, "issue", issue_then_die)
            process = await fleet.spawn(*reactivate_args(phone))
            victim.append(process)
            killed = await finish(process)
        assert killed.code == -signal.SIGKILL, killed.stdout + killed.stderr
        [op] = await operations_of(fleet, phone)
        assert op.state == OpState.APPROVED  # the key never reached the store
        assert (await fleet.cli("keys", "list", "-o", "json")).json() == []

        row = await rerun(fleet, phone)
        assert (row["status"], row["operation"]) == ("confirmed", op.id)
        [issued] = issued_keys(fleet, phone.serial)  # the rerun got the same key: one only
        assert phone.applied_keys == [issued]
        assert row["confirmation"]["key_ref"] == key_ref(issued)
