"""What every use case that talks to a device shares: patience with transient errors, and no
trust in a device until it has proved it is the one the inventory means.

`with_retries` is the one jittered back-off for busy and timeout answers (scan, re-activation);
`PinGate` holds the TLS / SSH pins a first contact reports until `identify()` has shown which
device answered, so a swapped device never leaves its certificate on another's record.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from device_drivers.context import PinStore
from device_drivers.errors import DeviceError

T = TypeVar("T")
RETRY_ATTEMPTS = 3
RETRY_BACKOFF_S = 0.5
"""Every use case's default patience: 3 tries, 0.5 s then 1 s (each x0.5-1.5 jitter) apart."""


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    backoff: float,
    rng: random.Random,
) -> T:
    """Retry retryable errors (busy, timeout) with jittered exponential back-off."""
    attempts = max(1, attempts)
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except DeviceError as exc:
            if not exc.retryable or attempt == attempts:
                raise
            delay = backoff * (2 ** (attempt - 1))
            await asyncio.sleep(delay * (0.5 + rng.random()))
    raise AssertionError("unreachable")  # pragma: no cover


class PinGate:
    """Holds a device's first-use pins until it has proved its identity, then passes them on.

    The transports report a first-use pin while connecting, before `identify()` has said which
    device answered; a swapped device must not leave its certificate on the other's record.
    """

    def __init__(self, sink: PinStore) -> None:
        self._sink = sink
        self._held: list[tuple[str, str, str]] = []
        self._open = False

    async def __call__(self, serial: str, kind: str, value: str) -> None:
        if self._open:
            await self._sink(serial, kind, value)
        else:
            self._held.append((serial, kind, value))

    async def release(self) -> None:
        self._open = True
        held, self._held = self._held, []
        for serial, kind, value in held:
            await self._sink(serial, kind, value)
