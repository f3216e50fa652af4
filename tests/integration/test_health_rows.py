"""The health check's store fast path: on both backends, the devices the store reports as read
cleanly with nothing notable get exactly the verdicts that classifying every device in Python
(with every license loaded) gives, on a fleet with every kind of device a nightly check meets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.health import FleetHealth, HealthPolicy
from controller.usecases.health import check_fleet
from inventory.health_rows import CleanRead, devices_with_status, licenses_by_serial
from inventory.models import Device, License, LicenseRead, LicenseState
from inventory.observation_store import DeviceObservation, ObservationStore
from inventory.store import InventoryStore

NOW = datetime.now(UTC).replace(microsecond=0)
POLICY = HealthPolicy(warn_days=30, max_age=timedelta(hours=26))
READ_OK = LicenseRead(ok=True, call="GET /api/v1/mgmt/license/info", detail="2 features")
UNREAD = LicenseRead(ok=False, call="GET /api/v1/mgmt/license/info", detail="HTTP 404")


def lic(serial: str, feature: str, state: LicenseState, expires: timedelta | None) -> License:
    return License(
        serial=serial,
        feature=feature,
        state=state,
        expires_at=None if expires is None else NOW + expires,
        source="test",
        observed_at=NOW - timedelta(hours=1),
    )


def seen(
    serial: str,
    *lics: tuple[str, LicenseState, timedelta | None],
    ago: timedelta = timedelta(hours=1),
    read: LicenseRead | None = READ_OK,
    **fields: object,
) -> DeviceObservation:
    return DeviceObservation(
        serial=serial,
        observed_at=NOW - ago,
        reachable=True,
        licenses=[lic(serial, *one) for one in lics],
        license_read=read,
        **fields,  # type: ignore[arg-type]
    )


ACTIVE, EXPIRED = LicenseState.ACTIVE, LicenseState.EXPIRED
YEAR = timedelta(days=365)
# serial -> the observations recorded, in order (the last is the latest status)
FLEET: dict[str, list[DeviceObservation]] = {
    "CLEAN1": [seen("CLEAN1", ("base", ACTIVE, YEAR), ("video", ACTIVE, YEAR * 2))],
    "CLEANNOREAD": [seen("CLEANNOREAD", ("base", ACTIVE, None), read=None)],
    "NOFEATURES": [seen("NOFEATURES")],
    "HOURSLEFT": [seen("HOURSLEFT", ("base", ACTIVE, YEAR))],
    "EDGEAGE": [seen("EDGEAGE", ("base", ACTIVE, YEAR), ago=POLICY.max_age)],
    "STALE": [seen("STALE", ("base", ACTIVE, YEAR), ago=POLICY.max_age + timedelta(seconds=1))],
    "EDGEWARN": [seen("EDGEWARN", ("base", ACTIVE, timedelta(days=30)))],
    "EXPIRING": [seen("EXPIRING", ("base", ACTIVE, timedelta(days=10)), ("video", ACTIVE, YEAR))],
    "EXPIRED": [seen("EXPIRED", ("base", EXPIRED, -timedelta(days=3)))],
    "PASTDUE": [seen("PASTDUE", ("base", ACTIVE, -timedelta(hours=2)))],
    "UNKNOWNSTATE": [seen("UNKNOWNSTATE", ("base", LicenseState.UNKNOWN, None))],
    "UNREAD": [seen("UNREAD", read=UNREAD)],
    "SWAPPED": [seen("SWAPPED", ("base", ACTIVE, YEAR), identity_mismatch="serial X1 != SWAPPED")],
    "FAILED": [
        seen("FAILED", ("base", ACTIVE, YEAR), ago=timedelta(hours=5)),
        DeviceObservation(
            serial="FAILED", observed_at=NOW, reachable=False, error_kind="timeout", error="no"
        ),
    ],
    "ERRORED": [seen("ERRORED", ("base", ACTIVE, YEAR), error_kind="http", error="HTTP 500")],
}
# A clean device whose next expiry is hours away: its reason counts hours, not days.
FLEET["HOURSLEFT"] = [seen("HOURSLEFT", ("base", ACTIVE, timedelta(days=31, hours=-20)))]
CLEAN = {"CLEAN1", "CLEANNOREAD", "NOFEATURES", "HOURSLEFT", "EDGEAGE", "ANALOGSEEN"}


async def fill(store: InventoryStore) -> None:
    devices = [Device(serial=s, model="VVX 450", host="10.0.0.1", site="lab") for s in FLEET]
    devices += [
        Device(serial="NEVER", model="VVX 450", host="10.0.0.2", site="lab"),
        Device(serial="ANALOG", model="SoundStation 2", site="lab"),
        Device(serial="ANALOGSEEN", driver="analog", site="lab"),
        Device(serial="OTHERSITE", model="VVX 450", host="10.0.0.3", site="hq"),
    ]
    await store.upsert_devices(devices)
    observations = ObservationStore(store.engine)
    for recorded in FLEET.values():
        for observation in recorded:
            await observations.record([observation])
    await observations.record([seen("ANALOGSEEN", ("base", ACTIVE, YEAR))])
    await observations.record([seen("OTHERSITE", ("base", ACTIVE, YEAR))])


def verdicts(fleet: FleetHealth) -> dict[str, tuple[object, ...]]:
    return {d.serial: (d.status, d.reason, d.last_observed, d.license_read) for d in fleet.devices}


async def test_the_stores_clean_reads_get_the_verdicts_of_full_classification(
    store: InventoryStore,
) -> None:
    await fill(store)
    fast = await check_fleet(store.engine, None, NOW, POLICY)
    full = await check_fleet(store.engine, None, NOW, POLICY, all_licenses=True)

    assert verdicts(fast) == verdicts(full)
    assert fast.counts == full.counts
    # The latest scan failed: the verdict looks back to when the device was last read (its
    # licenses' observation, an hour ago, is the newest), which the store reads for it apart.
    last = {d.serial: d.last_observed for d in fast.devices}
    assert last["FAILED"] == NOW - timedelta(hours=1)
    statuses = {d.serial: d.status.value for d in fast.devices}
    assert statuses == {
        "ANALOG": "OK", "ANALOGSEEN": "OK", "CLEAN1": "OK", "CLEANNOREAD": "OK",
        "EDGEAGE": "OK", "EDGEWARN": "WARNING", "ERRORED": "WARNING", "EXPIRED": "CRITICAL",
        "EXPIRING": "WARNING", "FAILED": "WARNING", "HOURSLEFT": "OK", "NEVER": "UNKNOWN",
        "NOFEATURES": "OK", "OTHERSITE": "OK", "PASTDUE": "CRITICAL", "STALE": "WARNING",
        "SWAPPED": "CRITICAL", "UNKNOWNSTATE": "WARNING", "UNREAD": "UNKNOWN",
    }  # fmt: skip


async def test_the_store_names_as_clean_only_the_recent_clean_reads_with_nothing_notable(
    store: InventoryStore,
) -> None:
    await fill(store)
    notable_before = NOW + POLICY.warn
    licensed = await licenses_by_serial(store.engine, "lab", notable_before=notable_before)
    rows = devices_with_status(
        store.engine,
        "lab",
        licensed,
        summarized=True,
        clean_since=NOW - POLICY.max_age,
        notable_before=notable_before,
    )
    clean: dict[str, CleanRead] = {}
    others: list[str] = []
    async for batch in rows:
        for row in batch:
            if isinstance(row, CleanRead):
                clean[row.serial] = row
            else:
                others.append(row[0].serial)

    assert set(clean) == CLEAN
    assert "OTHERSITE" not in others
    assert clean["CLEAN1"].total == 2
    assert clean["CLEAN1"].next_expiry == NOW + YEAR
    assert clean["CLEAN1"].license_read == READ_OK
    assert clean["CLEANNOREAD"].license_read is None
    assert clean["NOFEATURES"].total == 0
