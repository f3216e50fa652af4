"""What every use case that talks to a device shares: one way to build its driver, patience
with transient errors, and no trust in a device until it has proved it is the one the inventory
means.

`SessionFactory` is the one place a driver context is built (scan, discovery, re-activation,
probe): the device's credential profile or the default one, the trust policy, the timeouts and
the shared `Transports`, so the copies cannot drift apart again.

`with_retries` is the one jittered back-off for busy and timeout answers (scan, re-activation);
`PinGate` holds the TLS / SSH pins a first contact reports until `identify()` has shown which
device answered, so a swapped device never leaves its certificate on another's record.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from device_drivers.base import DeviceDriver
from device_drivers.context import DriverContext, PinStore, Timeouts
from device_drivers.errors import DeviceError
from device_drivers.registry import DriverRegistry
from device_drivers.transports import (
    HttpClient,
    SnmpClient,
    SnmpScalar,
    SnmpTarget,
    SshClient,
    SshSession,
    SshTarget,
)
from inventory.models import CredentialProfile, Device

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


@runtime_checkable
class _ReleasesHosts(Protocol):
    def release_host(self, host: str) -> None: ...


@dataclass(slots=True)
class Transports:
    """The shared protocol clients of one scan (one of each per event loop)."""

    snmp: SnmpClient | None = None
    http: HttpClient | None = None
    ssh: SshClient | None = None

    def release(self, host: str) -> None:
        """The scan is done with `host`: let clients that pool connections close its idle ones."""
        if isinstance(self.http, _ReleasesHosts):
            self.http.release_host(host)

    async def close(self) -> None:
        for client in (self.snmp, self.http, self.ssh):
            if client is not None:
                await client.close()

    async def __aenter__(self) -> Transports:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _LazySnmpClient:
    """Builds the pysnmp client on first use: a command whose devices never speak SNMP (one UC
    phone re-activated over REST) does not pay for importing pysnmp."""

    def __init__(self) -> None:
        self._client: SnmpClient | None = None

    def _get(self) -> SnmpClient:
        if self._client is None:
            from device_drivers.transports.snmp import PysnmpClient

            self._client = PysnmpClient()
        return self._client

    async def get(self, target: SnmpTarget, oids: Sequence[str]) -> dict[str, SnmpScalar]:
        return await self._get().get(target, oids)

    async def walk(self, target: SnmpTarget, base_oid: str) -> list[tuple[str, SnmpScalar]]:
        return await self._get().walk(target, base_oid)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


class _LazySshClient:
    """Builds the asyncssh client on first use (only Group Series devices speak SSH)."""

    def __init__(self) -> None:
        self._client: SshClient | None = None

    async def open(self, target: SshTarget) -> SshSession:
        if self._client is None:
            from device_drivers.transports.ssh import AsyncsshClient

            self._client = AsyncsshClient()
        return await self._client.open(target)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


def open_transports(concurrency: int) -> Transports:
    """The real clients; must be called inside the running event loop. SNMP and SSH are built
    on first use, since importing their libraries costs more than many a command's work."""
    from device_drivers.transports.http import AiohttpClient  # heavy: only when scanning

    return Transports(
        snmp=_LazySnmpClient(), http=AiohttpClient(limit=concurrency), ssh=_LazySshClient()
    )


class _Own(Enum):
    PROFILE = "the device's own profile, else the default"


OWN_PROFILE: Literal[_Own.PROFILE] = _Own.PROFILE


@dataclass(frozen=True, slots=True)
class TrustOptions:
    """How far to trust a device's TLS certificate: a CA bundle, or first-use pins (default),
    or nothing checked at all (`insecure`, which also records no pins)."""

    ca_bundle: str | None = None
    insecure: bool = False


@dataclass(slots=True)
class SessionFactory:
    """Builds every driver context and driver of a run from one set of settings."""

    registry: DriverRegistry
    transports: Transports
    profiles: Mapping[str, CredentialProfile] = field(default_factory=dict)
    default_profile: str | None = None
    """The profile of devices that name none (`--credentials`)."""
    timeouts: Timeouts = field(default_factory=Timeouts)
    trust: TrustOptions = field(default_factory=TrustOptions)
    pin_sink: PinStore | None = None
    """Where first-use pins go once a device has proved its identity (None: not recorded)."""

    def profile_for(self, device: Device) -> CredentialProfile | None:
        """The device's own profile, else the default one, else none."""
        name = device.credentials or self.default_profile
        return self.profiles.get(name) if name else None

    def context(
        self,
        device: Device,
        *,
        pin_store: PinStore | None = None,
        credentials: CredentialProfile | Literal[_Own.PROFILE] | None = OWN_PROFILE,
        **extra: Any,
    ) -> DriverContext:
        """The driver context of `device`; `credentials` overrides the profile (discovery tries
        several), `extra` sets the context's other fields (SNMP access found by discovery)."""
        return DriverContext(
            device=device,
            credentials=self.profile_for(device) if credentials is OWN_PROFILE else credentials,
            snmp=self.transports.snmp,
            http=self.transports.http,
            ssh=self.transports.ssh,
            timeouts=self.timeouts,
            ca_bundle=self.trust.ca_bundle,
            insecure=self.trust.insecure,
            pin_store=pin_store,
            **extra,
        )

    def driver(
        self, device: Device, *, name: str | None = None, pin_store: PinStore | None = None
    ) -> DeviceDriver:
        """A driver of `device`: `name`, else the registry's choice (the inventory's driver, the
        one serving its model, the fallback); raises DriverNotFound (a LookupError) if none."""
        driver_cls = self.registry.get(name) if name else self.registry.driver_for(device)
        return driver_cls(self.context(device, pin_store=pin_store))

    def open(self, device: Device, *, name: str | None = None) -> DeviceSession:
        """A driver of `device` whose first-use pins wait for `identity_proven()`."""
        pins = PinGate(self.pin_sink) if self.pin_sink is not None else None
        return DeviceSession(self.driver(device, name=name, pin_store=pins), pins)


@dataclass(slots=True)
class DeviceSession:
    """One device's driver and the pins it reported, held until its identity is proven."""

    driver: DeviceDriver
    pins: PinGate | None = None

    async def identity_proven(self) -> None:
        """The device reported the inventory's serial and MAC: its first-use pins may stay."""
        if self.pins is not None:
            await self.pins.release()
