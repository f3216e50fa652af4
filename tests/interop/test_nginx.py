"""AiohttpClient against nginx serving captured UC device-info JSON over HTTPS with Basic auth."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from device_drivers.errors import AuthenticationFailed, TlsFingerprintMismatch
from device_drivers.transports import HttpTarget, TrustPolicy
from device_drivers.transports.http import AiohttpClient
from tests.interop.conftest import DEVICE_INFO, INFO_PATH, Nginx
from tests.interop.conftest import NGINX_PASSWORD as PASSWORD
from tests.interop.conftest import NGINX_USER as USER


@pytest.fixture
async def client() -> AsyncIterator[AiohttpClient]:
    opened = AiohttpClient()
    try:
        yield opened
    finally:
        await opened.close()


def _target(nginx: Nginx, trust: TrustPolicy, password: str = PASSWORD) -> HttpTarget:
    return HttpTarget("127.0.0.1", nginx.peer.port, user=USER, password=password, trust=trust)


async def test_pin_on_first_use_then_pinned(nginx: Nginx, client: AiohttpClient) -> None:
    captured = json.loads(DEVICE_INFO.read_text())
    pins: list[str] = []

    async def remember(pin: str) -> None:
        pins.append(pin)

    reply = await client.request(
        _target(nginx, TrustPolicy(on_first_use=remember)), "GET", INFO_PATH
    )
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.json() == captured
    assert pins == [nginx.certs.fingerprint]

    fresh = AiohttpClient()  # a later run: the inventory now holds the pin
    try:
        pinned = await fresh.request(_target(nginx, TrustPolicy(pinned=pins[0])), "GET", INFO_PATH)
    finally:
        await fresh.close()
    assert pinned.json()["data"]["MACAddress"] == "0004f2fe3ab0"


async def test_pinned_mismatch_and_ca_bundle(nginx: Nginx, client: AiohttpClient) -> None:
    wrong = "sha256:" + "00" * 32
    with pytest.raises(TlsFingerprintMismatch) as caught:
        await client.request(_target(nginx, TrustPolicy(pinned=wrong)), "GET", INFO_PATH)
    assert caught.value.actual == nginx.certs.fingerprint
    verified = _target(nginx, TrustPolicy(ca_bundle=str(nginx.certs.ca)))
    assert (await client.request(verified, "GET", INFO_PATH)).json()["Status"] == "2000"


async def test_wrong_password_is_auth_failed(nginx: Nginx, client: AiohttpClient) -> None:
    target = _target(nginx, TrustPolicy(insecure=True), password="wrong-one")
    with pytest.raises(AuthenticationFailed) as caught:
        await client.request(target, "GET", INFO_PATH)
    assert "wrong-one" not in str(caught.value)
    missing = await client.request(_target(nginx, TrustPolicy(insecure=True)), "GET", "/nothing")
    assert missing.status == 404
