"""In-memory state of one simulated Poly device, shared by its SNMP, HTTPS and SSH faces.

Every protocol server of the simulator reads and changes a `SimDevice`; nothing here does I/O,
so the state can be built by the fleet generator, saved to a state file and restored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class LicenseState(StrEnum):
    """Per-feature license state, as the product reports it (PRODUCT.md)."""

    ACTIVE = "active"
    EXPIRED = "expired"
    DEACTIVATED = "deactivated"
    MISSING = "missing"


@dataclass(slots=True)
class SimLicense:
    """One licensed feature on a device; `key` is the activation key that was last applied."""

    feature: str
    state: LicenseState
    expires_at: datetime | None = None
    key: str | None = None


@dataclass(slots=True)
class SimCredentials:
    """What the device accepts; the fleet hands the matching profile to the inventory.

    Secrets stay out of `repr`, so a logged device never shows them.
    """

    http_user: str = "Polycom"
    http_password: str = field(default="456", repr=False)
    ssh_user: str = "admin"
    ssh_password: str = field(default="456", repr=False)
    snmp_community: str = field(default="public", repr=False)
    snmp_v3_user: str = "polyfleet"
    snmp_v3_auth_key: str = field(default="authkey-polyfleet", repr=False)
    snmp_v3_priv_key: str = field(default="privkey-polyfleet", repr=False)


@dataclass(slots=True)
class SimFaults:
    """Faults injected into a device (issue 3, item 6). All off by default."""

    unreachable: bool = False
    latency_s: float = 0.0
    flapping: bool = False
    wrong_credentials: bool = False
    busy: bool = False
    malformed_json: bool = False
    truncated: bool = False
    tls_cert_changed: bool = False
    ssh_host_key_changed: bool = False
    snmp_every_other: bool = False
    license_api_absent: bool = False
    """Firmware without the modeled license-read route: it answers 404, as a route the
    firmware does not know (what issue 10's interop peers answer)."""


@dataclass(slots=True)
class SimLicenseUpdate:
    """Outcome of the device's last attempt to load a key, so the modeled routes can say why."""

    at: datetime
    result: str
    feature: str | None = None
    reason: str | None = None


@dataclass(slots=True)
class SimDevice:
    """A simulated device: identity, addressing, license features and injected faults.

    `mac` is 12 lower-case hex digits without separators (as phones report `MACAddress`), or None
    for analog products; a port of None means the device does not serve that protocol.
    """

    serial: str
    mac: str | None
    model: str
    family: str
    firmware: str
    host: str
    system_name: str
    site: str
    snmp_port: int | None = 161
    https_port: int | None = 443
    ssh_port: int | None = 22
    licenses: dict[str, SimLicense] = field(default_factory=dict)
    credentials: SimCredentials = field(default_factory=SimCredentials)
    faults: SimFaults = field(default_factory=SimFaults)
    in_call: bool = False
    boot_time: float = 0.0
    provisioning_url: str | None = None
    last_license_update: SimLicenseUpdate | None = None
    applied_keys: list[str] = field(default_factory=list)
    """Every key this device loaded, in order (tests count re-activations; not persisted)."""
    restart_required: bool = False
    config: dict[str, str] = field(default_factory=dict)
    """Configuration parameters set over an API (UC `config/set`, GS `systemsetting`)."""
