"""`/healthz`, `/readyz` and `/metrics`: what an orchestrator and Prometheus read."""

from __future__ import annotations

import sqlalchemy as sa

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
