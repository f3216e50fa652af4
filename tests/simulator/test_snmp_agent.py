"""The simulated SNMP agent, driven by net-snmp's command-line tools and by pysnmp's client."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_walk_cmd,
    get_cmd,
    usmAesCfb128Protocol,
    usmHMACSHAAuthProtocol,
)

from simulator import mib
from simulator.snmp_agent import SnmpAgentHandle, start_snmp_agent
from simulator.state import LicenseState, SimDevice, SimLicense

V3_USER, V3_AUTH, V3_PRIV = "polyfleet", "authkey-polyfleet", "privkey-polyfleet"
SERIAL_OID = "1.3.6.1.4.1.13885.101.1.1.5.0"
MODEL_OID = "1.3.6.1.4.1.13885.101.1.1.4.0"
SOFTWARE_OID = "1.3.6.1.4.1.13885.101.1.1.1.0"
NIC_MAC_OID = "1.3.6.1.4.1.13885.101.1.3.10.2.1.3.1"
DMA_STATUS_OID = "1.3.6.1.4.1.13885.13.2.2.3.3.1.3.1"
RPRM_CAPABILITY_OID = "1.3.6.1.4.1.13885.102.1.2.20.1.0"
RPRM_MODE_OID = "1.3.6.1.4.1.13885.102.1.2.20.3.0"


def _device(serial: str, family: str, model: str, host: str, **extra: object) -> SimDevice:
    return SimDevice(
        serial=serial,
        mac="0004f2" + serial[-6:].lower().rjust(6, "0"),
        model=model,
        family=family,
        firmware="6.2.2.8-460003",
        host=host,
        system_name=f"sim-{serial.lower()}",
        site="hq-berlin",
        **extra,  # type: ignore[arg-type]
    )


def _fleet() -> dict[str, SimDevice]:
    far = datetime.now(UTC) + timedelta(days=200)
    return {
        "gs": _device("82A0000001", "gs", "Group Series 500", "127.21.0.1"),
        "dma": _device(
            "9D00000002",
            "dma",
            "RealPresence DMA 7000",
            "127.21.0.2",
            licenses={"system": SimLicense("system", LicenseState.ACTIVE, far)},
        ),
        "rprm": _device(
            "9R00000003",
            "rprm",
            "RealPresence Resource Manager",
            "127.21.0.3",
            licenses={"system": SimLicense("system", LicenseState.ACTIVE, far)},
        ),
        "vvx": _device("0004F2000004", "vvx", "VVX 450", "127.21.0.4"),
        "analog": _device("0F00000005", "analog", "SoundStation 2", "", snmp_port=None),
    }


@pytest.fixture
async def fleet() -> AsyncIterator[tuple[dict[str, SimDevice], SnmpAgentHandle]]:
    devices = _fleet()
    handle = await start_snmp_agent(list(devices.values()), port=0)
    try:
        yield devices, handle
    finally:
        await handle.close()


def _v3_args(auth: str = V3_AUTH, priv: str = V3_PRIV, user: str = V3_USER) -> list[str]:
    return ["-v3", "-l", "authPriv", "-u", user, "-a", "SHA", "-A", auth, "-x", "AES", "-X", priv]


async def _netsnmp(tool: str, *args: str, wait: float = 0.5) -> tuple[int, str]:
    """Run a net-snmp tool without blocking the loop that serves the agent."""
    proc = await asyncio.create_subprocess_exec(
        tool,
        "-On",
        "-t",
        str(wait),
        "-r",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 15)
    return proc.returncode or 0, out.decode()


def _target(device: SimDevice, handle: SnmpAgentHandle) -> str:
    return f"udp:{device.host}:{handle.ports[device.serial]}"


async def test_snmpget_v2c_reads_identity(
    fleet: tuple[dict[str, SimDevice], SnmpAgentHandle],
) -> None:
    devices, handle = fleet
    gs = devices["gs"]
    rc, out = await _netsnmp(
        "snmpget",
        "-v2c",
        "-c",
        "public",
        _target(gs, handle),
        "1.3.6.1.2.1.1.1.0",
        "1.3.6.1.2.1.1.2.0",
        "1.3.6.1.2.1.1.5.0",
        SERIAL_OID,
        MODEL_OID,
        SOFTWARE_OID,
        NIC_MAC_OID,
    )
    assert rc == 0, out
    assert 'STRING: "Polycom Group Series 500, software 6.2.2.8-460003"' in out
    assert "OID: .1.3.6.1.4.1.13885.9999.2.2" in out
    assert f'.1.3.6.1.2.1.1.5.0 = STRING: "{gs.system_name}"' in out
    assert f'.{SERIAL_OID} = STRING: "82A0000001"' in out
    assert f'.{MODEL_OID} = STRING: "Group Series 500"' in out
    assert f'.{SOFTWARE_OID} = STRING: "6.2.2.8-460003"' in out
    assert f'.{NIC_MAC_OID} = STRING: "00:04:f2:00:00:01"' in out


async def test_snmpwalk_v3_authpriv_walks_endpoint_mib(
    fleet: tuple[dict[str, SimDevice], SnmpAgentHandle],
) -> None:
    devices, handle = fleet
    rc, out = await _netsnmp(
        "snmpwalk", *_v3_args(), _target(devices["gs"], handle), "1.3.6.1.4.1.13885.101"
    )
    assert rc == 0, out
    assert f'.{SERIAL_OID} = STRING: "82A0000001"' in out
    assert ".1.3.6.1.4.1.13885.101.1.1.6.0 = INTEGER: 2" in out  # identityStatus ok
    rows = [line for line in out.splitlines() if "No more variables" not in line]
    expected = [o for o, _ in mib.device_mib(devices["gs"]) if o[:7] == (1, 3, 6, 1, 4, 1, 13885)]
    assert len(rows) == len(expected)


async def test_snmpbulkwalk_v2c_system_group(
    fleet: tuple[dict[str, SimDevice], SnmpAgentHandle],
) -> None:
    devices, handle = fleet
    rc, out = await _netsnmp(
        "snmpbulkwalk",
        "-v2c",
        "-c",
        "public",
        "-Cr5",
        _target(devices["vvx"], handle),
        "1.3.6.1.2.1.1",
    )
    assert rc == 0, out
    rows = [line for line in out.splitlines() if "No more variables" not in line]
    assert len(rows) == 7
    assert "Timeticks:" in out
    assert 'STRING: "hq-berlin"' in out  # sysLocation


async def test_dma_license_state_changes_show_up(
    fleet: tuple[dict[str, SimDevice], SnmpAgentHandle],
) -> None:
    devices, handle = fleet
    dma = devices["dma"]
    target = _target(dma, handle)
    get = ("snmpget", "-v2c", "-c", "public", target, DMA_STATUS_OID)
    assert (await _netsnmp(*get))[1].strip().endswith("INTEGER: 1")  # valid
    dma.licenses["system"].state = LicenseState.DEACTIVATED
    assert (await _netsnmp(*get))[1].strip().endswith("INTEGER: 2")  # invalid
    dma.licenses["system"].state = LicenseState.MISSING
    assert (await _netsnmp(*get))[1].strip().endswith("INTEGER: 3")  # notInstalled
    dma.licenses["system"] = SimLicense(
        "system", LicenseState.ACTIVE, datetime.now(UTC) - timedelta(days=1)
    )
    assert (await _netsnmp(*get))[1].strip().endswith("INTEGER: 2")  # expired -> invalid


async def test_rprm_license_objects_and_missing_object(
    fleet: tuple[dict[str, SimDevice], SnmpAgentHandle],
) -> None:
    devices, handle = fleet
    rprm = devices["rprm"]
    args = ("-v2c", "-c", "public", _target(rprm, handle), RPRM_CAPABILITY_OID, RPRM_MODE_OID)
    rc, out = await _netsnmp("snmpget", *args)
    assert rc == 0, out
    assert f".{RPRM_CAPABILITY_OID} = INTEGER: {mib.RPRM_LICENSE_CAPABILITY}" in out
    assert f".{RPRM_MODE_OID} = INTEGER: 1" in out
    rprm.licenses["system"].state = LicenseState.EXPIRED
    assert f".{RPRM_CAPABILITY_OID} = INTEGER: 0" in (await _netsnmp("snmpget", *args))[1]
    _, out = await _netsnmp("snmpget", "-v2c", "-c", "public", _target(rprm, handle), SERIAL_OID)
    assert "No Such Object" in out


async def test_pysnmp_client_v2c_v3_and_bulk_walk(
    fleet: tuple[dict[str, SimDevice], SnmpAgentHandle],
) -> None:
    devices, handle = fleet
    gs = devices["gs"]
    engine = SnmpEngine()
    try:
        target = await UdpTransportTarget.create(
            (gs.host, handle.ports[gs.serial]), timeout=1, retries=0
        )
        v3 = UsmUserData(
            V3_USER,
            V3_AUTH,
            V3_PRIV,
            authProtocol=usmHMACSHAAuthProtocol,
            privProtocol=usmAesCfb128Protocol,
        )
        for auth in (CommunityData("public"), v3):
            err_ind, err_status, _, var_binds = await get_cmd(
                engine, auth, target, ContextData(), ObjectType(ObjectIdentity(SERIAL_OID))
            )
            assert not err_ind, err_ind
            assert not err_status, err_status
            assert str(var_binds[0][1]) == gs.serial
        walked = []
        async for err_ind, err_status, _, var_binds in bulk_walk_cmd(
            engine,
            v3,
            target,
            ContextData(),
            0,
            4,
            ObjectType(ObjectIdentity("1.3.6.1.4.1.13885.101.1.3.10")),
            lexicographicMode=False,
        ):
            assert not err_ind
            assert not err_status
            walked += [str(value) for _, value in var_binds]
        assert walked == ["LAN", "00:04:f2:00:00:01", "1000", "full", "2"]
    finally:
        engine.close_dispatcher()


@pytest.mark.parametrize("fault", ["snmp_every_other", "flapping"])
async def test_every_other_request_is_answered(
    fleet: tuple[dict[str, SimDevice], SnmpAgentHandle], fault: str
) -> None:
    devices, handle = fleet
    vvx = devices["vvx"]
    setattr(vvx.faults, fault, True)
    get = ("snmpget", "-v2c", "-c", "public", _target(vvx, handle), "1.3.6.1.2.1.1.5.0")
    results = [(await _netsnmp(*get, wait=0.3))[0] for _ in range(4)]
    assert results == [0, 1, 0, 1]


async def test_unreachable_and_analog_stay_silent(
    fleet: tuple[dict[str, SimDevice], SnmpAgentHandle],
) -> None:
    devices, handle = fleet
    assert devices["analog"].serial not in handle.ports
    gs = devices["gs"]
    gs.faults.unreachable = True
    rc, out = await _netsnmp(
        "snmpget", "-v2c", "-c", "public", _target(gs, handle), SERIAL_OID, wait=0.3
    )
    assert rc != 0
    assert "Timeout" in out
    gs.faults.unreachable = False
    assert (await _netsnmp("snmpget", "-v2c", "-c", "public", _target(gs, handle), SERIAL_OID))[
        0
    ] == 0


async def test_wrong_credentials_are_refused(
    fleet: tuple[dict[str, SimDevice], SnmpAgentHandle],
) -> None:
    devices, handle = fleet
    gs = devices["gs"]
    target = _target(gs, handle)
    rc, out = await _netsnmp("snmpget", "-v2c", "-c", "private", target, SERIAL_OID, wait=0.3)
    assert rc != 0
    assert "Timeout" in out
    rc, out = await _netsnmp("snmpget", *_v3_args(auth="not-the-key"), target, SERIAL_OID)
    assert rc != 0
    assert "Authentication failure" in out
    rc, out = await _netsnmp("snmpget", *_v3_args(user="intruder"), target, SERIAL_OID)
    assert rc != 0
    assert "Unknown user name" in out
    gs.faults.wrong_credentials = True  # the device no longer matches the fleet profile
    rc, out = await _netsnmp("snmpget", "-v2c", "-c", "public", target, SERIAL_OID, wait=0.3)
    assert rc != 0
    assert "Timeout" in out
    rc, out = await _netsnmp("snmpget", *_v3_args(), target, SERIAL_OID)
    assert rc != 0
    assert "Authentication failure" in out


async def test_latency_fault_delays_answers(
    fleet: tuple[dict[str, SimDevice], SnmpAgentHandle],
) -> None:
    devices, handle = fleet
    vvx = devices["vvx"]
    vvx.faults.latency_s = 0.4
    started = time.monotonic()
    rc, out = await _netsnmp(
        "snmpget", "-v2c", "-c", "public", _target(vvx, handle), "1.3.6.1.2.1.1.5.0", wait=2
    )
    assert rc == 0, out
    assert time.monotonic() - started >= 0.4


async def test_busy_port_falls_back_to_a_per_device_port() -> None:
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.21.1.1", 0))
    taken = blocker.getsockname()[1]
    device = _device("82A0000099", "gs", "Group Series 300", "127.21.1.1")
    handle = await start_snmp_agent([device], port=taken)
    try:
        port = handle.ports[device.serial]
        assert port not in (taken, 0)
        rc, out = await _netsnmp(
            "snmpget", "-v2c", "-c", "public", f"udp:127.21.1.1:{port}", SERIAL_OID
        )
        assert rc == 0
        assert "82A0000099" in out
    finally:
        blocker.close()
        await handle.close()


async def test_many_devices_start_quickly() -> None:
    devices = [
        _device(f"82B{i:07d}", "gs", "Group Series 700", f"127.22.{i // 250}.{i % 250 + 1}")
        for i in range(1000)
    ]
    started = time.perf_counter()
    handle = await start_snmp_agent(devices, port=0)
    elapsed = time.perf_counter() - started
    try:
        assert len(handle.ports) == 1000
        assert elapsed < 60.0, elapsed  # a bound against pathologies; bench/ measures speed
        last = devices[-1]
        rc, out = await _netsnmp("snmpget", *_v3_args(), _target(last, handle), SERIAL_OID)
        assert rc == 0
        assert last.serial in out
    finally:
        await handle.close()
