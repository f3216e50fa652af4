"""`GET /confirmations` pages the record in chain order; `/confirmations/verify` audits it;
a device's detail lists its own records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from controller.confirmations import confirmation_store
from inventory.confirmation_store import ConfirmationDraft
from inventory.store import InventoryStore
from inventory.token_store import Role
from tests.api.conftest import Client, MakeToken, bearer
from tests.api.fleet import mac_of, seed_fleet

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


async def _confirm(store: InventoryStore, serial: str, mac: str, op: str) -> str:
    made = await confirmation_store(store.engine).append(
        ConfirmationDraft.model_validate(
            {
                "reactivation_id": op, "serial": serial, "mac": mac,
                "feature": "productivity_suite", "state_before": "expired",
                "state_after": "active", "key_ref": "0123456789ab", "driver": "poly-uc",
                "fee": Decimal("195"), "currency": "USD", "contract": "C-1",
                "requested_at": T0, "confirmed_at": T0 + timedelta(seconds=3), "actor": "tech",
            }
        )
    )  # fmt: skip
    return made.hash


async def test_pages_verify_and_device_records(
    client: Client, store: InventoryStore, make_token: MakeToken
) -> None:
    await seed_fleet(store)
    hashes = [
        await _confirm(store, "A1000", mac_of(0), "op-1"),
        await _confirm(store, "B2001", mac_of(4), "op-2"),
        await _confirm(store, "A1000", mac_of(0), "op-3"),
    ]
    viewer = bearer(await make_token(Role.VIEWER))

    first = await (await client.get("/api/v1/confirmations?limit=2", headers=viewer)).json()
    rest = await (await client.get("/api/v1/confirmations?offset=2", headers=viewer)).json()
    assert (first["total"], rest["total"]) == (3, 3)
    items = first["items"] + rest["items"]
    assert [c["number"] for c in items] == ["RC-2026-000001", "RC-2026-000002", "RC-2026-000003"]
    assert [c["hash"] for c in items] == hashes
    assert items[0]["fee"] == "195.00"
    assert items[0]["confirmed_at"] == "2026-11-23T10:00:03.000000Z"  # as hashed

    verdict = await (await client.get("/api/v1/confirmations/verify", headers=viewer)).json()
    assert verdict["intact"] is True
    assert (verdict["records"], verdict["head_hash"]) == (3, hashes[-1])
    assert verdict["detail"] is None
    assert verdict["key_id"]  # signatures checked with the controller's key

    detail = await (await client.get("/api/v1/devices/a1000", headers=viewer)).json()
    assert [c["number"] for c in detail["confirmations"]] == ["RC-2026-000001", "RC-2026-000003"]
