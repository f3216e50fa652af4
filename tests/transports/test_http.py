"""AiohttpClient against a real aiohttp HTTPS server on loopback: auth, trust, cookies, errors."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from device_drivers.errors import (
    AuthenticationFailed,
    DeviceTimeout,
    DeviceUnreachable,
    MalformedReply,
    TlsFingerprintMismatch,
)
from device_drivers.transports import HttpTarget, TrustPolicy
from device_drivers.transports.http import AiohttpClient
from tests.transports.tls_helpers import CertFiles, make_certs

USER, PASSWORD = "Polycom", "s3cret-456"
REALM = "Polycom-Phone"
INFO = {"data": {"ModelNumber": "VVX 450", "MACAddress": "0004f2fe3ab0"}, "Status": "2000"}


def _digest_ok(header: str, method: str) -> bool:
    """Check an RFC 7616 MD5 / qop=auth Authorization header against USER and PASSWORD."""
    if not header.startswith("Digest "):
        return False
    fields: dict[str, str] = {}
    for part in header[len("Digest ") :].split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value.strip('"')
    if fields.get("username") != USER:
        return False

    def md5(text: str) -> str:
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    ha1 = md5(f"{USER}:{REALM}:{PASSWORD}")
    ha2 = md5(f"{method}:{fields.get('uri', '')}")
    expected = md5(
        f"{ha1}:{fields.get('nonce')}:{fields.get('nc')}:{fields.get('cnonce')}:auth:{ha2}"
    )
    return secrets.compare_digest(expected, fields.get("response", ""))


def _app(hits: list[str]) -> web.Application:
    async def info(request: web.Request) -> web.Response:
        hits.append(request.path)
        wanted = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if request.headers.get("Authorization") != wanted:
            return web.Response(status=401, headers={"WWW-Authenticate": f'Basic realm="{REALM}"'})
        return web.json_response(INFO)

    async def digest(request: web.Request) -> web.Response:
        hits.append(request.path)
        if _digest_ok(request.headers.get("Authorization", ""), request.method):
            return web.json_response(INFO)
        nonce = secrets.token_hex(8)
        challenge = f'Digest realm="{REALM}", nonce="{nonce}", qop="auth", algorithm=MD5'
        return web.Response(status=401, headers={"WWW-Authenticate": challenge})

    async def session(request: web.Request) -> web.Response:
        response = web.json_response({"cookie": request.headers.get("Cookie")})
        response.set_cookie("session_id", "PSN0Hppf")
        response.set_cookie("XSRF-TOKEN", "xsrf-1")
        return response

    async def upload(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({"type": request.content_type, "size": len(body)})

    async def busy(_request: web.Request) -> web.Response:
        return web.json_response({"Status": "4001"}, status=403)

    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/api/v1/mgmt/device/info", info)
    app.router.add_get("/digest", digest)
    app.router.add_post("/rest/current/session", session)
    app.router.add_get("/busy", busy)
    app.router.add_put("/upload", upload)
    app.router.add_get("/slow", slow)
    return app


@dataclass
class Server:
    port: int
    certs: CertFiles
    hits: list[str]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    certs = make_certs(tmp_path / "tls")
    hits: list[str] = []
    runner = web.AppRunner(_app(hits), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=certs.server_context())
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Server(port, certs, hits)
    finally:
        await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[AiohttpClient]:
    opened = AiohttpClient(limit=16)
    try:
        yield opened
    finally:
        await opened.close()


def _target(server: Server, trust: TrustPolicy | None = None, **extra: object) -> HttpTarget:
    options: dict[str, object] = {"user": USER, "password": PASSWORD, "timeout": 3.0}
    options.update(extra)
    return HttpTarget(
        "127.0.0.1",
        server.port,
        trust=trust or TrustPolicy(insecure=True),
        **options,  # type: ignore[arg-type]
    )


async def test_basic_auth_and_json(server: Server, client: AiohttpClient) -> None:
    reply = await client.request(_target(server), "GET", "/api/v1/mgmt/device/info")
    assert reply.status == 200
    assert reply.json() == INFO


async def test_wrong_basic_password_is_auth_failed_without_the_password(
    server: Server, client: AiohttpClient
) -> None:
    target = _target(server, password="guess-wrong")
    with pytest.raises(AuthenticationFailed) as caught:
        await client.request(target, "GET", "/api/v1/mgmt/device/info")
    assert "guess-wrong" not in str(caught.value)
    assert caught.value.host == "127.0.0.1"


async def test_digest_auth(server: Server, client: AiohttpClient) -> None:
    target = _target(server, auth="digest")
    for _ in range(3):
        reply = await client.request(target, "GET", "/digest")
        assert reply.status == 200
        assert reply.json() == INFO
    # The nonce is reused after the first challenge: 1 x 401 + 3 x 200.
    assert server.hits.count("/digest") == 4
    with pytest.raises(AuthenticationFailed):
        await client.request(_target(server, auth="digest", password="nope"), "GET", "/digest")


async def test_cookies_are_explicit_per_request(server: Server, client: AiohttpClient) -> None:
    target = _target(server)
    first = await client.request(target, "POST", "/rest/current/session", json={"user": USER})
    assert first.cookies == {"session_id": "PSN0Hppf", "XSRF-TOKEN": "xsrf-1"}
    assert first.json() == {"cookie": None}  # no jar: nothing sent that was not asked for
    again = await client.request(target, "POST", "/rest/current/session", cookies=first.cookies)
    assert again.json() == {"cookie": "session_id=PSN0Hppf; XSRF-TOKEN=xsrf-1"}


async def test_raw_body_upload(server: Server, client: AiohttpClient) -> None:
    headers = {"Content-Type": "application/octet-stream"}
    reply = await client.request(
        _target(server), "PUT", "/upload", data=b"\x00" * 1000, headers=headers
    )
    assert reply.json() == {"type": "application/octet-stream", "size": 1000}


async def test_other_statuses_go_back_to_the_driver(server: Server, client: AiohttpClient) -> None:
    reply = await client.request(_target(server), "GET", "/busy")
    assert reply.status == 403
    assert reply.json() == {"Status": "4001"}
    assert (await client.request(_target(server), "GET", "/nowhere")).status == 404


async def test_pin_on_first_use_then_pinned(server: Server, client: AiohttpClient) -> None:
    seen: list[str] = []

    async def remember(pin: str) -> None:
        seen.append(pin)

    trust = TrustPolicy(pin_on_first_use=True, on_first_use=remember)
    for _ in range(2):
        reply = await client.request(_target(server, trust), "GET", "/api/v1/mgmt/device/info")
        assert reply.status == 200
    assert seen == [server.certs.fingerprint]  # reported once per run
    pinned = TrustPolicy(pinned=seen[0])
    async with asyncio.timeout(10):
        fresh = AiohttpClient()
        try:
            reply = await fresh.request(_target(server, pinned), "GET", "/api/v1/mgmt/device/info")
        finally:
            await fresh.close()
    assert reply.status == 200


async def test_pinned_mismatch_fails_before_the_request(
    server: Server, client: AiohttpClient
) -> None:
    wrong = "sha256:" + "ab" * 32
    target = _target(server, TrustPolicy(pinned=wrong))
    with pytest.raises(TlsFingerprintMismatch) as caught:
        await client.request(target, "GET", "/api/v1/mgmt/device/info")
    assert caught.value.expected == wrong
    assert caught.value.actual == server.certs.fingerprint
    assert server.hits == []  # no request (and no password) reached the impostor


async def test_ca_bundle_verification(
    server: Server, client: AiohttpClient, tmp_path: Path
) -> None:
    good = _target(server, TrustPolicy(ca_bundle=str(server.certs.ca)))
    assert (await client.request(good, "GET", "/api/v1/mgmt/device/info")).status == 200
    other_ca = make_certs(tmp_path / "other", label="other").ca
    bad = _target(server, TrustPolicy(ca_bundle=str(other_ca)))
    with pytest.raises(DeviceUnreachable, match="not trusted by the CA bundle"):
        await client.request(bad, "GET", "/api/v1/mgmt/device/info")
    assert server.hits == ["/api/v1/mgmt/device/info"]


async def test_system_store_rejects_a_self_signed_device(
    server: Server, client: AiohttpClient
) -> None:
    strict = _target(server, TrustPolicy(pin_on_first_use=False))
    with pytest.raises(DeviceUnreachable, match="TLS"):
        await client.request(strict, "GET", "/api/v1/mgmt/device/info")


async def test_connections_that_check_no_ca_load_no_ca_store(server: Server) -> None:
    """First contact, pinned and insecure requests verify no chain (the pin, if any, is compared
    by aiohttp), so their TLS context holds no CA certificate: the system store it used to load
    cost every handshake a look-up (bench/RESULTS.md, Scan, session 6). A CA bundle still
    verifies with its own context."""

    async def context_of(trust: TrustPolicy) -> ssl.SSLContext:
        """The TLS context of the (pooled) connection one request over a fresh client used."""
        client = AiohttpClient(limit=16)
        try:
            target = _target(server, trust)
            reply = await client.request(target, "GET", "/api/v1/mgmt/device/info")
            assert reply.status == 200
            [transport] = [
                entry[0].transport for entries in client._connector._conns.values()
                for entry in entries
            ]  # fmt: skip
            assert transport is not None
            context: ssl.SSLContext = transport.get_extra_info("ssl_object").context
            return context
        finally:
            await client.close()

    first_use = TrustPolicy(pin_on_first_use=True)
    pinned = TrustPolicy(pinned=server.certs.fingerprint)
    for trust in (first_use, pinned, TrustPolicy(insecure=True)):
        context = await context_of(trust)
        assert context.verify_mode == ssl.CERT_NONE
        assert context.cert_store_stats()["x509_ca"] == 0
    bundle = await context_of(TrustPolicy(ca_bundle=str(server.certs.ca)))
    assert bundle.verify_mode == ssl.CERT_REQUIRED
    assert bundle.cert_store_stats()["x509_ca"] == 1


async def test_refused_port_is_unreachable(client: AiohttpClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = HttpTarget("127.0.0.1", port, trust=TrustPolicy(insecure=True), timeout=2)
    with pytest.raises(DeviceUnreachable, match="cannot connect"):
        await client.request(target, "GET", "/")


async def test_slow_reply_is_a_timeout_not_auth(server: Server, client: AiohttpClient) -> None:
    target = _target(server, timeout=0.3)
    with pytest.raises(DeviceTimeout, match=r"no reply within 0\.3 s"):
        await client.request(target, "GET", "/slow")


async def _raw_server(reply: bytes | None) -> tuple[asyncio.Server, int]:
    """A plain TCP server that sends `reply` and closes, or (None) reads and stays silent."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            if reply is None:
                await asyncio.sleep(5)
            else:
                writer.write(reply)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    raw = await asyncio.start_server(handle, "127.0.0.1", 0)
    return raw, raw.sockets[0].getsockname()[1]


@pytest.mark.parametrize(
    ("reply", "error", "text"),
    [
        (b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"Status":', MalformedReply, "cut"),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", MalformedReply, "not valid HTTP"),
        (b"", DeviceUnreachable, "closed the connection"),
        (None, DeviceTimeout, "no reply"),
    ],
)
async def test_broken_plain_http_replies(
    client: AiohttpClient, reply: bytes | None, error: type[Exception], text: str
) -> None:
    raw, port = await _raw_server(reply)
    try:
        target = HttpTarget("127.0.0.1", port, scheme="http", auth=None, timeout=0.5)
        with pytest.raises(error, match=text):
            await client.request(target, "GET", "/api/v1/mgmt/device/info")
    finally:
        raw.close()
        await raw.wait_closed()
