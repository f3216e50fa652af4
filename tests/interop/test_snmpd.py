"""PysnmpClient against net-snmp's snmpd serving POLYCOM-ENDPOINT-MIB identity values."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from device_drivers.errors import AuthenticationFailed, DeviceTimeout
from device_drivers.transports import SnmpTarget
from device_drivers.transports.snmp import PysnmpClient
from inventory.models import CredentialProfile
from tests.interop.conftest import ENDPOINT_MIB, Peer
from tests.interop.conftest import SNMPD_IDENTITY as IDENTITY
from tests.interop.conftest import SNMPD_MODEL as MODEL
from tests.interop.conftest import SNMPD_SOFTWARE as SOFTWARE

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
    # snmpd answers with a report: AuthenticationFailed, not a DeviceTimeout after 10 s.
    with pytest.raises(AuthenticationFailed):
        await client.get(_target(snmpd, wrong, timeout=10), [SYS_DESCR])


async def test_wrong_community_is_a_timeout(snmpd: Peer, client: PysnmpClient) -> None:
    wrong = CredentialProfile(name="x", snmp_community=SecretStr("not-the-community"))
    with pytest.raises(DeviceTimeout, match="community not accepted"):
        await client.get(_target(snmpd, wrong, timeout=0.2), [SYS_DESCR])
