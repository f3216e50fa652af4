"""PysnmpClient against the simulated SNMP agent on loopback: v2c, v3 authPriv, walks, errors."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from pydantic import SecretStr

from device_drivers.errors import AuthenticationFailed, DeviceTimeout
from device_drivers.transports import SnmpTarget
from device_drivers.transports.snmp import PysnmpClient, decode_value, parse_oid
from inventory.models import CredentialProfile
from simulator.fleet import generate_fleet
from simulator.snmp_agent import SnmpAgentHandle, start_snmp_agent
from simulator.state import SimDevice

SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, SYS_NAME = (f"1.3.6.1.2.1.1.{i}.0" for i in (1, 2, 3, 5))
SERIAL = "1.3.6.1.4.1.13885.101.1.1.5.0"
MODEL = "1.3.6.1.4.1.13885.101.1.1.4.0"
NIC_TABLE = "1.3.6.1.4.1.13885.101.1.3.10"
V2C = CredentialProfile(name="v2c", snmp_community=SecretStr("public"))
V3 = CredentialProfile(
    name="v3",
    snmp_version="3",
    snmp_user="polyfleet",
    snmp_auth_key=SecretStr("authkey-polyfleet"),
    snmp_priv_key=SecretStr("privkey-polyfleet"),
)


@pytest.fixture
async def fleet() -> AsyncIterator[tuple[list[SimDevice], SnmpAgentHandle]]:
    devices = [
        d for d in generate_fleet(40, mix={"gs": 1, "vvx": 1}, base_address="127.25.0.1") if d.host
    ]
    handle = await start_snmp_agent(devices, port=0)
    try:
        yield devices, handle
    finally:
        await handle.close()


@pytest.fixture
async def client() -> AsyncIterator[PysnmpClient]:
    opened = PysnmpClient()
    try:
        yield opened
    finally:
        await opened.close()


def _target(
    device: SimDevice,
    handle: SnmpAgentHandle,
    creds: CredentialProfile = V2C,
    timeout: float = 3.0,
    retries: int = 1,
) -> SnmpTarget:
    """A target with room for a loaded CI machine; the tests of timeouts pass their own."""
    return SnmpTarget(device.host, handle.ports[device.serial], creds, timeout, retries)


def _gs(devices: list[SimDevice]) -> SimDevice:
    return next(d for d in devices if d.family == "gs")


@pytest.mark.parametrize("creds", [V2C, V3], ids=["v2c", "v3"])
async def test_get_several_oids_in_one_pdu(
    fleet: tuple[list[SimDevice], SnmpAgentHandle], client: PysnmpClient, creds: CredentialProfile
) -> None:
    devices, handle = fleet
    gs = _gs(devices)
    asked = [SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, SYS_NAME, SERIAL, MODEL, ".1.3.6.1.2.1.1.99.0"]
    values = await client.get(_target(gs, handle, creds), asked)
    assert list(values) == asked  # keyed as asked, in order
    assert values[SYS_DESCR] == f"Polycom {gs.model}, software {gs.firmware}"
    object_id = values[SYS_OBJECT_ID]
    assert isinstance(object_id, str)
    assert object_id.startswith("1.3.6.1.4.1.13885.")
    assert isinstance(values[SYS_UPTIME], int)
    assert values[SYS_NAME] == gs.system_name
    assert values[SERIAL] == gs.serial
    assert values[MODEL] == gs.model
    assert values[".1.3.6.1.2.1.1.99.0"] is None  # noSuchObject


@pytest.mark.parametrize("creds", [V2C, V3], ids=["v2c", "v3"])
async def test_bulk_walk_stays_in_the_subtree(
    fleet: tuple[list[SimDevice], SnmpAgentHandle], client: PysnmpClient, creds: CredentialProfile
) -> None:
    devices, handle = fleet
    gs = _gs(devices)
    assert gs.mac is not None
    rows = await client.walk(_target(gs, handle, creds), NIC_TABLE)
    assert [value for _, value in rows] == [
        "LAN",
        ":".join(gs.mac[i : i + 2] for i in range(0, 12, 2)),
        1000,
        "full",
        2,
    ]
    assert all(oid.startswith(NIC_TABLE + ".") for oid, _ in rows)
    system = await client.walk(_target(gs, handle, creds), "1.3.6.1.2.1.1")
    assert len(system) == 7
    assert await client.walk(_target(gs, handle, creds), "1.3.6.1.4.1.99999") == []


@pytest.mark.parametrize("creds", [V2C, V3], ids=["v2c", "v3"])
async def test_walk_pages_as_the_target_asks(
    fleet: tuple[list[SimDevice], SnmpAgentHandle],
    client: PysnmpClient,
    creds: CredentialProfile,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A target's own GETBULK page (the NIC MAC walk's 3 rows) reads the same rows, in replies
    that carry no more than the page: the default page of 25 made every reply carry the MIB's
    objects after the column, all decoded for nothing."""
    devices, handle = fleet
    gs = _gs(devices)
    pages: list[int] = []
    bulk = client._bulk

    async def counted(target: SnmpTarget, start: tuple[int, ...]) -> Sequence[Any]:
        page = await bulk(target, start)
        pages.append(len(page))
        return page

    monkeypatch.setattr(client, "_bulk", counted)
    whole = await client.walk(_target(gs, handle, creds), NIC_TABLE)
    assert pages == [7]  # the 5 NIC rows, the object after the table and the end of the view
    pages.clear()
    small = replace(_target(gs, handle, creds), max_repetitions=2)
    assert await client.walk(small, NIC_TABLE) == whole
    assert pages == [2, 2, 2]


async def test_many_devices_concurrently(
    fleet: tuple[list[SimDevice], SnmpAgentHandle], client: PysnmpClient
) -> None:
    devices, handle = fleet
    results = await asyncio.gather(
        *(client.get(_target(d, handle), [SERIAL, SYS_NAME]) for d in devices)
    )
    for device, values in zip(devices, results, strict=True):
        assert values[SYS_NAME] == device.system_name


async def test_silent_port_is_a_bounded_timeout(client: PysnmpClient) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # bound, never read: no ICMP, no answer
        target = SnmpTarget("127.0.0.1", silent.getsockname()[1], V2C, timeout=0.2, retries=1)
        started = time.monotonic()
        with pytest.raises(DeviceTimeout) as caught:
            await client.get(target, [SYS_DESCR])
    elapsed = time.monotonic() - started
    assert elapsed >= 0.35  # both tries waited out their 0.2 s
    assert elapsed < 10  # and then it gave up: bounded, whatever the machine's load
    message = str(caught.value)
    assert "SNMP timeout after 2 tries" in message
    assert "community not accepted" in message
    assert "auth" not in message.lower()


async def test_wrong_community_is_a_timeout(
    fleet: tuple[list[SimDevice], SnmpAgentHandle], client: PysnmpClient
) -> None:
    devices, handle = fleet
    wrong = CredentialProfile(name="x", snmp_community=SecretStr("private"))
    with pytest.raises(DeviceTimeout, match="host down, or community not accepted"):
        await client.get(_target(devices[0], handle, wrong, timeout=0.2, retries=0), [SYS_NAME])


@pytest.mark.parametrize(
    "change",
    [
        {"snmp_auth_key": SecretStr("not-the-auth-key")},
        {"snmp_priv_key": SecretStr("not-the-priv-key")},
        {"snmp_user": "intruder"},
    ],
    ids=["auth-key", "priv-key", "user"],
)
async def test_v3_wrong_secrets_are_auth_failed(
    fleet: tuple[list[SimDevice], SnmpAgentHandle],
    client: PysnmpClient,
    change: dict[str, object],
) -> None:
    devices, handle = fleet
    wrong = V3.model_copy(update=change)
    # A timeout long enough for a loaded machine: the refusal is the agent's report (a timeout
    # would raise DeviceTimeout, after 10 s).
    with pytest.raises(AuthenticationFailed) as caught:
        await client.get(_target(_gs(devices), handle, wrong, timeout=10, retries=0), [SERIAL])
    assert "not-the" not in str(caught.value)


async def test_v3_device_with_rotated_keys_then_back(
    fleet: tuple[list[SimDevice], SnmpAgentHandle], client: PysnmpClient
) -> None:
    devices, handle = fleet
    gs = _gs(devices)
    gs.faults.wrong_credentials = True
    with pytest.raises(AuthenticationFailed):
        await client.get(_target(gs, handle, V3), [SERIAL])
    gs.faults.wrong_credentials = False
    assert (await client.get(_target(gs, handle, V3), [SERIAL]))[SERIAL] == gs.serial


async def test_retries_ride_over_a_lost_answer(
    fleet: tuple[list[SimDevice], SnmpAgentHandle], client: PysnmpClient
) -> None:
    devices, handle = fleet
    vvx = next(d for d in devices if d.family == "vvx")
    vvx.faults.snmp_every_other = True
    for _ in range(3):
        values = await client.get(_target(vvx, handle, timeout=0.2, retries=1), [SYS_NAME])
        assert values[SYS_NAME] == vvx.system_name


def test_value_decoding_and_oid_parsing() -> None:
    from pysnmp.proto import rfc1902, rfc1905

    assert decode_value(rfc1902.Integer32(-3)) == -3
    assert decode_value(rfc1902.Counter64(2**40)) == 2**40
    assert decode_value(rfc1902.OctetString(b"\x00\x04\xf2\x01\x02\x03")) == (
        b"\x00\x04\xf2\x01\x02\x03"
    )
    assert decode_value(rfc1902.OctetString(b"Group Series 500\x00")) == "Group Series 500"
    assert decode_value(rfc1902.IpAddress("10.0.0.7")) == "10.0.0.7"
    assert decode_value(rfc1902.ObjectIdentifier("1.3.6.1.4.1.13885")) == "1.3.6.1.4.1.13885"
    assert decode_value(rfc1905.noSuchInstance) is None
    assert decode_value(rfc1905.endOfMibView) is None
    assert parse_oid(".1.3.6.1.2.1.1.1.0") == (1, 3, 6, 1, 2, 1, 1, 1, 0)
    with pytest.raises(ValueError, match="not a numeric OID"):
        parse_oid("SNMPv2-MIB::sysDescr.0")


async def test_v3_profiles_sharing_a_user_name_do_not_clash(
    fleet: tuple[list[SimDevice], SnmpAgentHandle], client: PysnmpClient
) -> None:
    """Same user name, different keys, in flight together: good keys must still work."""
    devices, handle = fleet
    wrong = V3.model_copy(update={"snmp_auth_key": SecretStr("not-the-auth-key")})
    results = await asyncio.gather(
        *(
            client.get(_target(device, handle, wrong if i % 2 else V3), [SYS_NAME])
            for i, device in enumerate(devices[:12])
        ),
        return_exceptions=True,
    )
    for i, (device, result) in enumerate(zip(devices, results, strict=False)):
        if i % 2:
            assert isinstance(result, AuthenticationFailed)
        else:
            assert result == {SYS_NAME: device.system_name}
