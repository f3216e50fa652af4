"""What a driver gets to work with: the device record, its credentials and the transports.

Drivers never build transports themselves: the scan engine (or a test) hands every driver the
same shared clients through a DriverContext, so one event loop has one SNMP engine and one HTTP
connection pool whatever the number of devices.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from device_drivers.errors import DeviceUnreachable, NotSupported
from device_drivers.transports import (
    HttpClient,
    HttpTarget,
    SnmpClient,
    SnmpTarget,
    SshClient,
    SshTarget,
    TrustPolicy,
)
from inventory.errors import InvalidIdentifier
from inventory.hosts import normalize_host
from inventory.models import CredentialProfile, Device

PinStore = Callable[[str, str, str], Awaitable[object]]
"""Records a first-use pin: (serial, "tls" | "ssh", value)."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-request timeouts and retries; a silent device costs at most about timeout x tries."""

    snmp: float = 1.0
    snmp_retries: int = 1
    http: float = 5.0
    ssh: float = 10.0


@dataclass(slots=True)
class DriverContext:
    """Everything one driver instance needs to talk to one device."""

    device: Device
    credentials: CredentialProfile | None
    snmp: SnmpClient | None = None
    http: HttpClient | None = None
    ssh: SshClient | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    ca_bundle: str | None = None
    insecure: bool = False
    pin_store: PinStore | None = None
    snmp_answers: bool = False
    """SNMP is known to answer with `snmp_credentials` (discovery identified the device that
    way, the default community included): SNMP look-ups such as the MAC use that access."""
    snmp_credentials: CredentialProfile | None = None
    modeled: Mapping[str, Any] | None = None
    """The driver's modeled parameters; None: the config file's `[drivers.<name>]` (or defaults)."""

    @property
    def host(self) -> str:
        """The device's address, checked again: a store may hold one from before hosts were
        validated, and nothing but an address may reach a URL or a socket."""
        serial = self.device.serial
        if not self.device.host:
            raise NotSupported("the inventory has no host address for it", serial=serial)
        try:
            return normalize_host(self.device.host)
        except InvalidIdentifier as exc:
            raise DeviceUnreachable(
                f"not contacted: the inventory's {exc}; correct it with "
                f"`polyfleet inventory add {serial} --host ADDRESS`",
                serial=serial,
            ) from None

    def _trust(self, kind: str, pinned: str | None) -> TrustPolicy:
        serial = self.device.serial
        store = self.pin_store

        async def remember(value: str) -> None:
            if store is not None:
                await store(serial, kind, value)

        return TrustPolicy(
            pinned=pinned,
            ca_bundle=self.ca_bundle,
            insecure=self.insecure,
            on_first_use=remember,
        )

    def snmp_target(self) -> SnmpTarget:
        return SnmpTarget(
            host=self.host,
            port=self.device.ports.snmp or 161,
            credentials=self.snmp_credentials if self.snmp_answers else self.credentials,
            timeout=self.timeouts.snmp,
            retries=self.timeouts.snmp_retries,
        )

    def http_target(
        self, *, default_user: str | None = None, default_port: int = 443
    ) -> HttpTarget:
        creds = self.credentials
        password = creds.http_password.get_secret_value() if creds and creds.http_password else None
        return HttpTarget(
            host=self.host,
            port=self.device.ports.https or default_port,
            user=(creds.http_user if creds and creds.http_user else default_user),
            password=password,
            trust=self._trust("tls", self.device.tls_fingerprint),
            timeout=self.timeouts.http,
        )

    def ssh_target(
        self,
        *,
        prompt: str | None = "-> ",
        pacing: float = 0.0,
        complete: Callable[[str], bool] | None = None,
    ) -> SshTarget:
        creds = self.credentials
        password = creds.ssh_password.get_secret_value() if creds and creds.ssh_password else None
        return SshTarget(
            host=self.host,
            port=self.device.ports.ssh or 22,
            user=creds.ssh_user if creds else None,
            password=password,
            key_file=creds.ssh_key_file if creds else None,
            trust=self._trust("ssh", self.device.ssh_host_key),
            timeout=self.timeouts.ssh,
            prompt=prompt,
            pacing=pacing,
            complete=complete,
        )
