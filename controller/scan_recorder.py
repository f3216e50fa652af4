"""Storing scan results while the scan runs: batched, so a scan of 10,000 is not 10,000 commits.

Results are flushed every `interval` seconds or every `batch` results, whichever comes first,
and on the way out (including Ctrl-C / cancellation), so an interrupted scan keeps what it read.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self

from controller.scan import ScanResult
from inventory.observation_store import DeviceObservation, ObservationStore


class ScanRecorder:
    """An async context manager that accepts results and writes them in batches."""

    def __init__(self, store: ObservationStore, *, batch: int = 200, interval: float = 0.25):
        self.store = store
        self.batch = batch
        self.interval = interval
        self._pending: list[DeviceObservation] = []
        self._wake = asyncio.Event()
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

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        await self.store.record(batch)
        self.written += len(batch)
