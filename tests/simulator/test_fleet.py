"""Fleet generation: deterministic, Poly-shaped identities, a realistic license mix."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from inventory.catalog import POLY_OUIS, family_for_model
from simulator.contracts import generate_contracts
from simulator.fleet import (
    DEFAULT_LICENSE_MIX,
    MixError,
    generate_fleet,
    parse_license_mix,
    parse_mix,
)
from simulator.licensing import effective_state
from simulator.state import LicenseState

DAY = date(2026, 1, 15)
DAY_START = datetime(2026, 1, 15, tzinfo=UTC)


def test_same_seed_same_fleet_other_seed_other_fleet() -> None:
    first = generate_fleet(300, seed=42, today=DAY)
    again = generate_fleet(300, seed=42, today=DAY)
    other = generate_fleet(300, seed=43, today=DAY)
    assert first == again
    assert [d.serial for d in first] != [d.serial for d in other]
    assert generate_contracts(first, 42, today=DAY) == generate_contracts(again, 42, today=DAY)


def test_identities_look_like_poly_devices() -> None:
    devices = generate_fleet(500, seed=7, today=DAY)
    macs = [d.mac for d in devices if d.mac is not None]
    assert len(macs) == len(set(macs))
    assert all(mac[:6] in POLY_OUIS and len(mac) == 12 for mac in macs)
    assert len({d.serial for d in devices}) == len(devices)
    for device in devices:
        family = family_for_model(device.model)
        assert family is not None
        assert family.key == device.family
        if device.family in {"vvx", "trio", "ccx"}:
            assert device.mac is not None
            assert device.serial == device.mac.upper()
        if device.family == "studiox":
            assert device.serial.startswith("8L")
            assert len(device.serial) == 14
        if device.family == "analog":
            assert device.mac is None
            assert device.host == ""
            assert (device.https_port, device.snmp_port, device.ssh_port) == (None, None, None)
    hosts = [d.host for d in devices if d.host]
    assert hosts[0] == "127.20.0.1"
    assert len(set(hosts)) == len(hosts)


def test_mix_allocation_is_exact_and_license_mix_is_realistic() -> None:
    devices = generate_fleet(
        1000, parse_mix("vvx=40,trio=15,ccx=10,studiox=10,gs=10,dma=5,analog=10"), seed=3, today=DAY
    )
    counts = Counter(d.family for d in devices)
    assert counts == {
        "vvx": 400,
        "trio": 150,
        "ccx": 100,
        "studiox": 100,
        "gs": 100,
        "dma": 50,
        "analog": 100,
    }
    now = datetime.combine(DAY, datetime.min.time(), tzinfo=UTC)
    states = Counter(effective_state(lic, now) for d in devices for lic in d.licenses.values())
    expiring = sum(
        1
        for d in devices
        for lic in d.licenses.values()
        if lic.state is LicenseState.ACTIVE
        and lic.expires_at is not None
        and lic.expires_at < now + timedelta(days=30)
    )
    total = sum(states.values())
    assert states[LicenseState.ACTIVE] > total * 0.8
    assert states[LicenseState.EXPIRED] > 0
    assert states[LicenseState.DEACTIVATED] > 0
    assert expiring > 0


def test_parse_mix_errors_are_clear() -> None:
    assert parse_mix("vvx=40, gs=10%") == {"vvx": 40, "gs": 10}
    with pytest.raises(MixError, match="unknown family"):
        parse_mix("vvx=40,fax=10")
    with pytest.raises(MixError, match="whole number"):
        parse_mix("vvx=forty")
    with pytest.raises(MixError, match="twice"):
        parse_mix("vvx=1,vvx=2")
    with pytest.raises(MixError):
        parse_mix("vvx=0")
    with pytest.raises(MixError, match="FAMILY=PERCENT"):
        parse_mix("vvx")


def test_license_mix_and_contract_coverage_can_be_chosen() -> None:
    default = generate_fleet(200, seed=4, today=DAY)
    assert generate_fleet(200, seed=4, today=DAY, license_mix=DEFAULT_LICENSE_MIX) == default
    assert generate_contracts(default, 4, today=DAY, coverage=84) == generate_contracts(
        default, 4, today=DAY
    )
    expired = generate_fleet(200, seed=4, today=DAY, license_mix={"expired": 100})
    assert len(expired) == 200
    for device in expired:
        states = [effective_state(lic, DAY_START) for lic in device.licenses.values()]
        assert states[:1] in ([], [LicenseState.EXPIRED])
        assert all(state is LicenseState.ACTIVE for state in states[1:])
    contracts = generate_contracts(expired, 4, today=DAY, coverage=100)
    covered = {s for c in contracts if c.active_on(DAY) for s in c.serials}
    assert covered == {d.serial for d in expired}
    bare = generate_contracts(expired, 4, today=DAY, coverage=0)
    assert not any(c.active_on(DAY) for c in bare)


def test_parse_license_mix() -> None:
    assert parse_license_mix("active=50, expired=50%") == {"active": 50, "expired": 50}
    with pytest.raises(MixError, match="unknown license category"):
        parse_license_mix("stale=10")
    with pytest.raises(MixError, match="CATEGORY=PERCENT"):
        parse_license_mix("expired")
    with pytest.raises(MixError):
        parse_license_mix("expired=0")
