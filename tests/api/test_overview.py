"""The dashboard's reads: the overview aggregates, the product groups, the audit export, and the
page itself served at `/`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.confirmations import confirmation_store
from inventory.models import Device, License, LicenseRead, LicenseState
from inventory.observation_store import DeviceObservation, ObservationStore
from inventory.store import InventoryStore
from inventory.token_store import Role
from tests.api.conftest import Client, MakeToken, bearer

NOW = datetime.now(UTC)


def _license(serial: str, feature: str, state: LicenseState, days: int) -> License:
    return License(
        serial=serial,
        feature=feature,
        state=state,
        expires_at=NOW + timedelta(days=days),
        source="test",
        observed_at=NOW,
    )


async def _fleet(store: InventoryStore) -> None:
    """Three phones at hq (one expiring in 20 days, one whose licenses could not be read, one
    expired) and a camera at lab expiring in 75 days."""
    rows = [
        ("SN-A", "0004f2000001", "VVX 450", "soundpoint-ip", "hq"),
        ("SN-B", "0004f2000002", "VVX 450", "soundpoint-ip", "hq"),
        ("SN-C", "0004f2000003", "VVX 450", "soundpoint-ip", "hq"),
        ("SN-D", "0004f2000004", "Studio X50", "video", "lab"),
    ]
    for serial, mac, model, group, site in rows:
        await store.add_device(
            Device(serial=serial, mac=mac, model=model, product_group=group, site=site)
        )
    unread = LicenseRead(ok=False, call="GET /license", detail="HTTP 404 <b>gone</b>")
    await ObservationStore(store.engine).record(
        [
            DeviceObservation(
                "SN-A", NOW, True, licenses=[_license("SN-A", "base", LicenseState.ACTIVE, 20)]
            ),
            DeviceObservation("SN-B", NOW, True, licenses=[], license_read=unread),
            DeviceObservation(
                "SN-C", NOW, True, licenses=[_license("SN-C", "base", LicenseState.EXPIRED, -3)]
            ),
            DeviceObservation(
                "SN-D", NOW - timedelta(hours=1), True,
                licenses=[_license("SN-D", "video", LicenseState.ACTIVE, 75)],
            ),
        ]
    )  # fmt: skip


async def test_overview_counts_the_fleet(
    client: Client, store: InventoryStore, make_token: MakeToken
) -> None:
    await _fleet(store)
    answer = await client.get("/api/v1/overview", headers=bearer(await make_token(Role.VIEWER)))
    assert answer.status == 200
    body = await answer.json()
    assert body["counts"] == {"OK": 1, "WARNING": 1, "CRITICAL": 1, "UNKNOWN": 1}
    groups = {g["product_group"]: (g["devices"], g["counts"]) for g in body["product_groups"]}
    assert groups["soundpoint-ip"][0] == 3
    assert groups["video"] == (1, {"OK": 1, "WARNING": 0, "CRITICAL": 0, "UNKNOWN": 0})
    assert [(w["days"], w["licenses"]) for w in body["expiring"]] == [(30, 1), (60, 1), (90, 2)]
    assert [d["serial"] for d in body["unreadable"]] == ["SN-B"]
    assert "GET /license" in body["unreadable"][0]["reason"]
    assert body["unreadable_total"] == 1
    assert datetime.fromisoformat(body["last_scan"]) == NOW


async def test_a_site_token_sees_its_site_only(
    client: Client, store: InventoryStore, make_token: MakeToken
) -> None:
    await _fleet(store)
    token = await make_token(Role.VIEWER, site="lab")
    body = await (await client.get("/api/v1/overview", headers=bearer(token))).json()
    assert sum(body["counts"].values()) == 1
    assert body["unreadable"] == []


async def test_overview_needs_a_token(client: Client) -> None:
    answer = await client.get("/api/v1/overview")
    assert answer.status == 401


async def test_product_groups_are_the_filter_ids(client: Client, make_token: MakeToken) -> None:
    answer = await client.get(
        "/api/v1/product-groups", headers=bearer(await make_token(Role.VIEWER))
    )
    items = (await answer.json())["items"]
    assert {"id": "video", "title": "Video Products"} in items


async def test_export_is_the_cli_export(
    client: Client, store: InventoryStore, make_token: MakeToken
) -> None:
    token = await make_token(Role.VIEWER)
    answer = await client.get(
        "/api/v1/confirmations/export", params={"format": "csv"}, headers=bearer(token)
    )
    assert answer.status == 200
    assert answer.content_type == "text/csv"
    assert (await answer.text()).splitlines()[0].startswith("number,serial,mac,feature")
    assert await confirmation_store(store.engine).list() == []
    bad = await client.get(
        "/api/v1/confirmations/export", params={"format": "xml"}, headers=bearer(token)
    )
    assert bad.status == 400


async def test_the_dashboard_is_served_without_a_token(client: Client) -> None:
    page = await client.get("/")
    assert page.status == 200
    assert "Content-Security-Policy" in page.headers
    assert '<script type="module" src="/static/js/main.js">' in await page.text()
    script = await client.get("/static/js/main.js")
    assert script.content_type == "text/javascript"
    assert (await client.get("/static/../pyproject.toml")).status == 404
    assert (await client.get("/static/js/nothing.js")).status == 404
