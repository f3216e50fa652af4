"""AiohttpClient against nginx serving captured UC device-info JSON over HTTPS with Basic auth."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from device_drivers.errors import AuthenticationFailed, TlsFingerprintMismatch
from device_drivers.transports import HttpTarget, TrustPolicy
from device_drivers.transports.http import AiohttpClient
from tests.interop.conftest import (
    FIXTURES,
    Peer,
    free_port,
    require_binary,
    run_peer,
    tcp_ready,
    wait_until,
)
from tests.transports.tls_helpers import CertFiles, make_certs

DEVICE_INFO = FIXTURES / "device-info.json"
INFO_PATH = "/api/v1/mgmt/device/info"
USER, PASSWORD = "Polycom", "interop-456"


@dataclass
class Nginx:
    peer: Peer
    certs: CertFiles


def _config(work: Path, port: int, certs: CertFiles) -> str:
    temp = work / "temp"
    user = "user root;\n" if os.geteuid() == 0 else ""  # the worker reads files under tmp (0700)
    temp_paths = "\n".join(
        f"    {name}_temp_path {temp / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}worker_processes 1;
pid {work / "nginx.pid"};
error_log {work / "error.log"} info;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temp_paths}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {certs.cert};
        ssl_certificate_key {certs.key};
        location = {INFO_PATH} {{
            auth_basic "Polycom";
            auth_basic_user_file {work / "htpasswd"};
            default_type application/json;
            alias {DEVICE_INFO};
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    binary = require_binary("nginx", "/usr/sbin/nginx")
    work = tmp_path_factory.mktemp("nginx")
    (work / "temp").mkdir()
    certs = make_certs(work / "tls")
    (work / "htpasswd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(_config(work, port, certs))
    argv = [binary, "-p", str(work), "-c", str(conf), "-e", str(work / "error.log")]
    with run_peer([*argv, "-g", "daemon off;"], work / "nginx.log", port) as peer:
        wait_until(tcp_ready(port), peer, "nginx")
        yield Nginx(peer, certs)


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
