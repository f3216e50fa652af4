"""Helpers shared by the Poly drivers: transport access, error context, the SNMP identity and
MAC look-ups, activation refusals and a bounded poll, so no two drivers grow twin copies."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any, ClassVar, ParamSpec, TypeVar

from device_drivers import identity_oids as oids
from device_drivers.base import DeviceDriver
from device_drivers.errors import (
    ActivationRejected,
    AuthenticationFailed,
    DeviceBusy,
    DeviceConnectionError,
    DeviceError,
    HttpStatusError,
    MalformedReply,
    NotSupported,
)
from device_drivers.poly.parsing import first_mac, snmp_text
from device_drivers.transports import HttpClient, SnmpClient, SnmpScalar, SshClient

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

NIC_WALK_PAGE = 3
"""GETBULK page of the hardwareNICNICsMAC walk: a device lists a NIC or two, so one reply of 3
rows ends the column; the client's default page of 25 made each reply carry (and us decode) the
rows of the MIB that follow it. A device with more NICs answers in more pages, same rows."""


# --- bounded polling -------------------------------------------------------------------------

POLL_ATTEMPTS = 20
POLL_INTERVAL_S = 0.25
POLL_BUDGET_S = 10.0


async def poll_until(
    probe: Callable[[], Awaitable[R | None]],
    *,
    attempts: int = POLL_ATTEMPTS,
    interval_s: float = POLL_INTERVAL_S,
    budget_s: float = POLL_BUDGET_S,
) -> R | None:
    """Call `probe` until it returns non-None, at most `attempts` times and `budget_s` seconds."""
    deadline = time.monotonic() + budget_s
    for attempt in range(attempts):
        result = await probe()
        if result is not None:
            return result
        if attempt + 1 == attempts or time.monotonic() + interval_s > deadline:
            break
        await asyncio.sleep(interval_s)
    return None


def device_op(
    method: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """Stamp the device's serial and host on any DeviceError leaving a driver operation, so
    pure parsers can raise without knowing which device they parse for."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except DeviceError as exc:
            driver = args[0]
            if isinstance(driver, DeviceDriver):
                exc.serial = exc.serial or driver.ctx.device.serial
                exc.host = exc.host or driver.ctx.device.host
            raise

    return wrapper


class PolyDriver(DeviceDriver):
    """Transport accessors that say clearly which client a driver needed but did not get."""

    poll_attempts: ClassVar[int] = POLL_ATTEMPTS
    poll_interval_s: ClassVar[float] = POLL_INTERVAL_S
    """How long to wait for a device to report an activation (bounded in count and time)."""

    async def poll(self, probe: Callable[[], Awaitable[R | None]]) -> R | None:
        """`poll_until` with this driver's bounds."""
        return await poll_until(
            probe,
            attempts=self.poll_attempts,
            interval_s=self.poll_interval_s,
            budget_s=self.poll_attempts * self.poll_interval_s + self.ctx.timeouts.http,
        )

    def _missing(self, what: str) -> NotSupported:
        return NotSupported(
            f"{self.name} needs {what}, none was configured", serial=self.ctx.device.serial
        )

    def _http(self) -> HttpClient:
        if self.ctx.http is None:
            raise self._missing("an HTTP client")
        return self.ctx.http

    def _snmp(self) -> SnmpClient:
        if self.ctx.snmp is None:
            raise self._missing("an SNMP client")
        return self.ctx.snmp

    def _ssh(self) -> SshClient:
        if self.ctx.ssh is None:
            raise self._missing("an SSH client")
        return self.ctx.ssh

    def has_snmp(self) -> bool:
        """SNMP is worth a try: a client, and SNMP known to answer, or credentials that name a
        community or v3 user, or no credential profile at all (the default community)."""
        creds = self.ctx.credentials
        if self.ctx.snmp is None:
            return False
        if self.ctx.snmp_answers or creds is None:
            return True
        return creds.snmp_community is not None or creds.snmp_user is not None

    def has_http_credentials(self) -> bool:
        creds = self.ctx.credentials
        return self.ctx.http is not None and creds is not None and creds.http_password is not None

    def has_ssh_credentials(self) -> bool:
        creds = self.ctx.credentials
        return (
            self.ctx.ssh is not None
            and creds is not None
            and creds.ssh_user is not None
            and (creds.ssh_password is not None or creds.ssh_key_file is not None)
        )

    async def snmp_get(self, *names: str) -> dict[str, SnmpScalar]:
        """GET scalars; a reply missing an asked OID is malformed (the agent must answer all)."""
        values = await self._snmp().get(self.ctx.snmp_target(), list(names))
        return {name: values.get(name) for name in names}


@dataclass(frozen=True, slots=True)
class SnmpIdentity:
    """What MIB-II and POLYCOM-ENDPOINT-MIB say about a device."""

    sys_descr: str | None
    sys_object_id: str | None
    sys_name: str | None
    serial: str | None
    model: str | None
    software: str | None


class SnmpIdentityMixin(PolyDriver):
    """SNMP identity and MAC look-ups shared by the video, infrastructure and generic drivers."""

    async def snmp_identity(self, *, endpoint_mib: bool = True) -> SnmpIdentity:
        """MIB-II system group, plus POLYCOM-ENDPOINT-MIB identity when asked (None if absent)."""
        names = list(oids.SYSTEM_GROUP) + (list(oids.ENDPOINT_IDENTITY) if endpoint_mib else [])
        values = await self.snmp_get(*names)
        return SnmpIdentity(
            sys_descr=snmp_text(values[oids.SYS_DESCR]),
            sys_object_id=snmp_text(values[oids.SYS_OBJECT_ID]),
            sys_name=snmp_text(values[oids.SYS_NAME]),
            serial=snmp_text(values.get(oids.IDENTITY_DEVICE_SERIAL_NUMBER)),
            model=snmp_text(values.get(oids.IDENTITY_DEVICE_MODEL)),
            software=snmp_text(values.get(oids.IDENTITY_SOFTWARE_INFO)),
        )

    async def snmp_mac(self) -> str | None:
        """hardwareNICNICsMAC of the first NIC, or None when SNMP is not configured or silent;
        the MAC is a nice-to-have, so a failing look-up never fails an identify."""
        if not self.has_snmp():
            return None
        try:
            target = replace(self.ctx.snmp_target(), max_repetitions=NIC_WALK_PAGE)
            rows = await self._snmp().walk(target, oids.HARDWARE_NIC_MAC_COLUMN)
        except (DeviceConnectionError, MalformedReply, NotSupported) as exc:
            log.debug("%s: no MAC over SNMP (%s)", self.ctx.device.serial, exc.kind)
            return None
        return first_mac(rows)


# --- activation refusals ------------------------------------------------------------------

REASONS: tuple[tuple[str, str], ...] = (
    ("wrong_serial", "wrong_serial"),
    ("serial_number_mismatch", "wrong_serial"),
    ("another system", "wrong_serial"),
    ("tampered", "tampered"),
    ("expired", "expired"),
    ("unknown_feature", "unknown_feature"),
    ("not supported on this model", "unknown_feature"),
    ("invalid option key", "invalid_key"),
    ("malformed", "malformed"),
)
"""Device wording → our reason code. GS says `invalid option key` for both a malformed and a
tampered key, so it maps to `invalid_key`."""


def rejection_reason(text: str) -> str:
    """Normalise a device's refusal text to a reason code (`other` when not recognised)."""
    lowered = text.strip().lower()
    for needle, reason in REASONS:
        if needle in lowered:
            return reason
    return "other"


def rejected(feature: str, device_reason: str) -> ActivationRejected:
    """An ActivationRejected whose message carries the reason code and the device's words."""
    code = rejection_reason(device_reason)
    return ActivationRejected(
        f"activation of {feature!r} refused: {code} (device said: {device_reason.strip()!r})"
    )


# --- HTTP status codes -----------------------------------------------------------------------


def check_http_status(status: int, what: str, *, busy_on_403: bool = False) -> None:
    """Map an HTTP status to the error class callers act on; 2xx passes.

    401 is bad credentials (never retried); 403 means busy on UC phones (Centreon retries it);
    404 means REST disabled or the route unknown to this firmware; 429/503 ask to come back.
    """
    if 200 <= status < 300:
        return
    message = f"{what}: HTTP {status}"
    if status == 401:
        raise AuthenticationFailed(message, answered=True)
    if status == 403 and busy_on_403:
        raise DeviceBusy(message, answered=True)
    if status == 404:
        raise NotSupported(
            f"{message} (REST API disabled, or no such route on this firmware)", answered=True
        )
    if status in (429, 503):
        raise DeviceBusy(message, answered=True)
    raise HttpStatusError(message, status=status)
