"""`polyfleet tokens`: a token is printed once, works against the API, is stored only as a
hash, lists without secrets and can be revoked."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from inventory.database import DatabaseTarget
from inventory.schema import api_tokens
from inventory.store import InventoryStore
from inventory.token_store import TokenStore, token_hash
from tests.e2e.cli import polyfleet


def _stored_rows(target: DatabaseTarget) -> list[dict[str, object]]:
    async def read() -> list[dict[str, object]]:
        async with await InventoryStore.open(target) as store, store.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(sa.select(api_tokens))).mappings()]

    return asyncio.run(read())


def _authenticates(target: DatabaseTarget, token: str) -> bool:
    async def check() -> bool:
        async with await InventoryStore.open(target) as store:
            return await TokenStore(store.engine).authenticate(token) is not None

    return asyncio.run(check())


def test_create_prints_the_token_once_and_stores_only_its_hash(
    db_url: str, db_target: DatabaseTarget
) -> None:
    created = polyfleet(db_url, "tokens", "create", "--role", "technician", "--name", "ci")
    assert created.code == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("pfk_")
    assert len(created.stdout.splitlines()) == 1  # stdout is the token alone: scriptable
    assert token not in created.stderr
    assert "shown this once" in created.stderr
    rows = _stored_rows(db_target)
    assert [r["token_hash"] for r in rows] == [token_hash(token)]
    assert token.rsplit("_", 1)[1] not in repr(rows)
    assert _authenticates(db_target, token)

    listed = polyfleet(db_url, "tokens", "list", "-o", "json")
    assert listed.code == 0
    [entry] = listed.json()
    assert (entry["role"], entry["name"], entry["revoked_at"]) == ("technician", "ci", None)
    assert token.rsplit("_", 1)[1] not in listed.stdout

    revoked = polyfleet(db_url, "tokens", "revoke", entry["id"])
    assert revoked.code == 0
    assert not _authenticates(db_target, token)
    assert polyfleet(db_url, "tokens", "list", "-o", "json").json()[0]["revoked_at"] is not None


def test_create_json_and_agent_site(db_url: str, db_target: DatabaseTarget) -> None:
    refused = polyfleet(db_url, "tokens", "create", "--role", "agent")
    assert refused.code == 2
    assert "--site" in refused.stderr
    made = polyfleet(db_url, "tokens", "create", "--role", "agent", "--site", "hq", "-o", "json")
    assert made.code == 0
    document = made.json()
    assert (document["role"], document["site"]) == ("agent", "hq")
    assert _authenticates(db_target, document["token"])


def test_revoking_an_unknown_id_names_it(db_url: str) -> None:
    outcome = polyfleet(db_url, "tokens", "revoke", "0123456789ab")
    assert outcome.code == 1
    assert "0123456789ab" in outcome.stderr
