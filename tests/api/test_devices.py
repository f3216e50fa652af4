"""`GET /devices`: filters, search by serial or MAC in any spelling, order, pagination; and
`GET /devices/{id}`, `/health`, `/sites` over the same fleet."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from inventory.models import LicenseRead
from inventory.observation_store import DeviceObservation, ObservationStore
from inventory.store import InventoryStore
from inventory.token_store import Role
from tests.api.conftest import Client, MakeToken, bearer
from tests.api.fleet import EXPECTED_STATUS, FLEET, mac_of, seed_fleet


@pytest.fixture
async def viewer(store: InventoryStore, make_token: MakeToken) -> dict[str, str]:
    await seed_fleet(store)
    return bearer(await make_token(Role.VIEWER))


async def _get(client: Client, headers: dict[str, str], path: str, **params: Any) -> Any:
    response = await client.get(path, headers=headers, params=params)
    assert response.status == 200, await response.text()
    return await response.json()


async def _serials(client: Client, headers: dict[str, str], **params: Any) -> list[str]:
    page = await _get(client, headers, "/api/v1/devices", **params)
    return [item["serial"] for item in page["items"]]


async def test_pages_cover_every_device_once_in_order(
    client: Client, viewer: dict[str, str]
) -> None:
    seen: list[str] = []
    for offset in range(0, 8, 4):
        page = await _get(client, viewer, "/api/v1/devices", limit=4, offset=offset)
        assert (page["total"], page["limit"], page["offset"]) == (6, 4, offset)
        seen += [item["serial"] for item in page["items"]]
    assert seen == sorted(FLEET)


async def test_a_device_shows_its_scan_keys_and_health(
    client: Client, viewer: dict[str, str]
) -> None:
    [item] = (await _get(client, viewer, "/api/v1/devices", q="A1001"))["items"]
    assert item["id"] == item["serial"] == "A1001"
    assert item["mac"] == mac_of(1)
    assert (item["site"], item["model"], item["product_group"]) == (
        "hq",
        "VVX 450",
        "soundpoint-ip",
    )
    assert item["status"] == "CRITICAL"
    assert "expired" in item["reason"]
    assert item["reachable"] is True
    assert [lic["state"] for lic in item["licenses"]] == ["expired"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"site": "hq"}, ["A1000", "A1001", "A1002"]),
        ({"model": "G7500"}, ["B2001", "B2002"]),
        ({"product_group": "soundstation-ip"}, ["A1002", "B2000"]),
        ({"status": "OK"}, ["A1000", "B2000", "B2002"]),
        ({"status": "OK", "site": "branch"}, ["B2000", "B2002"]),
        ({"site": "nowhere"}, []),
        ({"q": "b20"}, ["B2000", "B2001", "B2002"]),  # serial prefix, any case
        ({"q": "00:04:F2:AA:00:03"}, ["B2000"]),
        ({"q": "0004.f2aa.0003"}, ["B2000"]),
        ({"q": "00-04-f2-aa-00-03"}, ["B2000"]),
        ({"q": "0004F2AA0003"}, ["B2000"]),
        ({"q": "00:04:f2:aa:00"}, sorted(FLEET)),  # leading digits of a MAC
        ({"q": "%"}, []),  # a LIKE wildcard is a character like any other
    ],
)
async def test_filters_and_search(
    client: Client, viewer: dict[str, str], params: dict[str, str], expected: list[str]
) -> None:
    assert await _serials(client, viewer, **params) == expected


async def test_sorting(client: Client, viewer: dict[str, str]) -> None:
    assert await _serials(client, viewer, sort="serial", order="desc") == sorted(
        FLEET, reverse=True
    )
    by_status = await _serials(client, viewer, sort="status", order="desc")
    assert [EXPECTED_STATUS[s] for s in by_status][:2] == ["CRITICAL", "WARNING"]
    by_model = await _serials(client, viewer, sort="model")
    models = [FLEET[s][1] for s in by_model]
    assert models == sorted(models)
    by_expiry = await _serials(client, viewer, sort="expires_at")
    assert by_expiry[:2] == ["A1001", "B2001"]  # expired, then expiring soon
    assert by_expiry[-1] == "A1002"  # never scanned: no expiry, last
    paged = await _get(client, viewer, "/api/v1/devices", status="OK", sort="site", limit=1,
                       offset=2)  # fmt: skip
    assert paged["total"] == 3
    assert [i["serial"] for i in paged["items"]] == ["A1000"]  # B2000, B2002 (branch), A1000


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "query.limit"),
        ({"limit": "501"}, "query.limit"),
        ({"limit": "ten"}, "query.limit"),
        ({"offset": "-1"}, "query.offset"),
        ({"sort": "colour"}, "query.sort"),
        ({"status": "FINE"}, "query.status"),
        ({"stat": "OK"}, "query.stat"),
    ],
)
async def test_bad_query_is_a_problem_naming_the_field(
    client: Client, viewer: dict[str, str], params: dict[str, str], field: str
) -> None:
    response = await client.get("/api/v1/devices", headers=viewer, params=params)
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["status"] == 400
    assert [e["field"] for e in body["errors"]] == [field]


async def test_device_by_any_spelling_of_its_mac(client: Client, viewer: dict[str, str]) -> None:
    for spelling in ("B2001", "b2001", "00:04:F2:AA:00:04", "0004.f2aa.0004"):
        detail = await _get(client, viewer, f"/api/v1/devices/{spelling}")
        assert detail["serial"] == "B2001"
        assert detail["status"] == "WARNING"
        assert [o["reachable"] for o in detail["observations"]] == [True]
        assert detail["confirmations"] == []
    missing = await client.get("/api/v1/devices/ZZZ999", headers=viewer)
    assert missing.status == 404
    assert missing.content_type == "application/problem+json"


async def test_a_second_scan_adds_to_the_history_newest_first(
    client: Client, viewer: dict[str, str], store: InventoryStore
) -> None:
    """seed_fleet scanned A1001 an hour ago (licenses read); now it stops answering licenses."""
    unread = LicenseRead(ok=False, call="GET /api/v1/mgmt/license/info", detail="HTTP 503")
    await ObservationStore(store.engine).record(
        [DeviceObservation(serial="A1001", observed_at=datetime.now(UTC), reachable=True,
                           driver="poly-uc", license_read=unread)]
    )  # fmt: skip
    detail = await _get(client, viewer, "/api/v1/devices/A1001")
    assert detail["observations_total"] == 2
    newest, older = detail["observations"]
    assert newest["observed_at"] > older["observed_at"]
    assert newest["licenses"] is None
    assert newest["license_read"]["detail"] == "HTTP 503"
    assert [(lic["feature"], lic["state"]) for lic in older["licenses"]] == [("base", "expired")]
    assert older["license_read"] is None  # seed_fleet recorded no read outcome

    route = "/api/v1/devices/0004.f2aa.0001/observations"  # A1001 by its MAC
    first = await _get(client, viewer, route, limit=1)
    assert (first["total"], first["limit"], first["offset"]) == (2, 1, 0)
    assert first["items"] == [newest]
    second = await _get(client, viewer, route, limit=1, offset=1)
    assert second["items"] == [older]
    never = await _get(client, viewer, "/api/v1/devices/A1002/observations")
    assert (never["total"], never["items"]) == (0, [])
    assert (await _get(client, viewer, "/api/v1/devices/A1002"))["observations"] == []


async def test_history_of_an_unknown_device_or_with_a_bad_page_is_a_problem(
    client: Client, viewer: dict[str, str]
) -> None:
    missing = await client.get("/api/v1/devices/ZZZ999/observations", headers=viewer)
    assert missing.status == 404
    assert missing.content_type == "application/problem+json"
    assert "ZZZ999" in (await missing.json())["detail"]
    bad = await client.get("/api/v1/devices/A1001/observations", headers=viewer,
                           params={"limit": "0"})  # fmt: skip
    assert bad.status == 400
    assert [e["field"] for e in (await bad.json())["errors"]] == ["query.limit"]
    anonymous = await client.get("/api/v1/devices/A1001/observations")
    assert anonymous.status == 401


async def test_health_is_the_cli_document(client: Client, viewer: dict[str, str]) -> None:
    report = await _get(client, viewer, "/api/v1/health", site="branch")
    assert report["status"] == "WARNING"
    assert report["counts"] == {"OK": 2, "WARNING": 1, "CRITICAL": 0, "UNKNOWN": 0}
    assert {d["serial"] for d in report["devices"]} == {"B2000", "B2001", "B2002"}


async def test_sites_count_health_per_site(client: Client, viewer: dict[str, str]) -> None:
    sites = await _get(client, viewer, "/api/v1/sites")
    assert [(s["site"], s["devices"]) for s in sites] == [("branch", 3), ("hq", 3)]
    hq = sites[1]["counts"]
    assert hq == {"OK": 1, "WARNING": 0, "CRITICAL": 1, "UNKNOWN": 1}
    assert sites[0]["agent_last_seen"] is None
