"""Pinning helpers shared by the HTTP and SSH transports: pin formats and first-use memory.

A first-use pin is reported once per run and then enforced for the rest of that run, so a
device that changes its certificate or host key between two requests of the same scan is caught
even before the inventory has stored the pin.
"""

from __future__ import annotations

import asyncio
import hashlib
import re

from device_drivers.transports import TrustPolicy

_SHA256_PIN = re.compile(r"^sha256:([0-9a-f]{64})$")
MAX_REMEMBERED_PINS = 100_000


def sha256_pin(der: bytes) -> str:
    """The pin text for a DER certificate: "sha256:" and 64 lower-case hex digits."""
    return "sha256:" + hashlib.sha256(der).hexdigest()


def parse_sha256_pin(pin: str) -> bytes | None:
    """The 32 digest bytes of a "sha256:<hex>" pin (colons and case tolerated), else None."""
    text = pin.strip().lower().replace(":", "")
    text = "sha256:" + text[len("sha256") :] if text.startswith("sha256") else text
    match = _SHA256_PIN.match(text)
    return bytes.fromhex(match.group(1)) if match else None


class FirstUsePins:
    """Pins seen on first contact during this run, reported through `on_first_use` once each."""

    def __init__(self) -> None:
        self._pins: dict[tuple[str, int], str] = {}
        self._lock = asyncio.Lock()

    def get(self, host: str, port: int) -> str | None:
        return self._pins.get((host, port))

    async def remember(self, host: str, port: int, pin: str, trust: TrustPolicy) -> str:
        """Record `pin` for host:port unless one is known; returns the pin in force."""
        async with self._lock:
            known = self._pins.get((host, port))
            if known is not None:
                return known
            if len(self._pins) >= MAX_REMEMBERED_PINS:
                self._pins.pop(next(iter(self._pins)))
            self._pins[(host, port)] = pin
        if trust.on_first_use is not None:
            await trust.on_first_use(pin)
        return pin
