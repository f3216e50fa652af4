"""Every role is refused where it must be, tokens are managed by admins, and guessing tokens
is slowed down."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from controller.api.auth import FailedAuthThrottle
from inventory.schema import api_tokens
from inventory.store import InventoryStore
from inventory.token_store import Role
from tests.api.conftest import Client, FakeClock, MakeToken, bearer

VIEWER_ROUTES = ["/api/v1/me", "/api/v1/devices", "/api/v1/health", "/api/v1/sites",
                 "/api/v1/confirmations", "/api/v1/confirmations/verify"]  # fmt: skip


async def test_no_token_is_401_with_a_bearer_challenge(client: Client) -> None:
    for path in [*VIEWER_ROUTES, "/api/v1/tokens", "/api/v1/quotes/ABC"]:
        response = await client.get(path)
        assert response.status == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.content_type == "application/problem+json"
        assert (await response.json())["status"] == 401


async def test_unknown_malformed_and_revoked_tokens_are_401(
    client: Client, make_token: MakeToken
) -> None:
    admin = await make_token(Role.ADMIN)
    viewer = await make_token(Role.VIEWER)
    forged = viewer[:-4] + ("AAAA" if not viewer.endswith("AAAA") else "BBBB")
    for token in (forged, "not-a-token", "pfk_000000000000_" + "x" * 43):
        response = await client.get("/api/v1/me", headers=bearer(token))
        assert response.status == 401, token
    assert (await client.get("/api/v1/me", headers=bearer(viewer))).status == 200
    token_id = viewer.split("_")[1]
    revoked = await client.delete(f"/api/v1/tokens/{token_id}", headers=bearer(admin))
    assert revoked.status == 200
    assert (await revoked.json())["revoked_at"] is not None
    response = await client.get("/api/v1/me", headers=bearer(viewer))
    assert response.status == 401
    assert "revoked" in (await response.json())["detail"]


@pytest.mark.parametrize(
    ("role", "method", "path"),
    [
        (Role.VIEWER, "GET", "/api/v1/quotes/ABC"),
        (Role.VIEWER, "GET", "/api/v1/tokens"),
        (Role.VIEWER, "POST", "/api/v1/tokens"),
        (Role.TECHNICIAN, "GET", "/api/v1/tokens"),
        (Role.TECHNICIAN, "DELETE", "/api/v1/tokens/000000000000"),
        (Role.AGENT, "GET", "/api/v1/devices"),
        (Role.AGENT, "GET", "/api/v1/me"),
        (Role.AGENT, "GET", "/api/v1/tokens"),
    ],
)
async def test_wrong_role_is_403(
    client: Client, make_token: MakeToken, role: Role, method: str, path: str
) -> None:
    token = await make_token(role, site="hq" if role is Role.AGENT else None)
    response = await client.request(method, path, headers=bearer(token), json={"role": "viewer"})
    assert response.status == 403
    assert response.content_type == "application/problem+json"
    assert str(role) in (await response.json())["detail"]


async def test_higher_roles_include_the_lower_ones(client: Client, make_token: MakeToken) -> None:
    admin = await make_token(Role.ADMIN)
    technician = await make_token(Role.TECHNICIAN)
    for path in VIEWER_ROUTES:
        assert (await client.get(path, headers=bearer(admin))).status == 200, path
        assert (await client.get(path, headers=bearer(technician))).status == 200, path
    # a technician quotes: the device is unknown, so the answer is 404, not 403
    assert (await client.get("/api/v1/quotes/NOSUCH1", headers=bearer(technician))).status == 404


async def test_admin_creates_a_token_shown_once_and_stored_hashed(
    client: Client, make_token: MakeToken, store: InventoryStore
) -> None:
    admin = await make_token(Role.ADMIN)
    response = await client.post(
        "/api/v1/tokens", headers=bearer(admin), json={"role": "agent", "site": "hq", "name": "a1"}
    )
    assert response.status == 201
    created = await response.json()
    me = await client.get("/api/v1/me", headers=bearer(created["token"]))
    assert me.status == 403  # an agent token: only the agent routes
    listed = await (await client.get("/api/v1/tokens", headers=bearer(admin))).json()
    ours = [t for t in listed["items"] if t["id"] == created["id"]]
    assert ours == [{**ours[0], "role": "agent", "site": "hq", "name": "a1", "revoked_at": None}]
    assert created["token"] not in str(listed)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(api_tokens))).mappings().all()
    assert created["token"] not in str([dict(r) for r in rows])
    secret = created["token"].rsplit("_", 1)[1]
    assert secret not in str([dict(r) for r in rows])


async def test_agent_token_without_site_is_refused_naming_the_field(
    client: Client, make_token: MakeToken
) -> None:
    admin = await make_token(Role.ADMIN)
    response = await client.post("/api/v1/tokens", headers=bearer(admin), json={"role": "agent"})
    assert response.status == 400
    assert [e["field"] for e in (await response.json())["errors"]] == ["body.site"]


async def test_revoking_an_unknown_token_is_404(client: Client, make_token: MakeToken) -> None:
    admin = await make_token(Role.ADMIN)
    response = await client.delete("/api/v1/tokens/0123456789ab", headers=bearer(admin))
    assert response.status == 404


async def test_repeated_failed_authentication_is_answered_429_until_the_window_passes(
    client: Client, make_token: MakeToken, throttle: FailedAuthThrottle, clock: FakeClock
) -> None:
    good = await make_token(Role.VIEWER)
    for _ in range(throttle.limit):
        response = await client.get("/api/v1/me", headers=bearer("pfk_wrong"))
        assert response.status == 401
    # now even the right token is refused from this address, with a time to come back
    refused = await client.get("/api/v1/me", headers=bearer(good))
    assert refused.status == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= throttle.window
    assert (await client.get("/healthz")).status == 200  # public routes stay open
    clock.now += throttle.window + 1
    assert (await client.get("/api/v1/me", headers=bearer(good))).status == 200


async def test_requests_without_a_token_are_not_counted_as_guesses(
    client: Client, make_token: MakeToken, throttle: FailedAuthThrottle
) -> None:
    good = await make_token(Role.VIEWER)
    for _ in range(throttle.limit * 2):
        assert (await client.get("/api/v1/me")).status == 401
    assert (await client.get("/api/v1/me", headers=bearer(good))).status == 200
