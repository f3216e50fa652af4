"""The fleet scan: identity and license state of many devices, fast and without losing any.

Bounded concurrency overall and per site, one operation at a time per device, a time budget per
device, jittered back-off retries for busy and timeout answers. A failed device is a result,
never an exception that stops the scan; results are handed to a sink as they arrive, so an
interrupted scan keeps everything read so far. A device that answers with another serial or MAC
than the inventory holds is flagged as an identity mismatch (a swapped device), never written
over: not even a first-use TLS or SSH pin is stored before the device has proved its identity.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from controller.device_session import (
    RETRY_ATTEMPTS,
    RETRY_BACKOFF_S,
    SessionFactory,
    Transports,
    TrustOptions,
    with_retries,
)
from controller.fanout import fan_out
from device_drivers.base import DeviceDriver
from device_drivers.context import PinStore, Timeouts
from device_drivers.errors import (
    AuthenticationFailed,
    DeviceBusy,
    DeviceConnectionError,
    DeviceError,
    DeviceTimeout,
    ErrorKind,
    TrustMismatch,
)
from device_drivers.models import DeviceFacts, LicenseStatus
from device_drivers.registry import DriverRegistry, DriverRegistryError
from inventory.models import CredentialProfile, Device, License, LicenseRead
from inventory.observation_store import DeviceObservation

log = logging.getLogger(__name__)
T = TypeVar("T")


class ScanOptions(BaseModel):
    """Knobs of one scan; the defaults suit a fleet on a LAN or a site WAN link."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    concurrency: int = 256
    per_site: int = 64
    device_budget: float = 30.0
    attempts: int = RETRY_ATTEMPTS
    backoff: float = RETRY_BACKOFF_S
    read_licenses: bool = True
    timeouts: Timeouts = Field(default_factory=Timeouts)
    ca_bundle: str | None = None
    insecure: bool = False


SKIPPED_KINDS = frozenset({ErrorKind.NOT_SUPPORTED})
"""Error kinds that mean "not scanned on purpose" (no address, no such capability)."""


class ScanResult(BaseModel):
    """One device as this scan saw it. Serialised (`model_dump(mode="json")`), it is the
    scanned device of PRODUCT.md, key for key: what `scan -o json` prints and the API returns.

    The engine builds one per device with `model_construct` from values that are already
    validated models (Device, DeviceFacts, LicenseStatus), so a 10,000-device scan does not pay
    for validating them twice."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: Device
    driver: str | None
    reachable: bool
    observed_at: datetime
    facts: DeviceFacts | None = None
    licenses: list[LicenseStatus] | None = None
    error: str | None = None
    error_kind: ErrorKind | None = None
    identity_mismatch: str | None = None
    license_read: LicenseRead | None = None
    """Whether the license state was read (None: not attempted, e.g. identity failed)."""

    @classmethod
    def of(
        cls,
        device: Device,
        driver: str | None,
        reachable: bool,
        observed_at: datetime,
        *,
        facts: DeviceFacts | None = None,
        licenses: list[LicenseStatus] | None = None,
        error: str | None = None,
        error_kind: ErrorKind | None = None,
        identity_mismatch: str | None = None,
        license_read: LicenseRead | None = None,
    ) -> ScanResult:
        """A result from values that are valid already (no second validation)."""
        return cls.model_construct(
            device=device,
            driver=driver,
            reachable=reachable,
            observed_at=observed_at,
            facts=facts,
            licenses=licenses,
            error=error,
            error_kind=error_kind,
            identity_mismatch=identity_mismatch,
            license_read=license_read,
        )

    @property
    def ok(self) -> bool:
        return self.reachable and self.error is None

    @property
    def license_unread(self) -> bool:
        """Reached, but its license state could not be read: never to be taken for "none"."""
        return self.license_read is not None and not self.license_read.ok

    @property
    def outcome(self) -> str:
        """`ok`, `license_unread` (reached, license state not read), `skipped` (not scanned on
        purpose) or the error kind: what a scan's summary counts."""
        if self.ok:
            return "license_unread" if self.license_unread else "ok"
        if self.error_kind in SKIPPED_KINDS:
            return "skipped"
        return self.error_kind or "error"

    @property
    def failed(self) -> bool:
        """Failed, or reached without its license state read: either fails the scan."""
        return self.outcome not in ("ok", "skipped")

    @model_serializer
    def _scanned_device(self) -> dict[str, Any]:
        """The scanned-device keys of PRODUCT.md, timestamps ISO 8601 as `isoformat` spells them."""
        facts = self.facts
        device = self.device
        read = self.license_read
        return {
            "serial": device.serial,
            "mac": device.mac,
            "model": (facts.model if facts and facts.model else device.model),
            "product_group": device.product_group.value if device.product_group else None,
            "driver": self.driver,
            "host": device.host,
            "site": device.site,
            "reachable": self.reachable,
            "error": self.error,
            "error_kind": self.error_kind.value if self.error_kind else None,
            "firmware": facts.firmware if facts else device.firmware,
            "licenses": [
                {
                    "feature": lic.feature,
                    "state": lic.state.value,
                    "expires_at": lic.expires_at.isoformat() if lic.expires_at else None,
                }
                for lic in self.licenses or []
            ],
            "license_read": read.to_json() if read else None,
            "observed_at": self.observed_at.isoformat(),
        }

    def observation(self) -> DeviceObservation:
        """The stored form of this result."""
        licenses: list[License] | None = None
        if self.licenses is not None and self.identity_mismatch is None:
            licenses = [
                License(
                    serial=self.device.serial,
                    feature=lic.feature,
                    state=lic.state,
                    expires_at=lic.expires_at,
                    source=self.driver or "scan",
                    observed_at=self.observed_at,
                )
                for lic in self.licenses
            ]
        facts = self.facts
        return DeviceObservation(
            serial=self.device.serial,
            observed_at=self.observed_at,
            reachable=self.reachable,
            driver=self.driver,
            error_kind=self.error_kind.value if self.error_kind else None,
            error=self.error,
            reported_serial=facts.serial if facts else None,
            reported_mac=facts.mac if facts else None,
            reported_model=facts.model if facts else None,
            firmware=facts.firmware if facts else None,
            identity_mismatch=self.identity_mismatch,
            licenses=licenses,
            license_read=self.license_read,
        )


def identity_mismatch(device: Device, facts: DeviceFacts) -> str | None:
    """Why the device at this address is not the inventory's device, or None."""
    problems = []
    if facts.serial != device.serial:
        problems.append(f"serial {facts.serial} (inventory: {device.serial})")
    if facts.mac and device.mac and facts.mac != device.mac:
        problems.append(f"MAC {facts.mac} (inventory: {device.mac})")
    if not problems:
        return None
    return f"device at {device.host} reports " + " and ".join(problems)


SELF_EXPLAINED = frozenset(
    {
        ErrorKind.ERROR,
        ErrorKind.NOT_SUPPORTED,
        ErrorKind.HTTP_STATUS,
        ErrorKind.API_STATUS,
        ErrorKind.COMMAND_ERROR,
    }
)
"""Kinds whose message says what went wrong by itself (`HTTP 500`, the device's error line)."""


def failure_detail(exc: DeviceError, call: str) -> str:
    """What came back, without the call's name the message may start with (it is in `call`)."""
    text = exc.message
    head, sep, rest = text.partition(": ")
    if sep and head.strip("` ") and head.strip("` ") in call:
        text = rest
    return text if exc.kind in SELF_EXPLAINED else f"{exc.kind}: {text}"


ResultSink = Callable[[ScanResult], Awaitable[None]]
TrustMismatchSink = Callable[[str, str, str], Awaitable[None]]


def endpoint_key(device: Device) -> tuple[str, int, int, int]:
    """What "one device" means for the one-operation-at-a-time rule: its address and ports
    (simulated fleets and NATed sites put several devices behind one address)."""
    if not device.host:
        return (f"serial:{device.serial}", 0, 0, 0)
    ports = device.ports
    return (device.host, ports.snmp or 161, ports.https or 443, ports.ssh or 22)


class ScanEngine:
    """Runs drivers over devices with the limits of ScanOptions."""

    def __init__(
        self,
        registry: DriverRegistry,
        transports: Transports,
        credentials: Mapping[str, CredentialProfile],
        *,
        options: ScanOptions | None = None,
        default_credentials: str | None = None,
        pin_store: PinStore | None = None,
        on_trust_mismatch: TrustMismatchSink | None = None,
    ) -> None:
        self.registry = registry
        self.transports = transports
        self.options = options or ScanOptions()
        self.on_trust_mismatch = on_trust_mismatch
        self.sessions = SessionFactory(
            registry,
            transports,
            credentials,
            default_profile=default_credentials,
            timeouts=self.options.timeouts,
            trust=TrustOptions(ca_bundle=self.options.ca_bundle, insecure=self.options.insecure),
            pin_sink=pin_store,
        )
        self._rng = random.Random()

    async def scan(
        self, devices: Sequence[Device], on_result: ResultSink | None = None
    ) -> list[ScanResult]:
        """Scan `devices`; results come back in input order and go to `on_result` as they land."""
        return await fan_out(
            devices,
            self.scan_one,
            on_error=self._unexpected,
            concurrency=self.options.concurrency,
            per_site=self.options.per_site,
            site_of=lambda device: device.site,
            one_at_a_time=endpoint_key,
            on_result=on_result,
        )

    @staticmethod
    def _unexpected(device: Device, exc: Exception) -> ScanResult:
        """A failure outside the driver calls (which `scan_one` already turns into results)."""
        log.error("scanning %s failed unexpectedly", device.serial, exc_info=exc)
        message = f"scan failed unexpectedly: {type(exc).__name__}: {exc}"
        return ScanEngine._failed(
            device, device.driver, datetime.now(UTC), ErrorKind.INTERNAL_ERROR, message
        )

    async def scan_one(self, device: Device) -> ScanResult:
        """Identity, then licenses, of one device within its time budget."""
        started = datetime.now(UTC)
        try:
            session = self.sessions.open(device)
        except DriverRegistryError as exc:
            return self._failed(device, device.driver, started, ErrorKind.NO_DRIVER, str(exc))
        driver = session.driver
        name = driver.name
        try:
            async with asyncio.timeout(self.options.device_budget):
                facts = await self._with_retries(driver.identify)
                mismatch = identity_mismatch(device, facts)
                if mismatch is not None:
                    return ScanResult.of(
                        device, name, True, datetime.now(UTC), facts=facts,
                        error=mismatch, error_kind=ErrorKind.IDENTITY_MISMATCH,
                        identity_mismatch=mismatch,
                    )  # fmt: skip
                await session.identity_proven()
                if not self.options.read_licenses:
                    return ScanResult.of(device, name, True, datetime.now(UTC), facts=facts)
                licenses, read, failure = await self._read_licenses(driver)
                return ScanResult.of(
                    device, name, True, datetime.now(UTC), facts=facts, licenses=licenses,
                    error=failure.message if failure else None,
                    error_kind=failure.kind if failure else None,
                    license_read=read,
                )  # fmt: skip
        except TimeoutError:
            budget = self.options.device_budget
            error = DeviceTimeout(f"no complete answer within the {budget:g} s device budget")
            return self._failed(device, name, started, error.kind, error.message)
        except TrustMismatch as exc:
            if self.on_trust_mismatch is not None:
                await self.on_trust_mismatch(device.serial, exc.pin_kind, exc.actual)
            return self._failed(device, name, started, exc.kind, exc.message)
        except DeviceError as exc:
            return self._failed(device, name, started, exc.kind, exc.message)
        except Exception as exc:  # a driver bug must not end the scan of everyone else
            log.exception("scanning %s: %s failed unexpectedly", device.serial, name)
            message = f"{name} failed unexpectedly: {type(exc).__name__}: {exc}"
            return self._failed(device, name, started, ErrorKind.INTERNAL_ERROR, message)
        finally:
            try:
                await driver.close()
            except DeviceError as exc:
                log.debug("closing %s failed: %s", device.serial, exc)
            if device.host:
                self.transports.release(device.host)

    async def _read_licenses(
        self, driver: DeviceDriver
    ) -> tuple[list[LicenseStatus] | None, LicenseRead, DeviceError | None]:
        """(licenses, how the read went, a failure that also fails the scan of the device).

        A device that answered its identity but not the license call (HTTP 404, an API error
        line, noSuchObject) is reachable with its license state unread; a connection, busy or
        login failure still fails the device as before."""
        call, modeled = driver.license_call()
        try:
            licenses = await self._with_retries(driver.read_licenses)
        except TrustMismatch:
            raise
        except DeviceError as exc:
            read = LicenseRead(
                ok=False, call=call, detail=failure_detail(exc, call), modeled=modeled
            )
            fatal = isinstance(exc, DeviceConnectionError | DeviceBusy | AuthenticationFailed)
            return None, read, exc if fatal else None
        detail = f"{len(licenses)} feature(s) reported"
        return licenses, LicenseRead(ok=True, call=call, detail=detail, modeled=modeled), None

    async def _with_retries(self, call: Callable[[], Awaitable[T]]) -> T:
        return await with_retries(
            call, attempts=self.options.attempts, backoff=self.options.backoff, rng=self._rng
        )

    @staticmethod
    def _failed(
        device: Device, name: str | None, started: datetime, kind: ErrorKind, message: str
    ) -> ScanResult:
        return ScanResult.of(device, name, kind.reached, started, error=message, error_kind=kind)
