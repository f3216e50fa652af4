"""PysnmpClient against net-snmp's snmpd serving POLYCOM-ENDPOINT-MIB identity values."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from pydantic import SecretStr

from device_drivers.errors import AuthenticationFailed, DeviceTimeout
from device_drivers.transports import SnmpTarget
from device_drivers.transports.snmp import PysnmpClient
from inventory.models import CredentialProfile
from tests.interop.conftest import Peer, free_port, require_binary, run_peer, wait_until

SERIAL, MODEL, SOFTWARE = "82A1234567", "Group Series 500", "6.2.2.8-460003"
MAC = "00:04:f2:12:34:56"
ENDPOINT_MIB = "1.3.6.1.4.1.13885.101"
IDENTITY = {
    f"{ENDPOINT_MIB}.1.1.1.0": ("octet_str", f'"{SOFTWARE}"', SOFTWARE),
    f"{ENDPOINT_MIB}.1.1.3.0": ("octet_str", '"videoEndpoint"', "videoEndpoint"),
    f"{ENDPOINT_MIB}.1.1.4.0": ("octet_str", f'"{MODEL}"', MODEL),
    f"{ENDPOINT_MIB}.1.1.5.0": ("octet_str", f'"{SERIAL}"', SERIAL),
    f"{ENDPOINT_MIB}.1.1.6.0": ("integer", "2", 2),
    f"{ENDPOINT_MIB}.1.3.10.2.1.3.1": ("octet_str", f'"{MAC}"', MAC),
}
SYS_DESCR, SYS_OBJECT_ID, SYS_NAME = "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.5.0"
V2C = CredentialProfile(name="v2c", snmp_community=SecretStr("interop-ro"))
V3_SHA_AES = CredentialProfile(
    name="v3-sha",
    snmp_version="3",
    snmp_user="pfsha",
    snmp_auth_key=SecretStr("authkey-polyfleet"),
    snmp_priv_key=SecretStr("privkey-polyfleet"),
)
V3_SHA256_AES256 = CredentialProfile(
    name="v3-sha256",
    snmp_version="3",
    snmp_user="pfsha256",
    snmp_auth_protocol="sha256",
    snmp_auth_key=SecretStr("authkey-polyfleet-256"),
    snmp_priv_protocol="aes256",
    snmp_priv_key=SecretStr("privkey-polyfleet-256"),
)


def _config(port: int) -> str:
    lines = [
        f"agentaddress udp:127.0.0.1:{port}",
        "rocommunity interop-ro 127.0.0.1",
        f"sysDescr Polycom {MODEL}, software {SOFTWARE}",
        f"sysObjectID .{ENDPOINT_MIB}",
        "sysName interop-gs",
        'createUser pfsha SHA "authkey-polyfleet" AES "privkey-polyfleet"',
        'createUser pfsha256 SHA-256 "authkey-polyfleet-256" AES-256 "privkey-polyfleet-256"',
        "rouser pfsha priv",
        "rouser pfsha256 priv",
    ]
    lines += [f"override .{oid} {kind} {value}" for oid, (kind, value, _) in IDENTITY.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    binary = require_binary("snmpd", "/usr/sbin/snmpd")
    work = tmp_path_factory.mktemp("snmpd")
    port = free_port(socket.SOCK_DGRAM)
    conf = work / "snmpd.conf"
    conf.write_text(_config(port))
    log = work / "snmpd.log"
    argv = [binary, "-f", "-Lo", "-C", "-c", str(conf), "-M", "/dev/null", "-m", ""]
    env = {"SNMP_PERSISTENT_DIR": str(work / "persist")}
    with run_peer(argv, log, port, env) as peer:
        wait_until(lambda: "NET-SNMP version" in peer.output(), peer, "snmpd")
        yield peer


@pytest.fixture
async def client() -> AsyncIterator[PysnmpClient]:
    opened = PysnmpClient()
    try:
        yield opened
    finally:
        await opened.close()


def _target(peer: Peer, creds: CredentialProfile, timeout: float = 1.0) -> SnmpTarget:
    return SnmpTarget("127.0.0.1", peer.port, creds, timeout=timeout, retries=1)


@pytest.mark.parametrize(
    "creds", [V2C, V3_SHA_AES, V3_SHA256_AES256], ids=["v2c", "v3-sha-aes", "v3-sha256-aes256"]
)
async def test_identity_get_and_walk(
    snmpd: Peer, client: PysnmpClient, creds: CredentialProfile
) -> None:
    target = _target(snmpd, creds)
    values = await client.get(target, [SYS_DESCR, SYS_OBJECT_ID, SYS_NAME, *IDENTITY])
    assert values[SYS_DESCR] == f"Polycom {MODEL}, software {SOFTWARE}"
    assert values[SYS_OBJECT_ID] == ENDPOINT_MIB
    assert values[SYS_NAME] == "interop-gs"
    for oid, (_, _, expected) in IDENTITY.items():
        assert values[oid] == expected, oid
    walked = dict(await client.walk(target, ENDPOINT_MIB))
    assert walked == {oid: expected for oid, (_, _, expected) in IDENTITY.items()}


async def test_wrong_v3_key_is_auth_failed(snmpd: Peer, client: PysnmpClient) -> None:
    wrong = V3_SHA_AES.model_copy(update={"snmp_auth_key": SecretStr("not-the-auth-key")})
    started = time.monotonic()
    with pytest.raises(AuthenticationFailed):
        await client.get(_target(snmpd, wrong), [SYS_DESCR])
    assert time.monotonic() - started < 1.0  # snmpd answers with a report


async def test_wrong_community_is_a_timeout(snmpd: Peer, client: PysnmpClient) -> None:
    wrong = CredentialProfile(name="x", snmp_community=SecretStr("public"))
    with pytest.raises(DeviceTimeout, match="community not accepted"):
        await client.get(_target(snmpd, wrong, timeout=0.2), [SYS_DESCR])
