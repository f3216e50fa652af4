"""Activation keys on both backends, and key resolution against the simulated licensing portal."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from controller.entitlements import (
    EntitlementRefused,
    EntitlementUnavailable,
    ObtainedKey,
    PortalProvider,
    resolve_key,
)
from inventory.key_files import key_ref
from inventory.key_store import DuplicateKey, KeyInUse, KeyNotFound, KeyStore, NewKey
from inventory.secret_box import SecretBox
from inventory.store import InventoryStore
from simulator.activation_keys import check_key
from simulator.context import FleetSecrets
from simulator.portal import Portal, create_app
from simulator.state import SimDevice
from tests.simulator.https_helpers import contract_for, small_fleet

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FEATURE = "productivity_suite"


def _key(serial: str, secret: str, *, days: int | None = 30, source: str = "file:k.csv") -> NewKey:
    expires = None if days is None else NOW + timedelta(days=days)
    return NewKey(serial, FEATURE, SecretStr(secret), expires, source)


@pytest.fixture
def keys(store: InventoryStore) -> KeyStore:
    return KeyStore(store.engine, SecretBox.from_environment())


async def test_keys_are_sealed_and_named_by_a_short_ref(
    keys: KeyStore, store: InventoryStore
) -> None:
    info = await keys.add(_key("sn-1", "PFK1-SECRET-VALUE-1"), now=NOW)
    assert info.serial == "SN-1"
    assert info.key_ref == key_ref("PFK1-SECRET-VALUE-1")
    assert len(info.key_ref) == 12
    async with store.engine.connect() as conn:
        raw = repr((await conn.execute(sa.text("SELECT * FROM activation_keys"))).all())
    assert "PFK1-SECRET-VALUE-1" not in raw
    assert "SECRET-VALUE" not in repr(await keys.list())
    with pytest.raises(DuplicateKey, match=info.key_ref):
        await keys.add(_key("SN-1", "PFK1-SECRET-VALUE-1"), now=NOW)
    again = await keys.add_many(
        [_key("SN-1", "PFK1-SECRET-VALUE-1"), _key("SN-1", "PFK1-OTHER")], now=NOW
    )
    assert (again.inserted, again.duplicates) == (1, [0])
    dry = await keys.add_many([_key("SN-2", "PFK1-X")], dry_run=True, now=NOW)
    assert dry.inserted == 1
    assert [k.serial for k in await keys.list()] == ["SN-1", "SN-1"]


async def test_next_unused_skips_expired_and_used_keys_soonest_first(keys: KeyStore) -> None:
    await keys.add(_key("SN-1", "K-EXPIRED", days=-1), now=NOW)
    await keys.add(_key("SN-1", "K-FOREVER", days=None), now=NOW)
    late = await keys.add(_key("SN-1", "K-LATE", days=90), now=NOW)
    soon = await keys.add(_key("SN-1", "K-SOON", days=10), now=NOW)
    await keys.add(_key("SN-2", "K-OTHER-SERIAL"), now=NOW)

    first = await keys.next_unused("sn-1", FEATURE, now=NOW)
    assert first is not None
    key_id, ref, secret, expires_at = first
    assert (key_id, ref) == (soon.key_id, soon.key_ref)
    assert secret.get_secret_value() == "K-SOON"
    assert expires_at == NOW + timedelta(days=10)
    assert "K-SOON" not in repr(first)

    await keys.mark_used(soon.key_id, "op-1", now=NOW)
    await keys.mark_used(soon.key_id, "op-1", now=NOW + timedelta(hours=1))  # idempotent
    with pytest.raises(KeyInUse, match="op-1"):
        await keys.mark_used(soon.key_id, "op-2", now=NOW)
    with pytest.raises(KeyNotFound):
        await keys.mark_used(999_999, "op-1")
    [used] = [k for k in await keys.list(serial="SN-1") if k.key_id == soon.key_id]
    assert (used.used_by, used.used_at) == ("op-1", NOW)

    second = await keys.next_unused("SN-1", FEATURE, now=NOW)
    assert second is not None
    assert second.key_id == late.key_id
    await keys.mark_used(late.key_id, "op-3", now=NOW)
    third = await keys.next_unused("SN-1", FEATURE, now=NOW)
    assert third is not None
    assert third.key_secret.get_secret_value() == "K-FOREVER"
    await keys.mark_used(third.key_id, "op-4", now=NOW)
    assert await keys.next_unused("SN-1", FEATURE, now=NOW) is None
    assert await keys.next_unused("SN-1", "uc_features", now=NOW) is None
    assert (await keys.get(soon.key_id)).key_secret.get_secret_value() == "K-SOON"
    unused = [k.key_ref for k in await keys.list(unused_only=True)]
    assert unused == [key_ref("K-EXPIRED"), key_ref("K-OTHER-SERIAL")]


# -- resolution: imported first, else the portal --------------------------------------------


@dataclass
class PortalFixture:
    url: str
    token: str
    secret: bytes
    covered: SimDevice
    lapsed: SimDevice


@pytest.fixture
async def portal() -> AsyncIterator[PortalFixture]:
    devices = small_fleet({"vvx": 100}, count=3, seed=5)
    contracts = [
        contract_for([devices[0].serial]),
        contract_for([devices[1].serial], lapsed=True),
    ]
    fleet_secrets = FleetSecrets.generate()
    server = TestServer(create_app(Portal(devices, contracts, fleet_secrets)), host="127.0.0.1")
    await server.start_server()
    try:
        yield PortalFixture(
            str(server.make_url("")).rstrip("/"),
            fleet_secrets.portal_token,
            fleet_secrets.portal_secret,
            devices[0],
            devices[1],
        )
    finally:
        await server.close()


async def test_imported_key_wins_over_the_portal(keys: KeyStore, portal: PortalFixture) -> None:
    serial = portal.covered.serial
    imported = await keys.add(_key(serial, "IMPORTED-KEY", days=5), now=NOW)
    provider = PortalProvider(portal.url, portal.token)
    resolved = await resolve_key(keys, provider, serial, FEATURE, operation_id="op-1", now=NOW)
    assert (resolved.key_id, resolved.source) == (imported.key_id, "stored")
    again = await resolve_key(keys, provider, serial, FEATURE, operation_id="op-1", now=NOW)
    assert again.key_id == imported.key_id  # a resumed operation gets its own key back

    fresh = await resolve_key(keys, provider, serial, FEATURE, operation_id="op-2", now=NOW)
    assert fresh.source == "portal"
    assert fresh.contract == "C-TEST-1"
    assert check_key(portal.secret, fresh.key.get_secret_value(), serial).ok
    stored = await keys.find(serial, FEATURE, fresh.key_ref)
    assert stored is not None
    assert (stored.source, stored.used_by) == ("portal", "op-2")
    assert fresh.key.get_secret_value() not in repr(fresh)


async def test_portal_key_is_stored_before_use_and_survives_a_crash(
    keys: KeyStore, portal: PortalFixture
) -> None:
    serial = portal.covered.serial
    provider = PortalProvider(portal.url, portal.token)
    peeked = await resolve_key(keys, provider, serial, FEATURE, now=NOW)  # no operation: no claim
    assert peeked.source == "portal"
    # "crash" before the workflow claimed it: the rerun finds the stored key, no new request
    rerun = await resolve_key(keys, None, serial, FEATURE, operation_id="op-9", now=NOW)
    assert (rerun.key_id, rerun.source) == (peeked.key_id, "stored")
    # the portal re-issues the same key for the same term; another operation may not reuse it
    with pytest.raises(EntitlementRefused, match="op-9"):
        await resolve_key(keys, provider, serial, FEATURE, operation_id="op-10", now=NOW)
    # ... but the operation that holds it gets it back even through the portal path
    same = await resolve_key(keys, provider, serial, FEATURE, operation_id="op-9", now=NOW)
    assert same.key_id == peeked.key_id


async def test_portal_refusals_and_outages_are_told_apart(
    keys: KeyStore, portal: PortalFixture
) -> None:
    provider = PortalProvider(portal.url, portal.token)
    with pytest.raises(EntitlementRefused, match="ended on") as refused:
        await provider.obtain_key(portal.lapsed.serial, FEATURE)
    assert (refused.value.code, refused.value.status) == ("contract_expired", 403)
    with pytest.raises(EntitlementRefused, match="no registered product"):
        await provider.obtain_key("NOSUCHSERIAL", FEATURE)
    with pytest.raises(EntitlementRefused, match="not offered"):
        await provider.obtain_key(portal.covered.serial, "teleport")
    with pytest.raises(EntitlementUnavailable, match="token"):
        await PortalProvider(portal.url, "wrong-token").obtain_key(portal.covered.serial, FEATURE)
    assert "wrong-token" not in repr(PortalProvider(portal.url, "wrong-token"))

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    offline = PortalProvider(f"http://127.0.0.1:{closed_port}", portal.token, timeout_s=2)
    with pytest.raises(EntitlementUnavailable, match="unreachable"):
        await resolve_key(keys, offline, portal.covered.serial, FEATURE, now=NOW)
    with pytest.raises(EntitlementUnavailable, match="keys import"):
        await resolve_key(keys, None, portal.covered.serial, FEATURE, now=NOW)
    assert await keys.list() == []  # nothing half-written


class _ExpiredProvider:
    name = "portal"

    async def obtain_key(
        self, serial: str, feature: str, *, idempotency_key: str | None = None
    ) -> ObtainedKey:
        return ObtainedKey(serial, feature, SecretStr("OLD"), NOW - timedelta(days=1))


async def test_an_expired_key_from_a_provider_is_refused(keys: KeyStore) -> None:
    with pytest.raises(EntitlementRefused, match="expired"):
        await resolve_key(keys, _ExpiredProvider(), "SN-1", FEATURE, now=NOW)
