"""`/healthz`, `/readyz` and `/metrics`: what an orchestrator and Prometheus read."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web

from controller.api.app import create_app
from controller.api.auth import FailedAuthThrottle
from inventory.store import InventoryStore
from inventory.token_store import Role
from tests.api.conftest import Client, MakeToken, bearer


async def test_ready_only_while_the_schema_is_current(
    client: Client, store: InventoryStore
) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    async with store.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE alembic_version SET version_num = '0005'"))
    response = await client.get("/readyz")
    assert response.status == 503
    assert response.content_type == "application/problem+json"
    assert "0005" not in await response.text()  # details stay in the log: the route is public
    assert (await client.get("/healthz")).status == 200


async def test_metrics_show_latency_by_route_and_every_family(
    client: Client, make_token: MakeToken
) -> None:
    token = await make_token(Role.VIEWER)
    for _ in range(3):
        assert (await client.get("/api/v1/devices/A1", headers=bearer(token))).status == 404
    assert (await client.get("/api/v1/me")).status == 401
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await response.text()
    route = 'method="GET",route="/api/v1/devices/{id}",status="404"'
    assert f"polyfleet_http_request_duration_seconds_count{{{route}}} 3" in text
    assert 'route="/api/v1/me",status="401"' in text
    assert "A1" not in text  # the route's template, never the path a client sent
    for family in (
        "polyfleet_job_queue_depth",
        "polyfleet_scan_results_total",
        "polyfleet_reactivations_total",
        "polyfleet_agent_last_seen_seconds",
    ):
        assert f"# TYPE {family} " in text


async def test_a_client_gone_mid_body_is_one_log_line_not_a_traceback(
    store: InventoryStore,
    throttle: FailedAuthThrottle,
    make_token: MakeToken,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A killed agent leaves its request body half sent: the controller notes it, logs no
    error (an operator would chase a bug that is not there) and keeps answering. Served as
    `serve` serves it (aiohttp's test server cancels handlers instead)."""
    token = await make_token(Role.TECHNICIAN)
    caplog.set_level(logging.INFO)
    runner = web.AppRunner(create_app(store, throttle=throttle))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        _, writer = await asyncio.open_connection(host, port)
        writer.write(
            b"POST /api/v1/scans HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 4096\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n\r\n"
            b'{"site": "hq-'
        )
        await writer.drain()
        await asyncio.sleep(0.2)  # the handler is reading the body
        writer.transport.abort()
        for _ in range(100):
            if any("went away" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{host}:{port}/healthz") as answer,
        ):
            assert answer.status == 200
    finally:
        await runner.cleanup()
    assert [r.getMessage() for r in caplog.records if "went away" in r.getMessage()] == [
        "client went away during POST /api/v1/scans"
    ]
    assert [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info
    ] == []
