"""Every registered driver against its simulator personality, over the real transports (napalm's
shared conformance suite): identify, read_licenses, apply_activation + verify, refused keys and
every simulator fault. A registered driver without a personality here fails the suite."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest

from device_drivers.base import Capability, DeviceDriver
from device_drivers.context import DriverContext, Timeouts
from device_drivers.errors import (
    ActivationRejected,
    AuthenticationFailed,
    DeviceBusy,
    DeviceConnectionError,
    DeviceError,
    DeviceTimeout,
    HostKeyMismatch,
    MalformedReply,
    NotSupported,
    TlsFingerprintMismatch,
)
from device_drivers.models import DeviceFacts
from device_drivers.registry import DriverRegistry
from device_drivers.transports.http import AiohttpClient
from device_drivers.transports.snmp import PysnmpClient
from device_drivers.transports.ssh import AsyncsshClient
from inventory.models import CredentialProfile, Device, DevicePorts, LicenseState
from simulator.activation_keys import issue_key
from simulator.context import FleetSecrets
from simulator.faults import FAULT_NAMES
from simulator.fleet import generate_fleet
from simulator.licensing import FEATURES_BY_FAMILY, effective_state
from simulator.runner import RunningFleet, run_fleet
from simulator.state import LicenseState as SimState
from simulator.state import SimDevice

FAST = Timeouts(snmp=0.25, snmp_retries=1, http=0.8, ssh=1.5)
"""For the faults that must end in a timeout or ride one out: short, so those cases stay quick."""
PATIENT = Timeouts(snmp=2.0, snmp_retries=1, http=5.0, ssh=10.0)
"""For everything else: a loaded CI machine must not turn an answer into a timeout."""
TIMING_FAULTS = frozenset(
    {"slow", "wrong_credentials", "snmp_every_other", "unreachable", "flapping"}
)
SLOW_LATENCY_S = 1.8
"""Above every FAST timeout, so a slow device must surface as DeviceTimeout."""
ALL_CAPABILITIES = frozenset(Capability)
NOT_NETWORKED = "not networked"

Protocol = str  # "http" | "ssh" | "snmp"


@dataclass(frozen=True, slots=True)
class Personality:
    """How a driver meets the simulator: the family to simulate, the credentials it uses, what
    `identify` must return and which protocol answers first (it decides the fault outcomes)."""

    family: str
    primary: Protocol
    protocols: frozenset[Protocol]
    identity: Callable[[SimDevice], dict[str, object]]
    state_of: Callable[[SimState], LicenseState] = lambda s: LicenseState(s.value)
    networked: bool = True
    rejections: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    modeled_license_read: bool = False
    """Whether it reads license state through a modeled HTTPS route (`license_api_absent`)."""


def _full(sim: SimDevice) -> dict[str, object]:
    return {"serial": sim.serial, "mac": sim.mac, "model": sim.model, "firmware": sim.firmware}


REFUSALS: dict[str, tuple[str, ...]] = {
    "wrong_serial": ("wrong_serial",),
    "tampered": ("tampered",),
    "expired": ("expired",),
}

PERSONALITIES: dict[str, Personality] = {
    "poly-uc": Personality(
        "vvx", "http", frozenset({"http"}), _full, rejections=REFUSALS, modeled_license_read=True
    ),
    "poly-videoos": Personality(
        "studiox",
        "http",
        frozenset({"http", "snmp"}),
        lambda sim: {**_full(sim), "model": sim.model.replace(" ", "")},
        rejections=REFUSALS,
        modeled_license_read=True,
    ),
    "polycom-gs": Personality(
        "gs",
        "ssh",
        frozenset({"ssh", "snmp"}),
        _full,
        # The command API says `invalid option key` for malformed and tampered keys alike.
        rejections={**REFUSALS, "tampered": ("invalid_key",)},
    ),
    "poly-infra": Personality(
        "dma",
        "http",
        frozenset({"http", "snmp"}),
        lambda sim: {"serial": sim.serial, "model": sim.model, "firmware": sim.firmware},
        rejections=REFUSALS,
    ),
    "snmp-generic": Personality("gs", "snmp", frozenset({"snmp"}), _full),
    "analog": Personality(
        "analog", "none", frozenset(), lambda sim: {"serial": sim.serial}, networked=False
    ),
    # The third-party example package installed in the test environment (tests/plugins).
    "example-lab-phone": Personality(
        "vvx", "snmp", frozenset({"snmp"}), lambda sim: {"serial": sim.system_name.upper()}
    ),
}

DRIVERS: list[type[DeviceDriver]] = DriverRegistry().all()
NETWORKED = [d for d in DRIVERS if PERSONALITIES.get(d.name, PERSONALITIES["analog"]).networked]
APPLYING = [d for d in NETWORKED if Capability.APPLY_ACTIVATION in d.capabilities]
REFUSAL_CASES = [
    pytest.param(d, kind, id=f"{d.name}-{kind}")
    for d in APPLYING
    for kind in PERSONALITIES.get(d.name, PERSONALITIES["analog"]).rejections
]


def _names(drivers: list[type[DeviceDriver]]) -> list[str]:
    return [d.name for d in drivers]


def personality(driver: type[DeviceDriver]) -> Personality:
    """The driver's simulator personality; a driver without one fails (napalm habit)."""
    found = PERSONALITIES.get(driver.name)
    if found is None:
        pytest.fail(f"driver {driver.name!r} is registered but has no simulator personality")
    return found


# --- harness -------------------------------------------------------------------------------


def _sim_device(family: str) -> SimDevice:
    sim = generate_fleet(1, {family: 100}, seed=7)[0]
    features = FEATURES_BY_FAMILY.get(family, ())
    if features:
        # A known mix: first feature expired (to re-activate), the rest as the fleet made them.
        first = sim.licenses[features[0]]
        first.state = SimState.EXPIRED
        first.expires_at = datetime.now(UTC) - timedelta(days=30)
    return sim


def _credentials(sim: SimDevice, protocols: frozenset[Protocol]) -> CredentialProfile:
    cred = sim.credentials
    values: dict[str, object] = {"name": "sim"}
    if "http" in protocols:
        values |= {"http_user": cred.http_user, "http_password": cred.http_password}
    if "ssh" in protocols:
        values |= {"ssh_user": cred.ssh_user, "ssh_password": cred.ssh_password}
    if "snmp" in protocols:
        values |= {"snmp_community": cred.snmp_community}
    return CredentialProfile.model_validate(values)


@dataclass(slots=True)
class Harness:
    """A running one-device fleet, real transports, and a way to build the driver."""

    fleet: RunningFleet
    sim: SimDevice
    driver_cls: type[DeviceDriver]
    persona: Personality
    pins: dict[str, str] = field(default_factory=dict)
    clients: tuple[PysnmpClient, AiohttpClient, AsyncsshClient] | None = None
    timeouts: Timeouts = PATIENT

    def device_record(self, **overrides: object) -> Device:
        endpoint = self.fleet.endpoints.get(self.sim.serial)
        values: dict[str, object] = {
            "serial": self.sim.serial,
            "mac": self.sim.mac,
            "model": self.sim.model,
            "driver": self.driver_cls.name,
        }
        if endpoint is not None and self.persona.networked:
            values |= {
                "host": endpoint.host,
                "ports": DevicePorts(
                    snmp=endpoint.snmp_port, https=endpoint.https_port, ssh=endpoint.ssh_port
                ),
            }
        return Device.model_validate(values | overrides)

    async def remember_pin(self, serial: str, kind: str, value: str) -> None:
        self.pins[kind] = value

    def driver(self, device: Device | None = None) -> DeviceDriver:
        assert self.clients is not None
        snmp, http, ssh = self.clients
        ctx = DriverContext(
            device=device or self.device_record(),
            credentials=_credentials(self.sim, self.persona.protocols),
            snmp=snmp,
            http=http,
            ssh=ssh,
            timeouts=self.timeouts,
            pin_store=self.remember_pin,
        )
        return self.driver_cls(ctx)


@asynccontextmanager
async def harness(
    driver_cls: type[DeviceDriver], *, fault: str | None = None
) -> AsyncIterator[Harness]:
    persona = personality(driver_cls)
    sim = _sim_device(persona.family)
    if fault == "unreachable":
        sim.faults.unreachable = True  # set before start: nothing listens on HTTPS
    async with run_fleet(
        [sim],
        secrets=FleetSecrets.generate(),
        loopback_only=True,
        snmp="snmp" in persona.protocols,
        ssh="ssh" in persona.protocols,
    ) as fleet:
        clients = (PysnmpClient(), AiohttpClient(), AsyncsshClient())
        try:
            timeouts = FAST if fault in TIMING_FAULTS else PATIENT
            yield Harness(fleet, sim, driver_cls, persona, clients=clients, timeouts=timeouts)
        finally:
            for client in clients:
                await client.close()


@asynccontextmanager
async def opened(h: Harness, device: Device | None = None) -> AsyncIterator[DeviceDriver]:
    driver = h.driver(device)
    try:
        yield driver
    finally:
        await driver.close()
        if h.clients is not None and driver.ctx.device.host:
            # As ScanEngine does once a device is done: its idle connections are closed, so
            # the next session makes a new TLS handshake (and sees a changed certificate).
            h.clients[1].release_host(driver.ctx.device.host)


def key_for(h: Harness, feature: str, *, serial: str | None = None, days: int = 365) -> str:
    expires = datetime.now(UTC).date() + timedelta(days=days)
    return issue_key(h.fleet.secrets.portal_secret, serial or h.sim.serial, feature, expires)


def first_feature(h: Harness) -> str:
    return FEATURES_BY_FAMILY[h.persona.family][0]


def assert_identity(found: DeviceFacts, expected: dict[str, object]) -> None:
    for name, value in expected.items():
        assert getattr(found, name) == value, f"{name}: {getattr(found, name)!r} != {value!r}"


# --- the suite ---------------------------------------------------------------------------------


def test_every_registered_driver_has_a_simulator_personality() -> None:
    missing = [d.name for d in DRIVERS if d.name not in PERSONALITIES]
    assert not missing, f"registered drivers without a simulator personality: {missing}"
    builtin = {"poly-uc", "poly-videoos", "polycom-gs", "poly-infra", "analog", "snmp-generic"}
    assert builtin <= {d.name for d in DRIVERS}


@pytest.mark.parametrize("driver_cls", DRIVERS, ids=_names(DRIVERS))
def test_driver_declares_itself(driver_cls: type[DeviceDriver]) -> None:
    assert driver_cls.name
    assert driver_cls.capabilities <= ALL_CAPABILITIES
    for operation, how in driver_cls.modeled_calls.items():
        assert "modeled" in how.lower(), f"{operation}: {how!r} must say it is modeled"


async def test_analog_refuses_every_remote_call() -> None:
    driver_cls = next(d for d in DRIVERS if d.name == "analog")
    async with harness(driver_cls) as h, opened(h) as driver:
        for call in (
            driver.identify(),
            driver.read_licenses(),
            driver.apply_activation("x", "y"),
            driver.verify("x"),
        ):
            with pytest.raises(NotSupported, match=NOT_NETWORKED):
                await call


@pytest.mark.parametrize("driver_cls", NETWORKED, ids=_names(NETWORKED))
async def test_identify_returns_the_simulated_identity(driver_cls: type[DeviceDriver]) -> None:
    async with harness(driver_cls) as h, opened(h) as driver:
        found = await driver.identify()
        assert_identity(found, h.persona.identity(h.sim))


@pytest.mark.parametrize("driver_cls", NETWORKED, ids=_names(NETWORKED))
async def test_read_licenses_matches_the_simulated_mix(driver_cls: type[DeviceDriver]) -> None:
    async with harness(driver_cls) as h, opened(h) as driver:
        if Capability.READ_LICENSES not in driver_cls.capabilities:
            with pytest.raises(NotSupported):
                await driver.read_licenses()
            return
        found = {status.feature: status.state for status in await driver.read_licenses()}
        expected = {
            name: h.persona.state_of(effective_state(lic)) for name, lic in h.sim.licenses.items()
        }
        assert found == expected


@pytest.mark.parametrize("driver_cls", NETWORKED, ids=_names(NETWORKED))
async def test_apply_valid_key_activates_and_verify_confirms(
    driver_cls: type[DeviceDriver],
) -> None:
    async with harness(driver_cls) as h, opened(h) as driver:
        if Capability.APPLY_ACTIVATION not in driver_cls.capabilities:
            with pytest.raises(NotSupported):
                await driver.apply_activation("feature", "key")
            return
        feature = first_feature(h)
        before = await driver.verify(feature)
        assert before.state is LicenseState.EXPIRED
        result = await driver.apply_activation(feature, key_for(h, feature))
        assert result.applied
        assert result.state is LicenseState.ACTIVE
        assert result.expires_at is not None
        assert result.expires_at.date() == date.today() + timedelta(days=365)
        assert (await driver.verify(feature)).state is LicenseState.ACTIVE
        assert effective_state(h.sim.licenses[feature]) is SimState.ACTIVE


def _bad_key(h: Harness, kind: str, feature: str) -> str:
    if kind == "wrong_serial":
        return key_for(h, feature, serial="82OTHER0000001")
    if kind == "expired":
        return key_for(h, feature, days=-2)
    good = key_for(h, feature)
    return good[:-1] + ("0" if good[-1] != "0" else "1")


@pytest.mark.parametrize(("driver_cls", "kind"), REFUSAL_CASES)
async def test_refused_keys_raise_activation_rejected_with_the_reason(
    driver_cls: type[DeviceDriver], kind: str
) -> None:
    async with harness(driver_cls) as h, opened(h) as driver:
        feature = first_feature(h)
        with pytest.raises(ActivationRejected) as caught:
            await driver.apply_activation(feature, _bad_key(h, kind, feature))
        assert any(reason in str(caught.value) for reason in h.persona.rejections[kind])
        assert h.sim.serial in str(caught.value)
        assert (await driver.verify(feature)).state is LicenseState.EXPIRED


# --- faults ------------------------------------------------------------------------------------

Outcome = tuple[type[DeviceError], ...] | None
"""The error classes a fault must surface as; None means the driver must ride it out."""


def expected_outcome(fault: str, persona: Personality) -> Outcome:
    """What each simulator fault must look like through this driver's first protocol."""
    primary = persona.primary
    if fault == "license_api_absent":  # reached and identified; the license read is refused
        return (NotSupported,) if persona.modeled_license_read else None
    table: dict[str, dict[str, Outcome]] = {
        "unreachable": {"*": (DeviceConnectionError,)},
        "slow": {"*": (DeviceTimeout,)},
        # An SNMP v2c agent ignores a wrong community: silence, so a timeout is all one sees.
        "wrong_credentials": {"snmp": (DeviceTimeout,), "*": (AuthenticationFailed,)},
        "busy": {"snmp": None, "*": (DeviceBusy,)},
        "malformed_json": {"http": (MalformedReply,), "*": None},
        "truncated": {"http": (MalformedReply,), "*": None},
        "tls_cert_changed": {"http": (TlsFingerprintMismatch,), "*": None},
        "ssh_host_key_changed": {"ssh": (HostKeyMismatch,), "*": None},
        # One retry (FAST.snmp_retries) rides out every other datagram being dropped.
        "snmp_every_other": {"*": None},
    }
    row = table[fault]
    return row.get(primary, row["*"])


async def _scan(driver: DeviceDriver) -> None:
    """What a scan does with a device: identity, then licenses where the driver reads them."""
    await driver.identify()
    if Capability.READ_LICENSES in type(driver).capabilities:
        await driver.read_licenses()


FAULT_CASES = [
    pytest.param(d, fault, id=f"{d.name}-{fault}")
    for d in NETWORKED
    for fault in FAULT_NAMES
    if fault != "flapping"
]


@pytest.mark.parametrize(("driver_cls", "fault"), FAULT_CASES)
async def test_fault_surfaces_as_the_right_error(
    driver_cls: type[DeviceDriver], fault: str
) -> None:
    async with harness(driver_cls, fault=fault) as h:
        expected = expected_outcome(fault, h.persona)
        device = h.device_record()
        if fault in ("tls_cert_changed", "ssh_host_key_changed"):
            async with opened(h) as driver:
                await _scan(driver)  # first contact pins the certificate / host key
            device = device.model_copy(
                update={
                    "tls_fingerprint": h.pins.get("tls"),
                    "ssh_host_key": h.pins.get("ssh"),
                }
            )
        if fault == "slow":
            h.sim.faults.latency_s = SLOW_LATENCY_S
        elif fault != "unreachable":
            setattr(h.sim.faults, fault, True)
        async with opened(h, device) as driver:
            if expected is None:
                await _scan(driver)
            else:
                with pytest.raises(expected) as caught:
                    await _scan(driver)
                # The error names the device it came from, by serial or by address ...
                named = {caught.value.serial, caught.value.host}
                assert named & {h.sim.serial, device.host}, named
                # ... and it says whether the device was reached at all: by its kind, or (a
                # refusal such as NotSupported, which implies no answer) by what was answered.
                connection_fault = issubclass(expected[0], DeviceConnectionError)
                reached = caught.value.kind.reached or caught.value.answered
                assert reached is not connection_fault


@pytest.mark.parametrize("driver_cls", NETWORKED, ids=_names(NETWORKED))
async def test_flapping_device_fails_cleanly_or_answers(driver_cls: type[DeviceDriver]) -> None:
    """A device that drops every other connection: each try either answers with the device's
    identity or fails as a connection error (anything else escapes and fails the test), and
    since every other connection gets through, tries do answer."""
    async with harness(driver_cls, fault="flapping") as h:
        h.sim.faults.flapping = True
        answered: list[DeviceFacts] = []
        cut: list[DeviceConnectionError] = []
        for _ in range(4):
            async with opened(h) as driver:
                try:
                    answered.append(await driver.identify())
                except DeviceConnectionError as exc:
                    cut.append(exc)
        assert answered, "no try got through, though only every other connection is cut"
        for facts in answered:
            assert_identity(facts, h.persona.identity(h.sim))
        assert [exc for exc in cut if exc.kind.reached] == []  # a cut connection is no answer


@pytest.mark.parametrize("family", ["dma", "rprm"])
async def test_infra_over_snmp_only_reports_coarse_license_state(family: str) -> None:
    driver_cls = next(d for d in DRIVERS if d.name == "poly-infra")
    sim = _sim_device(family)
    persona = dataclasses.replace(
        PERSONALITIES["poly-infra"], family=family, protocols=frozenset({"snmp"})
    )
    async with run_fleet([sim], loopback_only=True, ssh=False) as fleet:
        clients = (PysnmpClient(), AiohttpClient(), AsyncsshClient())
        snmp_h = Harness(fleet, sim, driver_cls, persona, clients=clients)
        try:
            async with opened(snmp_h) as driver:
                found = await driver.identify()
                assert (found.serial, found.model) == (sim.serial, sim.model)
                states = {s.feature: s.state for s in await driver.read_licenses()}
                with pytest.raises(NotSupported):
                    await driver.apply_activation("system", "key")
        finally:
            for client in clients:
                await client.close()
    if family == "dma":
        assert states == {"system": LicenseState.EXPIRED}  # stLicLicenseStatus invalid(2)
    else:
        assert states == {"system": LicenseState.MISSING}  # serviceLicenseCapability 0


async def test_uc_apply_keeps_the_other_keys_of_the_license_file() -> None:
    from simulator.uc_phone_modeled import license_file_name, parse_license_cfg, render_license_cfg

    driver_cls = next(d for d in DRIVERS if d.name == "poly-uc")
    async with harness(driver_cls) as h, opened(h) as driver:
        assert h.sim.mac is not None
        where = (h.sim.site, license_file_name(h.sim.mac))
        other = key_for(h, "uc_features")
        h.fleet.provisioning_files[where] = render_license_cfg([other]).encode()
        feature = first_feature(h)
        new = key_for(h, feature)
        await driver.apply_activation(feature, new)
        assert parse_license_cfg(h.fleet.provisioning_files[where].decode()) == [other, new]


async def test_uc_refused_key_leaves_the_server_and_a_stale_bad_key_does_not_block() -> None:
    from simulator.uc_phone_modeled import license_file_name, parse_license_cfg, render_license_cfg

    driver_cls = next(d for d in DRIVERS if d.name == "poly-uc")
    async with harness(driver_cls) as h, opened(h) as driver:
        assert h.sim.mac is not None
        where = (h.sim.site, license_file_name(h.sim.mac))
        feature = first_feature(h)
        stale = _bad_key(h, "tampered", "uc_features")
        h.fleet.provisioning_files[where] = render_license_cfg([stale]).encode()
        # The modeled LastUpdate names the first problem in the file (here the stale key's).
        with pytest.raises(ActivationRejected):
            await driver.apply_activation(feature, _bad_key(h, "wrong_serial", feature))
        assert parse_license_cfg(h.fleet.provisioning_files[where].decode()) == [stale]
        result = await driver.apply_activation(feature, key_for(h, feature))
        assert (result.applied, result.state) == (True, LicenseState.ACTIVE)
