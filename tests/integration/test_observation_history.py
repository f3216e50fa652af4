"""Each device's observation history on SQLite and PostgreSQL: every recorded observation is
appended, read back newest first a page at a time, and only the newest `keep` are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from inventory.database import DatabaseTarget, _alembic_config, create_engine
from inventory.models import Device, License, LicenseRead, LicenseState
from inventory.observation_history import prune_step
from inventory.observation_store import DeviceObservation, ObservationStore
from inventory.schema import device_status, devices, licenses, observation_history
from inventory.store import InventoryStore, device_to_row

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
PHONE = Device(serial="0004F2AABB01", mac="0004f2aabb01", model="VVX 450", site="hq")
CAMERA = Device(serial="8L200353429AFC", mac="64167f000002", model="Studio X50", site="hq")
NOT_READ = LicenseRead(
    ok=False, call="GET /api/v1/mgmt/license/info", detail="HTTP 404", modeled=True
)


def night(serial: str, n: int, *, state: LicenseState = LicenseState.ACTIVE) -> DeviceObservation:
    """The observation of night `n`'s scan: licenses read, expiring a year on."""
    at = T0 + timedelta(days=n)
    base = License(
        serial=serial, feature="base", state=state, expires_at=at + timedelta(days=365),
        source="poly-uc", observed_at=at,
    )  # fmt: skip
    return DeviceObservation(
        serial=serial,
        observed_at=at,
        reachable=True,
        driver="poly-uc",
        licenses=[base],
        license_read=LicenseRead(ok=True, call="GET /api/v1/mgmt/license/info", detail="1 read"),
    )


def silent(serial: str, n: int) -> DeviceObservation:
    return DeviceObservation(
        serial=serial,
        observed_at=T0 + timedelta(days=n),
        reachable=False,
        error_kind="timeout",
        error="no answer within 5 s",
    )


async def test_every_scan_is_appended_and_read_back_newest_first(store: InventoryStore) -> None:
    await store.upsert_devices([PHONE, CAMERA])
    observations = ObservationStore(store.engine)
    await observations.record([night(PHONE.serial, 1), night(CAMERA.serial, 1)])
    await observations.record([silent(PHONE.serial, 2)])
    unread = DeviceObservation(
        serial=PHONE.serial, observed_at=T0 + timedelta(days=3), reachable=True,
        driver="poly-uc", license_read=NOT_READ,
    )  # fmt: skip
    await observations.record([unread])

    page = await observations.history(PHONE.serial, limit=10)
    assert page.total == 3
    assert [e.observed_at for e in page.entries] == [T0 + timedelta(days=d) for d in (3, 2, 1)]
    newest, middle, oldest = page.entries
    assert (newest.reachable, newest.licenses, newest.license_read) == (True, None, NOT_READ)
    assert (middle.reachable, middle.error_kind, middle.error) == (
        False,
        "timeout",
        "no answer within 5 s",
    )
    assert middle.licenses is None
    assert oldest.licenses is not None
    [base] = oldest.licenses
    assert (base.feature, base.state) == ("base", LicenseState.ACTIVE)
    assert base.expires_at == T0 + timedelta(days=366)
    # the latest status is still the latest only; the camera's history is its own
    assert (await observations.statuses([PHONE.serial]))[
        PHONE.serial
    ].observed_at == newest.observed_at
    assert (await observations.history(CAMERA.serial, limit=10)).total == 1


async def test_pages_cover_the_history_once_in_order(store: InventoryStore) -> None:
    await store.upsert_devices([PHONE])
    observations = ObservationStore(store.engine)
    for n in range(7):
        await observations.record([night(PHONE.serial, n)])
    seen = []
    for offset in range(0, 9, 3):
        page = await observations.history(PHONE.serial, limit=3, offset=offset)
        assert page.total == 7
        seen += [e.observed_at for e in page.entries]
    assert seen == [T0 + timedelta(days=n) for n in reversed(range(7))]


async def test_only_the_newest_keep_are_kept_per_device(store: InventoryStore) -> None:
    await store.upsert_devices([PHONE, CAMERA])
    observations = ObservationStore(store.engine, keep=3)
    for n in range(6):
        batch = [
            night(PHONE.serial, n, state=LicenseState.EXPIRED if n == 5 else LicenseState.ACTIVE)
        ]
        if n < 2:
            batch.append(night(CAMERA.serial, n))
        await observations.record(batch)
    page = await observations.history(PHONE.serial, limit=50)
    assert [e.observed_at for e in page.entries] == [T0 + timedelta(days=n) for n in (5, 4, 3)]
    assert page.total == 3
    assert page.entries[0].licenses is not None
    assert page.entries[0].licenses[0].state is LicenseState.EXPIRED
    assert (await observations.history(CAMERA.serial, limit=50)).total == 2  # below keep
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(sa.select(sa.func.count()).select_from(observation_history))
        ).scalar()
    assert rows == 5  # nothing older is left behind


async def test_a_device_is_shown_its_newest_keep_and_pruned_every_few_scans(
    store: InventoryStore,
) -> None:
    """With keep=10 a device's oldest rows go two at a time (prune_step), yet a reader always
    sees exactly the newest 10, however its pages are cut."""
    await store.upsert_devices([PHONE])
    observations = ObservationStore(store.engine, keep=10)
    assert prune_step(10) == 2
    stored = []
    for n in range(25):
        await observations.record([night(PHONE.serial, n)])
        async with store.engine.connect() as conn:
            count = sa.select(sa.func.count()).select_from(observation_history)
            stored.append((await conn.execute(count)).scalar_one())
        page = await observations.history(PHONE.serial, limit=50)
        assert [e.observed_at for e in page.entries] == [
            T0 + timedelta(days=d) for d in range(n, max(-1, n - 10), -1)
        ]
        assert page.total == min(n + 1, 10)
    assert max(stored) == 11  # never more than keep + step - 1
    assert 10 in stored[10:]  # and pruned back to keep
    tail = await observations.history(PHONE.serial, limit=5, offset=8)
    assert [e.observed_at for e in tail.entries] == [T0 + timedelta(days=d) for d in (16, 15)]
    assert (await observations.history(PHONE.serial, limit=5, offset=10)).entries == []


async def test_removing_a_device_removes_its_history(store: InventoryStore) -> None:
    await store.upsert_devices([PHONE, CAMERA])
    observations = ObservationStore(store.engine)
    await observations.record([night(PHONE.serial, 1), night(CAMERA.serial, 1)])
    await store.remove_device(PHONE.serial)
    await store.upsert_devices([PHONE])  # the same serial again: a new device, no past
    assert (await observations.history(PHONE.serial, limit=5)).total == 0
    assert (await observations.history(CAMERA.serial, limit=5)).total == 1


async def test_keeping_nothing_is_refused(store: InventoryStore) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ObservationStore(store.engine, keep=0)


def _migrate_to(connection: sa.Connection, revision: str) -> None:
    from alembic import command

    command.upgrade(_alembic_config(connection), revision)


async def test_the_upgrade_starts_each_history_with_the_latest_observation(
    db_target: DatabaseTarget,
) -> None:
    """A store scanned before revision 0009 shows that scan as the first history entry."""
    engine = create_engine(db_target)
    seen = T0 + timedelta(days=1)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_migrate_to, "0008")
        async with engine.begin() as conn:  # as 0008's store wrote them
            for device in (PHONE, CAMERA):
                await conn.execute(
                    devices.insert().values(**device_to_row(device), updated_at=seen)
                )
            blank = {c.name: None for c in device_status.columns}
            await conn.execute(
                device_status.insert(),
                [
                    {**blank, "serial": PHONE.serial, "observed_at": seen, "reachable": True,
                     "driver": "poly-uc", "license_read_ok": True},
                    {**blank, "serial": CAMERA.serial, "observed_at": seen, "reachable": False,
                     "error_kind": "timeout", "error": "no answer"},
                ],
            )  # fmt: skip
            await conn.execute(
                licenses.insert(),
                [
                    {"serial": PHONE.serial, "feature": "base", "state": "expired",
                     "expires_at": T0, "source": "poly-uc", "observed_at": seen},
                    {"serial": CAMERA.serial, "feature": "video", "state": "active",
                     "expires_at": None, "source": "poly-video", "observed_at": T0},
                ],
            )  # fmt: skip
    finally:
        await engine.dispose()
    async with await InventoryStore.open(db_target) as store:  # upgrades to HEAD
        observations = ObservationStore(store.engine)
        [phone] = (await observations.history(PHONE.serial, limit=5)).entries
        assert (phone.observed_at, phone.reachable) == (seen, True)
        assert phone.licenses is not None
        assert [(f.feature, f.state, f.expires_at) for f in phone.licenses] == [
            ("base", LicenseState.EXPIRED, T0)
        ]
        [camera] = (await observations.history(CAMERA.serial, limit=5)).entries
        assert (camera.reachable, camera.error, camera.licenses) == (False, "no answer", None)
        await observations.record([night(PHONE.serial, 2)])
        page = await observations.history(PHONE.serial, limit=5)
        assert [e.observed_at for e in page.entries] == [T0 + timedelta(days=2), seen]
