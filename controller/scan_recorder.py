"""Storing scan results while the scan runs: batched, so a scan of 10,000 is not 10,000 commits.

Results are flushed every `interval` seconds or every `batch` results, whichever comes first,
and on the way out (including Ctrl-C / cancellation), so an interrupted scan keeps what it read.
First-use pins (TLS fingerprints, SSH host keys) go through the same batches when a `pin_writer`
is given: a commit per pin cost a cold scan of 1,000 devices about 8 s of waiting on SQLite
(bench/scan_bench.py). The transports enforce a first-use pin for the rest of the run from
memory, so writing it a moment later changes nothing for the scan.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Self

from controller.scan import ScanResult
from inventory.observation_store import DeviceObservation, ObservationStore

PinWriter = Callable[[Sequence[tuple[str, str, str]]], Awaitable[object]]
"""Stores first-use pins, (serial, "tls" | "ssh", value) each: InventoryStore.pin_first_use_many."""
PendingWriter = Callable[[str, str, str], Awaitable[object]]
"""Stores what a device showed instead of its pin: InventoryStore.set_pending_pin."""


class ScanRecorder:
    """An async context manager that accepts results and writes them in batches."""

    def __init__(
        self,
        store: ObservationStore,
        *,
        batch: int = 200,
        interval: float = 0.25,
        pin_writer: PinWriter | None = None,
        pending_writer: PendingWriter | None = None,
    ):
        self.store = store
        self.batch = batch
        self.interval = interval
        self.pin_writer = pin_writer
        self.pending_writer = pending_writer
        self._pending: list[DeviceObservation] = []
        self._pins: list[tuple[bool, str, str, str]] = []
        """(is_first_use_pin, serial, kind, value) in arrival order: a pending (changed) pin
        must land after the first-use pin it differs from, as it did with a commit each."""
        self._wake = asyncio.Event()
        self._writing = asyncio.Lock()
        """One write at a time: the final flush waits for one still in flight."""
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.shield(self._flush())

    async def add(self, result: ScanResult) -> None:
        self._pending.append(result.observation())
        if len(self._pending) >= self.batch:
            self._wake.set()

    async def pin(self, serial: str, kind: str, value: str) -> None:
        """A first-use pin (DriverContext's PinStore), written with the next batch."""
        if self.pin_writer is None:
            raise RuntimeError("ScanRecorder was built without a pin_writer")
        self._pins.append((True, serial, kind, value))
        if len(self._pins) >= self.batch:
            self._wake.set()

    async def pending_pin(self, serial: str, kind: str, value: str) -> None:
        """A changed certificate or host key (the scan's TrustMismatchSink), written in order."""
        if self.pending_writer is None:
            raise RuntimeError("ScanRecorder was built without a pending_writer")
        self._pins.append((False, serial, kind, value))
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            # Shielded: stopping the loop (end of scan, Ctrl-C) must not abort a write halfway,
            # which would drop the batch it had taken and leave SQLite locked for the next one.
            await asyncio.shield(self._flush())

    async def _flush(self) -> None:
        async with self._writing:
            if self._pins:
                await self._write_pins()
            if not self._pending:
                return
            batch, self._pending = self._pending, []
            await self.store.record(batch)
            self.written += len(batch)

    async def _write_pins(self) -> None:
        pins, self._pins = self._pins, []
        run: list[tuple[str, str, str]] = []
        for first_use, serial, kind, value in pins:
            if first_use:
                run.append((serial, kind, value))
                continue
            if run and self.pin_writer is not None:
                await self.pin_writer(run)
                run = []
            if self.pending_writer is not None:
                await self.pending_writer(serial, kind, value)
        if run and self.pin_writer is not None:
            await self.pin_writer(run)
