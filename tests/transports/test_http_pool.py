"""AiohttpClient connection reuse: one TLS connection per device, first-use pin to pinned
included, and `release_host` closing a finished device's idle connection (scan_bench findings)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from device_drivers.transports import HttpTarget, TrustPolicy
from device_drivers.transports.http import AiohttpClient
from tests.transports.tls_helpers import make_certs


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[int, list[object]]]:
    """An HTTPS server that records the peer (address, port) of every request."""
    peers: list[object] = []

    async def info(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/info", info)
    certs = make_certs(tmp_path / "tls")
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=certs.server_context())
    await site.start()
    try:
        yield runner.addresses[0][1], peers
    finally:
        await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[AiohttpClient]:
    opened = AiohttpClient(limit=16)
    try:
        yield opened
    finally:
        await opened.close()


async def test_first_use_then_pinned_requests_share_one_connection(
    server: tuple[int, list[object]], client: AiohttpClient
) -> None:
    port, peers = server
    seen: list[str] = []

    async def remember(value: str) -> None:
        seen.append(value)

    target = HttpTarget("127.0.0.1", port, trust=TrustPolicy(on_first_use=remember), auth=None)
    for _ in range(3):
        assert (await client.request(target, "GET", "/info")).status == 200
    assert len(seen) == 1  # pinned on first use, reported once
    assert len(set(peers)) == 1  # ...and the pinned requests reused that TLS connection


async def test_stored_pin_requests_share_one_connection(
    server: tuple[int, list[object]], client: AiohttpClient
) -> None:
    port, peers = server
    probe = AiohttpClient(limit=2)
    seen: list[str] = []

    async def remember(value: str) -> None:
        seen.append(value)

    try:
        await probe.request(
            HttpTarget("127.0.0.1", port, trust=TrustPolicy(on_first_use=remember), auth=None),
            "GET",
            "/info",
        )
    finally:
        await probe.close()
    peers.clear()
    pinned = HttpTarget("127.0.0.1", port, trust=TrustPolicy(pinned=seen[0]), auth=None)
    for _ in range(3):
        assert (await client.request(pinned, "GET", "/info")).status == 200
    assert len(set(peers)) == 1  # one Fingerprint per pin: the pool key matches every time


async def test_release_host_closes_the_idle_connection(
    server: tuple[int, list[object]], client: AiohttpClient
) -> None:
    port, peers = server
    target = HttpTarget("127.0.0.1", port, trust=TrustPolicy(insecure=True), auth=None)
    await client.request(target, "GET", "/info")
    client.release_host("127.0.0.2")  # another device: nothing of ours is closed
    await client.request(target, "GET", "/info")
    assert len(set(peers)) == 1
    client.release_host("127.0.0.1")
    await client.request(target, "GET", "/info")
    assert len(set(peers)) == 2  # the released connection was closed, a new one opened


async def test_close_waits_for_released_tls_connections_to_shut_down(
    server: tuple[int, list[object]],
) -> None:
    """A CLI command ends right after its last device: the loop must not close under a TLS
    shutdown still in flight (uvloop then fails the whole command with EBUSY)."""
    port, _ = server
    client = AiohttpClient(limit=16)
    target = HttpTarget("127.0.0.1", port, trust=TrustPolicy(insecure=True), auth=None)
    await client.request(target, "GET", "/info")
    pool = client._connector._conns  # the protocols release_host is about to close
    protocols = [protocol for entries in pool.values() for protocol, _ in entries]
    assert protocols
    client.release_host("127.0.0.1")
    await client.close()
    assert all(p.closed is None or p.closed.done() for p in protocols)
    assert all(p.transport is None or p.transport.is_closing() for p in protocols)
