"""The inventory store on SQLite and PostgreSQL: lookups, upserts, conflicts, migrations."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from inventory.database import DatabaseTarget, create_engine, script_head, upgrade
from inventory.errors import DeviceNotFound, IdentityConflict, InvalidIdentifier
from inventory.migrations import HEAD
from inventory.models import Device, DevicePorts
from inventory.partial_indexes import metadata
from inventory.store import InventoryStore

PHONE = Device(serial="0004F2AABB01", mac="0004f2aabb01", model="VVX 450", site="hq")
CAMERA = Device(serial="8L200353429AFC", mac="64167f000002", model="Studio X50", site="branch")
ANALOG_1 = Device(serial="SS2-0001", model="SoundStation 2", site="hq")
ANALOG_2 = Device(serial="SS2-0002", model="SoundStation 2", site="hq")


async def test_finds_a_device_by_serial_or_by_mac_in_any_spelling(store: InventoryStore) -> None:
    await store.upsert_devices([PHONE, CAMERA])
    for spelling in ("8l200353429afc", "64:16:7F:00:00:02", "64-16-7f-00-00-02", "6416.7f00.0002"):
        found = await store.get_device(spelling)
        assert found.serial == "8L200353429AFC"
    with pytest.raises(DeviceNotFound, match="NOPE"):
        await store.get_device("NOPE")
    with pytest.raises(InvalidIdentifier):
        await store.get_device("   ")


async def test_upsert_inserts_updates_and_counts_unchanged(store: InventoryStore) -> None:
    first = await store.upsert_devices([PHONE, CAMERA, ANALOG_1, ANALOG_2])
    assert (first.inserted, first.updated, first.unchanged) == (4, 0, 0)
    moved = CAMERA.model_copy(update={"site": "hq", "host": "10.0.0.5"})
    second = await store.upsert_devices([PHONE, moved])
    assert (second.inserted, second.updated, second.unchanged) == (0, 1, 1)
    stored = await store.get_device(CAMERA.serial)
    assert (stored.site, stored.host, stored.model) == ("hq", "10.0.0.5", "Studio X50")
    assert await store.count_devices() == 4
    assert [d.serial for d in await store.list_devices(site="hq")] == [
        "0004F2AABB01",
        "8L200353429AFC",
        "SS2-0001",
        "SS2-0002",
    ]


async def test_serial_of_one_device_with_mac_of_another_is_a_conflict_not_a_merge(
    store: InventoryStore,
) -> None:
    await store.upsert_devices([PHONE, CAMERA])
    swapped = Device(serial=PHONE.serial, mac=CAMERA.mac, site="elsewhere")
    report = await store.upsert_devices([swapped, ANALOG_1])
    assert report.inserted == 1
    assert len(report.conflicts) == 1
    assert report.conflicts[0].index == 0
    assert "belongs to device 8L200353429AFC" in str(report.conflicts[0].error)
    assert await store.get_device(PHONE.serial) == PHONE
    assert await store.get_device(CAMERA.serial) == CAMERA


async def test_new_serial_with_a_known_mac_is_a_conflict(store: InventoryStore) -> None:
    await store.upsert_devices([PHONE])
    with pytest.raises(IdentityConflict):
        await store.add_device(Device(serial="OTHER", mac=PHONE.mac))
    assert await store.count_devices() == 1


async def test_a_sparse_record_keeps_what_it_does_not_mention(store: InventoryStore) -> None:
    pinned = PHONE.model_copy(
        update={
            "tls_fingerprint": "sha256:ab" * 8,
            "tags": {"room": "101"},
            "ports": DevicePorts(https=8443),
            "first_seen": datetime(2026, 1, 1, tzinfo=UTC),
        }
    )
    await store.upsert_devices([pinned])
    await store.upsert_devices([Device(serial=PHONE.serial, host="10.1.1.1", tags={"floor": "1"})])
    stored = await store.get_device(PHONE.serial)
    assert stored.tls_fingerprint == pinned.tls_fingerprint
    assert stored.ports.https == 8443
    assert stored.tags == {"room": "101", "floor": "1"}
    assert stored.host == "10.1.1.1"
    assert stored.first_seen == datetime(2026, 1, 1, tzinfo=UTC)


async def test_dry_run_reports_and_writes_nothing(store: InventoryStore) -> None:
    report = await store.upsert_devices([PHONE, CAMERA], dry_run=True)
    assert report.inserted == 2
    assert await store.count_devices() == 0


async def test_devices_without_mac_may_be_many_but_a_mac_is_unique(store: InventoryStore) -> None:
    await store.upsert_devices([ANALOG_1, ANALOG_2])
    assert await store.count_devices() == 2
    async with store.engine.begin() as conn:
        with pytest.raises(sa.exc.IntegrityError):
            await conn.execute(
                sa.text(
                    "INSERT INTO devices (serial, mac, tags, updated_at) "
                    "VALUES ('X1', NULL, '{}', CURRENT_TIMESTAMP), "
                    "('X2', '0004f2000009', '{}', CURRENT_TIMESTAMP), "
                    "('X3', '0004f2000009', '{}', CURRENT_TIMESTAMP)"
                )
            )


async def test_remove_deletes_only_that_device(store: InventoryStore) -> None:
    await store.upsert_devices([PHONE, CAMERA])
    removed = await store.remove_device("00:04:f2:aa:bb:01")
    assert removed.serial == PHONE.serial
    assert [d.serial for d in await store.list_devices()] == [CAMERA.serial]


async def test_timestamps_come_back_timezone_aware(store: InventoryStore) -> None:
    seen = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    await store.upsert_devices([PHONE.model_copy(update={"last_seen": seen})])
    stored = await store.get_device(PHONE.serial)
    assert stored.last_seen == seen
    assert stored.last_seen is not None
    assert stored.last_seen.tzinfo is not None


async def test_migrations_are_idempotent_and_match_the_schema(db_target: DatabaseTarget) -> None:
    engine = create_engine(db_target)
    try:
        before, head = await upgrade(engine, db_target.schema)
        assert before is None
        again_before, again_head = await upgrade(engine, db_target.schema)
        assert again_before == again_head == head

        def diff(conn: sa.Connection) -> list[object]:
            return list(compare_metadata(MigrationContext.configure(conn), metadata))

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()


def test_head_constant_matches_the_migration_scripts() -> None:
    assert script_head() == HEAD


async def test_bulk_upsert_keeps_only_what_it_was_told_to_keep(store: InventoryStore) -> None:
    async with store.bulk_upsert() as bulk:
        await bulk.add([PHONE], distinct=True)
        await bulk.add([CAMERA], distinct=True)
    assert await store.count_devices() == 0  # not kept: rolled back
    async with store.bulk_upsert() as bulk:
        await bulk.add([PHONE, ANALOG_1], distinct=True)
        moved = PHONE.model_copy(update={"site": "branch"})
        conflicts = await bulk.add([moved, ANALOG_2])  # not distinct: looked up, updated
        bulk.keep()
    assert conflicts == []
    assert (bulk.report.inserted, bulk.report.updated) == (3, 1)
    assert (await store.get_device(PHONE.serial)).site == "branch"


async def test_a_broken_distinct_promise_is_refused_never_merged(store: InventoryStore) -> None:
    """Into an empty store a `distinct` batch is not looked up; a repeat hits the constraint."""
    twin = Device(serial=PHONE.serial, mac="0004f2ffff01")
    async with store.bulk_upsert() as bulk:
        await bulk.add([PHONE], distinct=True)
        with pytest.raises(sa.exc.IntegrityError):
            await bulk.add([twin], distinct=True)
    assert await store.count_devices() == 0
