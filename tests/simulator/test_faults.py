"""Fault injection: parsing, selection, and what each fault looks like to an HTTPS client."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from simulator.faults import FaultSpecError, apply_faults, parse_faults
from simulator.fleet import generate_fleet
from tests.simulator.https_helpers import (
    base_url,
    certificate_fingerprint,
    curl,
    fleet_on_loopback,
    insecure_session,
    small_fleet,
)

AUTH = {"Authorization": aiohttp.encode_basic_auth("Polycom", "456")}
INFO = "/api/v1/mgmt/device/info"


def test_parse_faults_shares_counts_serials_and_latency() -> None:
    plan = parse_faults(
        "unreachable=5%, slow=3, busy@0004f2aabbcc, latency=0.25, tls-cert-changed=1"
    )
    assert plan.shares == {"unreachable": 5.0}
    assert plan.counts == {"slow": 3, "tls_cert_changed": 1}
    assert plan.serials == {"0004F2AABBCC": {"busy"}}
    assert plan.latency_s == 0.25
    for bad in ("nosuch=5%", "slow=abc", "slow=150%", "slow", "latency=-1", "busy@"):
        with pytest.raises(FaultSpecError):
            parse_faults(bad)


def test_apply_faults_is_deterministic_and_skips_analog() -> None:
    def picks(seed: int) -> list[str]:
        devices = generate_fleet(100, seed=2)
        apply_faults(devices, parse_faults("unreachable=10%,slow=2"), seed)
        return [d.serial for d in devices if d.faults.unreachable or d.faults.latency_s]

    assert picks(1) == picks(1)
    devices = generate_fleet(100, seed=2)
    applied = apply_faults(devices, parse_faults("unreachable=10%,ssh-host-key-changed=100%"), 1)
    networked = [d for d in devices if d.mac]
    ssh_capable = [d for d in devices if d.ssh_port is not None]
    assert applied == {
        "unreachable": round(len(networked) / 10),
        "ssh_host_key_changed": len(ssh_capable),
    }
    assert not any(d.faults.unreachable for d in devices if d.mac is None)
    assert all(d.faults.ssh_host_key_changed == (d in ssh_capable) for d in devices)
    with pytest.raises(FaultSpecError):
        apply_faults(devices, parse_faults("busy@NOSUCHSERIAL"), 1)


async def _timed_get(http: aiohttp.ClientSession, url: str) -> float:
    start = time.perf_counter()
    async with http.get(url, headers=AUTH) as resp:
        assert resp.status == 200
        await resp.read()
    return time.perf_counter() - start


async def test_slow_device_answers_after_a_fast_one() -> None:
    devices = small_fleet({"vvx": 100}, count=2)
    fast, slow = devices
    slow.faults.latency_s = 0.3
    async with fleet_on_loopback(devices) as fleet, insecure_session() as http:
        order: list[str] = []

        async def fetch(serial: str) -> None:
            await _timed_get(http, base_url(fleet, serial) + INFO)
            order.append(serial)

        await asyncio.gather(fetch(slow.serial), fetch(fast.serial))
        assert order == [fast.serial, slow.serial]


async def test_unreachable_device_never_answers() -> None:
    devices = small_fleet({"vvx": 100}, count=2)
    devices[1].faults.unreachable = True
    async with fleet_on_loopback(devices) as fleet, insecure_session(timeout_s=1.0) as http:
        with pytest.raises((aiohttp.ClientConnectionError, TimeoutError)):
            async with http.get(base_url(fleet, devices[1].serial) + INFO, headers=AUTH):
                pass
        result = await curl("-u", "Polycom:456", base_url(fleet, devices[1].serial) + INFO)
        assert result.returncode != 0
        assert result.stdout == ""


async def test_malformed_json_and_truncated_replies() -> None:
    devices = small_fleet({"vvx": 100}, count=2)
    devices[0].faults.malformed_json = True
    devices[1].faults.truncated = True
    async with fleet_on_loopback(devices) as fleet:
        broken = await curl("-u", "Polycom:456", base_url(fleet, devices[0].serial) + INFO)
        assert broken.returncode == 0
        assert broken.stdout.startswith('{"data"')
        with pytest.raises(json.JSONDecodeError):
            json.loads(broken.stdout)
        cut = await curl("-u", "Polycom:456", base_url(fleet, devices[1].serial) + INFO)
        assert cut.returncode == 18  # CURLE_PARTIAL_FILE: fewer bytes than Content-Length


async def test_changed_certificate_has_another_fingerprint() -> None:
    devices = small_fleet({"vvx": 100}, count=1)
    async with fleet_on_loopback(devices) as fleet:
        endpoint = fleet.endpoint(devices[0].serial)
        assert endpoint.https_port is not None
        before = await certificate_fingerprint(endpoint.host, endpoint.https_port)
        again = await certificate_fingerprint(endpoint.host, endpoint.https_port)
        devices[0].faults.tls_cert_changed = True
        changed = await certificate_fingerprint(endpoint.host, endpoint.https_port)
    assert before == again != changed


async def test_flapping_wrong_credentials_and_busy() -> None:
    devices = small_fleet({"vvx": 100}, count=3)
    flappy, locked, busy = devices
    flappy.faults.flapping = True
    locked.faults.wrong_credentials = True
    busy.faults.busy = True
    async with fleet_on_loopback(devices) as fleet:
        outcomes = [
            (await curl("-u", "Polycom:456", base_url(fleet, flappy.serial) + INFO)).returncode
            for _ in range(4)
        ]
        assert outcomes[0] == 0
        assert outcomes[2] == 0
        assert outcomes[1] != 0
        assert outcomes[3] != 0
        denied = await curl(
            "-u",
            "Polycom:456",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            base_url(fleet, locked.serial) + INFO,
        )
        assert denied.stdout == "401"
        busy_reply = await curl("-u", "Polycom:456", base_url(fleet, busy.serial) + INFO)
        assert json.loads(busy_reply.stdout) == {"Status": "4001"}
