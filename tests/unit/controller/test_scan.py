"""The scan engine's limits and failure handling, with a fake driver (no sockets): overall and
per-site concurrency, one operation at a time per device, back-off retries, the per-device
budget, identity mismatches that leave the inventory alone, and a cancelled scan that keeps
what it had read."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, cast

import pytest

from controller.device_session import Transports
from controller.scan import ScanEngine, ScanOptions, ScanResult
from controller.scan_recorder import ScanRecorder
from device_drivers.base import Capability, DeviceDriver
from device_drivers.errors import (
    AuthenticationFailed,
    DeviceBusy,
    DeviceTimeout,
    NotSupported,
)
from device_drivers.models import ApplyResult, DeviceFacts, LicenseStatus
from device_drivers.registry import DriverRegistry
from device_drivers.transports import HttpClient
from inventory.models import Device, DevicePorts, LicenseState
from inventory.observation_store import DeviceObservation, ObservationStore
from inventory.store import InventoryStore

FAST = ScanOptions(backoff=0.01, device_budget=5.0)
HANG_S = 30.0
"""A device that never answers sleeps this long; the tests cancel or time out well before."""


@dataclass
class Behaviour:
    """How one fake device (by inventory serial) answers identify()."""

    reports: str | None = None
    """The serial it reports (default: the inventory's)."""
    failures: list[Exception] = field(default_factory=list)
    """Raised by successive identify() calls before it answers."""
    delay: float = 0.0
    hang: bool = False
    license_failure: Exception | None = None
    """Raised by read_licenses() (identify still answers)."""


@dataclass
class FakeFleet:
    """The device side of the fake driver, counting what runs at the same time."""

    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    running: Counter[str] = field(default_factory=Counter)
    peak: Counter[str] = field(default_factory=Counter)
    answered: list[str] = field(default_factory=list)

    def _enter(self, *keys: str) -> None:
        for key in keys:
            self.running[key] += 1
            self.peak[key] = max(self.peak[key], self.running[key])

    def _leave(self, *keys: str) -> None:
        for key in keys:
            self.running[key] -= 1

    async def identify(self, driver: DeviceDriver) -> DeviceFacts:
        device = driver.ctx.device
        behaviour = self.behaviours.get(device.serial, Behaviour())
        self.calls[device.serial] += 1
        keys = ("all", f"site:{device.site}", f"endpoint:{device.host}:{device.ports.https}")
        self._enter(*keys)
        try:
            # What a transport does on first contact with an unpinned device.
            trust = driver.ctx.http_target().trust
            if trust.on_first_use is not None:
                await trust.on_first_use(f"sha256:{device.serial.lower()}")
            if behaviour.hang:
                await asyncio.sleep(HANG_S)
            await asyncio.sleep(behaviour.delay)
            if behaviour.failures:
                raise behaviour.failures.pop(0)
        finally:
            self._leave(*keys)
        self.answered.append(device.serial)
        return DeviceFacts(serial=behaviour.reports or device.serial, model="Fake 1")


def registry_for(fleet: FakeFleet) -> DriverRegistry:
    class FakeDriver(DeviceDriver):
        name: ClassVar[str] = "fake"
        families: ClassVar[frozenset[str]] = frozenset()
        capabilities: ClassVar[frozenset[Capability]] = frozenset(
            {Capability.IDENTIFY, Capability.READ_LICENSES}
        )

        async def identify(self) -> DeviceFacts:
            return await fleet.identify(self)

        async def read_licenses(self) -> list[LicenseStatus]:
            failure = fleet.behaviours.get(self.ctx.device.serial, Behaviour()).license_failure
            if failure is not None:
                raise failure
            return [LicenseStatus(feature="base", state=LicenseState.ACTIVE)]

        def license_call(self) -> tuple[str, bool]:
            return "GET /api/v1/mgmt/license/info", True

        async def apply_activation(self, feature: str, key: str) -> ApplyResult:
            raise NotSupported("fake")

    registry = DriverRegistry(group="polyfleet.tests.no-such-group")
    registry.register(FakeDriver)
    return registry


def devices(count: int, *, site: str = "hq", first: int = 1) -> list[Device]:
    return [
        Device(serial=f"FAKE{n:04d}", host=f"192.0.2.{n}", site=site, driver="fake")
        for n in range(first, first + count)
    ]


def engine(
    fleet: FakeFleet, options: ScanOptions = FAST, pins: list[tuple[str, str, str]] | None = None
) -> ScanEngine:
    async def pin(serial: str, kind: str, value: str) -> None:
        assert pins is not None
        pins.append((serial, kind, value))

    return ScanEngine(
        registry_for(fleet),
        Transports(),
        {},
        options=options,
        pin_store=pin if pins is not None else None,
    )


async def test_overall_and_per_site_limits_hold_and_are_used() -> None:
    fleet = FakeFleet()
    fleet.behaviours = {f"FAKE{n:04d}": Behaviour(delay=0.02) for n in range(1, 41)}
    inventory = [
        *devices(20, site="a"),
        *devices(12, site="b", first=21),
        *devices(8, site="c", first=33),
    ]
    options = ScanOptions(concurrency=5, per_site=2, backoff=0.01)
    results = await engine(fleet, options).scan(inventory)
    assert all(r.ok for r in results)
    assert [r.device.serial for r in results] == [d.serial for d in inventory]  # input order
    assert fleet.peak["all"] == 5  # 3 sites x 2 would allow 6: the overall cap binds
    assert {site: fleet.peak[f"site:{site}"] for site in "abc"} == {"a": 2, "b": 2, "c": 2}

    wide = FakeFleet(behaviours=fleet.behaviours)
    await engine(wide, ScanOptions(concurrency=64, per_site=3)).scan(inventory)
    assert wide.peak["all"] == 9  # now the site caps bind: 3 sites x 3


async def test_one_operation_at_a_time_per_device_but_not_per_address() -> None:
    fleet = FakeFleet(behaviours={f"FAKE{n:04d}": Behaviour(delay=0.03) for n in range(1, 7)})
    same = [
        Device(serial=f"FAKE{n:04d}", host="192.0.2.1", driver="fake", site="hq")
        for n in range(1, 4)
    ]
    # A NATed site (or a loopback simulator): one address, a port per device.
    behind_nat = [
        Device(
            serial=f"FAKE{n:04d}",
            host="192.0.2.9",
            ports=DevicePorts(https=10_000 + n),
            driver="fake",
            site="hq",
        )
        for n in range(4, 7)
    ]
    started = time.monotonic()
    results = await engine(fleet).scan([*same, *behind_nat])
    assert all(r.ok for r in results)
    assert fleet.peak["endpoint:192.0.2.1:None"] == 1
    assert fleet.peak["all"] >= 3  # the NATed devices ran alongside each other
    assert time.monotonic() - started < 0.5


async def test_busy_twice_then_answers_after_jittered_back_off() -> None:
    fleet = FakeFleet()
    fleet.behaviours["FAKE0001"] = Behaviour(failures=[DeviceBusy("4001"), DeviceBusy("4001")])
    options = ScanOptions(attempts=3, backoff=0.05)
    started = time.monotonic()
    [result] = await engine(fleet, options).scan(devices(1))
    elapsed = time.monotonic() - started
    assert result.ok
    assert result.licenses is not None
    assert fleet.calls["FAKE0001"] == 3
    # Back-off 0.05 then 0.10 s, each jittered by x0.5..x1.5: at least 0.075 s, at most 0.225 s.
    assert 0.07 <= elapsed < 1.0


async def test_retries_are_bounded_and_only_for_busy_and_timeout() -> None:
    fleet = FakeFleet()
    fleet.behaviours = {
        "FAKE0001": Behaviour(failures=[DeviceTimeout("slow")] * 5),
        "FAKE0002": Behaviour(failures=[AuthenticationFailed("401")]),
        "FAKE0003": Behaviour(failures=[DeviceTimeout("slow")]),
    }
    results = await engine(fleet, ScanOptions(attempts=3, backoff=0.01)).scan(devices(4))
    by_serial = {r.device.serial: r for r in results}
    assert (by_serial["FAKE0001"].error_kind, fleet.calls["FAKE0001"]) == ("timeout", 3)
    assert not by_serial["FAKE0001"].reachable
    assert (by_serial["FAKE0002"].error_kind, fleet.calls["FAKE0002"]) == ("auth_failed", 1)
    assert by_serial["FAKE0002"].reachable  # it answered: the credentials are wrong, not the net
    assert by_serial["FAKE0003"].ok
    assert fleet.calls["FAKE0003"] == 2
    assert by_serial["FAKE0004"].ok


async def test_device_budget_stops_a_device_and_the_scan_goes_on() -> None:
    fleet = FakeFleet(behaviours={"FAKE0002": Behaviour(hang=True)})
    options = ScanOptions(device_budget=0.2, backoff=0.01)
    started = time.monotonic()
    results = await engine(fleet, options).scan(devices(3))
    assert time.monotonic() - started < 2.0
    hung = results[1]
    assert (hung.error_kind, hung.reachable) == ("timeout", False)
    assert "0.2 s device budget" in str(hung.error)
    assert [results[0].ok, results[2].ok] == [True, True]


async def test_a_driver_bug_fails_that_device_only() -> None:
    fleet = FakeFleet(behaviours={"FAKE0001": Behaviour(failures=[TypeError("boom")])})
    broken, fine = await engine(fleet).scan(devices(2))
    assert (broken.error_kind, broken.reachable) == ("internal_error", False)
    assert broken.error == "fake failed unexpectedly: TypeError: boom"
    assert fine.ok


async def test_identity_mismatch_is_flagged_and_pins_nothing() -> None:
    fleet = FakeFleet(behaviours={"FAKE0001": Behaviour(reports="FAKE0002")})
    pins: list[tuple[str, str, str]] = []
    first, second = await engine(fleet, pins=pins).scan(devices(2))
    assert (first.error_kind, first.licenses) == ("identity_mismatch", None)
    assert first.error == "device at 192.0.2.1 reports serial FAKE0002 (inventory: FAKE0001)"
    observation = first.observation()
    assert (observation.identity_mismatch, observation.licenses) == (first.error, None)
    # The certificate the impostor showed is not pinned on FAKE0001's record; the real one is.
    assert pins == [("FAKE0002", "tls", "sha256:fake0002")]
    assert second.ok


async def test_a_cancelled_scan_keeps_the_results_it_had(store: InventoryStore) -> None:
    inventory = devices(5)
    await store.upsert_devices(inventory)
    fleet = FakeFleet(behaviours={d.serial: Behaviour(hang=True) for d in inventory[3:]})
    observations = ObservationStore(store.engine)

    three_in = asyncio.Event()

    async def scan() -> None:
        # A long interval: only the flush on the way out can have written the results.
        async with ScanRecorder(observations, interval=60.0) as recorder:

            async def on_result(result: ScanResult) -> None:
                await recorder.add(result)
                if len(fleet.answered) == 3:
                    three_in.set()

            await engine(fleet).scan(inventory, on_result)

    task = asyncio.create_task(scan())
    async with asyncio.timeout(5):
        await three_in.wait()
    task.cancel()  # Ctrl-C
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await task
    stored = await observations.statuses()
    assert sorted(stored) == [d.serial for d in inventory[:3]]
    assert all(s.reachable and s.error is None for s in stored.values())
    assert [lic.feature for lic in stored["FAKE0001"].licenses] == ["base"]


async def test_a_license_read_that_fails_is_recorded_with_the_call_and_what_came_back(
    store: InventoryStore,
) -> None:
    inventory = devices(3)
    await store.upsert_devices(inventory)
    fleet = FakeFleet(
        behaviours={
            "FAKE0002": Behaviour(
                license_failure=NotSupported(
                    "GET /api/v1/mgmt/license/info: HTTP 404 (REST API disabled, or no such route)"
                )
            ),
            "FAKE0003": Behaviour(license_failure=DeviceTimeout("no answer within 2 s")),
        }
    )
    observations = ObservationStore(store.engine)
    async with ScanRecorder(observations) as recorder:
        read, not_found, timed_out = await engine(fleet).scan(inventory, recorder.add)
    assert read.license_read is not None
    assert read.license_read.ok
    assert not read.license_unread
    assert read.ok
    # Reached, identity fine, no license state: never an empty list that reads as "none".
    assert (not_found.reachable, not_found.error, not_found.licenses) == (True, None, None)
    assert not_found.license_unread
    assert not_found.model_dump(mode="json")["license_read"] == {
        "ok": False,
        "call": "GET /api/v1/mgmt/license/info",
        "detail": "HTTP 404 (REST API disabled, or no such route)",
        "modeled": True,
    }
    # A timeout still fails the device as before, and says which call timed out.
    assert (timed_out.ok, timed_out.error_kind) == (False, "timeout")
    assert timed_out.license_read is not None
    assert timed_out.license_read.detail == "timeout: no answer within 2 s"
    stored = await observations.statuses()
    assert stored["FAKE0002"].license_read == not_found.license_read
    assert stored["FAKE0001"].license_read == read.license_read


@dataclass
class SlowObservationStore:
    """Takes a while to commit, and notices two writes at once (SQLite: 'database is locked')."""

    written: list[str] = field(default_factory=list)
    writing: int = 0
    overlapped: bool = False
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def record(self, observations: Sequence[DeviceObservation]) -> None:
        self.writing += 1
        self.overlapped = self.overlapped or self.writing > 1
        self.started.set()
        try:
            await asyncio.sleep(0.1)
            self.written += [o.serial for o in observations]
        finally:
            self.writing -= 1


async def test_a_write_in_flight_when_the_scan_ends_is_finished_not_lost() -> None:
    fleet = FakeFleet()
    first, second = await engine(fleet).scan(devices(2))
    slow = SlowObservationStore()
    recorder = ScanRecorder(cast(ObservationStore, slow), batch=1, interval=60.0)
    async with recorder:
        await recorder.add(first)  # a full batch: the background flush starts writing it
        async with asyncio.timeout(5):
            await slow.started.wait()
        await recorder.add(second)  # arrives while that write is in flight
    assert sorted(slow.written) == ["FAKE0001", "FAKE0002"]
    assert not slow.overlapped


async def test_a_failing_result_sink_stops_the_scan_cleanly_and_reports_its_error() -> None:
    """The store behind the sink fails mid-scan: every sibling device task stops (none runs on
    against transports being closed), the transports close only after the tasks have ended, and
    the sink's own error is what the caller sees (issue 11)."""
    fleet = FakeFleet()
    fleet.behaviours = {f"FAKE{n:04d}": Behaviour(hang=True) for n in range(2, 7)}
    running_at_close: list[int] = []

    class Http:
        async def close(self) -> None:
            running_at_close.append(fleet.running["all"])

    transports = Transports(http=cast(HttpClient, Http()))
    scan = ScanEngine(registry_for(fleet), transports, {}, options=FAST)

    async def failing_sink(result: ScanResult) -> None:
        raise OSError(f"disk full while recording {result.device.serial}")

    started = time.monotonic()
    with pytest.raises(OSError, match="disk full while recording FAKE0001"):
        async with transports:
            await scan.scan(devices(6), failing_sink)
    assert time.monotonic() - started < HANG_S / 3  # the hanging siblings were cancelled
    assert fleet.calls["FAKE0006"] == 1  # they had started: they were stopped, not skipped
    assert running_at_close == [0]  # closed once, after every device task had ended
