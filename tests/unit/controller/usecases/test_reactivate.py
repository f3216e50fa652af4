"""A batch re-activation whose devices fail in unexpected ways: each failure is that device's
row, every other device still runs and is reported, and nothing is cancelled half-way."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

from controller.reactivation import Outcome, Reactivator, Status
from controller.usecases.reactivate import license_state_unknown, run_batch
from inventory.models import Device, LicenseRead
from inventory.observation_store import DeviceStatus
from inventory.reactivation_store import TransitionRefused

FEATURE = "productivity_suite"


class _Flow:
    """Stands in for Reactivator: one device's run raises, one is slow, the rest confirm."""

    def __init__(self) -> None:
        self.finished: list[str] = []

    async def reactivate(self, device: Device, feature: str) -> Outcome:
        if device.serial == "SN-BROKEN":
            raise TransitionRefused("operation RA-1 is no longer approved: another run advanced it")
        if device.serial == "SN-ODD":
            raise RuntimeError("driver bug\nwith a second line")
        if device.serial == "SN-SLOW":
            await asyncio.sleep(0.05)  # still running when the others have raised
        self.finished.append(device.serial)
        return Outcome(serial=device.serial, feature=feature, status=Status.CONFIRMED)


async def test_an_error_in_one_device_is_its_row_and_the_batch_goes_on() -> None:
    serials = ["SN-BROKEN", "SN-OK", "SN-ODD", "SN-SLOW"]
    targets = [(Device(serial=s), FEATURE) for s in serials]
    flow = _Flow()
    seen: list[str] = []

    async def sink(outcome: Outcome) -> None:
        seen.append(outcome.serial)

    outcomes = await run_batch(cast(Reactivator, flow), targets, concurrency=4, on_outcome=sink)
    assert [o.serial for o in outcomes] == serials  # every device reported, in order
    by_serial: dict[str, Any] = {o.serial: o for o in outcomes}
    assert sorted(flow.finished) == ["SN-OK", "SN-SLOW"]  # the slow one was not cancelled
    assert sorted(seen) == sorted(serials)  # the failures reached the sink as results too
    assert by_serial["SN-OK"].status is Status.CONFIRMED
    broken, odd = by_serial["SN-BROKEN"], by_serial["SN-ODD"]
    assert (broken.status, odd.status) == (Status.FAILED, Status.FAILED)
    assert broken.reason == (
        "unexpected error: TransitionRefused: operation RA-1 is no longer approved: "
        "another run advanced it"
    )
    assert odd.reason == "unexpected error: RuntimeError: driver bug"  # one line


def test_a_device_whose_license_state_was_not_read_is_not_judged() -> None:
    """--all-expired names such a device instead of passing over it (issues 9 and 10)."""

    def status(read: LicenseRead | None) -> DeviceStatus:
        return DeviceStatus("SN-1", datetime.now(UTC), True, "poly-uc", None, None, None, [], read)

    route = "GET /api/v1/mgmt/license/info"
    assert license_state_unknown(None)  # never observed
    assert license_state_unknown(status(LicenseRead(ok=False, call=route, detail="HTTP 404")))
    assert not license_state_unknown(status(LicenseRead(ok=True, call=route, detail="0")))
    assert license_state_unknown(status(None))  # older observation listing nothing
