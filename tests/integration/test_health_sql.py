"""Health status decided by the store (filter, count, sort and page by status; the overview's
counts) is, device for device, what `classify` says with every license loaded: on both
backends, for a fleet with every case classification tells apart, under several policies and
at several moments (so expiries and staleness cross their limits), at every paging boundary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from controller.health import (
    BY_RANK,
    STATUS_ORDER,
    DeviceHealth,
    Health,
    HealthPolicy,
    classify,
)
from controller.usecases.devices import Order, list_devices
from controller.usecases.health import status_rules
from device_drivers.names import DriverName
from inventory.device_queries import DeviceFilter, DeviceSort
from inventory.fleet_summary import (
    ExpiringWindow,
    expiring_licenses,
    status_by_group,
    unreadable_devices,
)
from inventory.health_sql import count_of_rank
from inventory.models import Device, License, LicenseRead, LicenseState
from inventory.observation_store import DeviceObservation, ObservationStore
from inventory.store import InventoryStore

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
READ_OK = LicenseRead(ok=True, call="GET /api/v1/mgmt/license/info", detail="2 features")
UNREAD = LicenseRead(ok=False, call="GET /api/v1/mgmt/license/info", detail="HTTP 404")
ACTIVE, EXPIRED = LicenseState.ACTIVE, LicenseState.EXPIRED
DEACTIVATED, MISSING, UNKNOWN = LicenseState.DEACTIVATED, LicenseState.MISSING, LicenseState.UNKNOWN


def declared(model: str | None) -> str | None:
    """A policy that declares one model, and devices without a model, to have no licenses."""
    return "declared" if model in ("CCX 400", None) else None


POLICIES = {
    "default": HealthPolicy(warn_days=30, max_age=timedelta(hours=26)),
    "strict": HealthPolicy(
        warn_days=10,
        max_age=timedelta(hours=2),
        required_features=frozenset({"base", "video"}),
        no_licensed_features=declared,
    ),
}
# Moments: the fleet as recorded, when the 10- and 30-day expiries have passed, and when every
# observation is stale.
MOMENTS = (T0, T0 + 15 * DAY, T0 + 3 * DAY, T0 + 30 * DAY)

Lic = tuple[str, LicenseState, timedelta | None]


def seen(
    serial: str,
    *lics: Lic,
    ago: timedelta = HOUR,
    read: LicenseRead | None = READ_OK,
    lic_ago: timedelta | None = None,
    keep: bool = False,
    **fields: object,
) -> DeviceObservation:
    """A scan that reached `serial` `ago` before T0 (licenses observed `lic_ago` before T0);
    `keep`: licenses not read this time (the stored ones stay)."""
    observed = T0 - ago
    licenses = [
        License(
            serial=serial,
            feature=feature,
            state=state,
            expires_at=None if expires is None else T0 + expires,
            source="test",
            observed_at=T0 - (lic_ago or ago),
        )
        for feature, state, expires in lics
    ]
    return DeviceObservation(
        serial=serial,
        observed_at=observed,
        reachable=True,
        licenses=None if keep else licenses,
        license_read=read,
        **fields,  # type: ignore[arg-type]
    )


def failed(
    serial: str, ago: timedelta = HOUR, read: LicenseRead | None = None
) -> DeviceObservation:
    return DeviceObservation(
        serial=serial, observed_at=T0 - ago, reachable=False, error_kind="timeout", error="none",
        license_read=read,
    )  # fmt: skip


YEAR = 365 * DAY
BOTH: tuple[Lic, Lic] = (("base", ACTIVE, YEAR), ("video", ACTIVE, 2 * YEAR))


@dataclass(frozen=True)
class Case:
    """One device: its record and the observations recorded, the last being its status."""

    device: Device
    observations: tuple[DeviceObservation, ...] = ()


def phone(serial: str, *observations: DeviceObservation, **fields: object) -> Case:
    group = "video" if len(serial) % 3 == 0 else "soundpoint-ip" if len(serial) % 3 == 1 else None
    record: dict[str, object] = {"model": "VVX 450", "host": "10.0.0.1", "site": "lab"}
    record.update(product_group=group, **fields)
    return Case(Device.model_validate({"serial": serial, **record}), observations)


CASES = [
    phone("CLEAN", seen("CLEAN", *BOTH)),
    phone("CLEANNOREAD", seen("CLEANNOREAD", ("base", ACTIVE, None), read=None)),
    phone("NOFEATURES", seen("NOFEATURES")),
    phone("EDGEAGE", seen("EDGEAGE", *BOTH, ago=timedelta(hours=26))),
    phone("STALE", seen("STALE", *BOTH, ago=timedelta(hours=26, seconds=1))),
    phone("EDGEWARN", seen("EDGEWARN", ("base", ACTIVE, 30 * DAY), ("video", ACTIVE, YEAR))),
    phone("EXPIRING", seen("EXPIRING", ("base", ACTIVE, 10 * DAY), ("video", ACTIVE, YEAR))),
    phone("EXPIRING20", seen("EXPIRING20", ("base", ACTIVE, 20 * DAY))),
    phone("EXPIRED", seen("EXPIRED", ("base", EXPIRED, -3 * DAY), ("video", ACTIVE, YEAR))),
    phone("EXPIREDNODATE", seen("EXPIREDNODATE", ("base", EXPIRED, None))),
    phone("PASTDUE", seen("PASTDUE", ("base", ACTIVE, -2 * HOUR))),
    phone("DUENOW", seen("DUENOW", ("base", ACTIVE, timedelta(0)))),
    phone("DEACT", seen("DEACT", ("base", DEACTIVATED, YEAR), ("video", ACTIVE, YEAR))),
    phone("MISSINGLIC", seen("MISSINGLIC", ("base", MISSING, None))),
    phone("UNKNOWNSTATE", seen("UNKNOWNSTATE", ("base", UNKNOWN, None), ("video", ACTIVE, YEAR))),
    phone("NOEXPIRY", seen("NOEXPIRY", ("base", ACTIVE, None), ("video", ACTIVE, None))),
    phone("UNREAD", seen("UNREAD", read=UNREAD)),
    phone("UNREADDECL", seen("UNREADDECL", read=UNREAD), model="CCX 400"),
    phone("UNREADNOMODEL", seen("UNREADNOMODEL", read=UNREAD), model=None),
    phone(
        "UNREADKNOWN",
        seen("UNREADKNOWN", *BOTH, ago=DAY),
        seen("UNREADKNOWN", read=UNREAD, keep=True),
    ),
    phone("UNREADSTALE", seen("UNREADSTALE", read=UNREAD, ago=2 * DAY)),
    phone(
        "SWAPPED",
        seen("SWAPPED", *BOTH),
        seen("SWAPPED", identity_mismatch="serial X != SWAPPED", keep=True),
    ),
    phone(
        "SWAPPEDOLD",
        seen("SWAPPEDOLD", *BOTH, ago=3 * DAY),
        seen("SWAPPEDOLD", identity_mismatch="serial X", keep=True),
    ),
    phone("SWAPPEDNEW", seen("SWAPPEDNEW", identity_mismatch="mac 0004f2000001 != ?")),
    phone("SWAPPEDEMPTY", seen("SWAPPEDEMPTY", *BOTH, identity_mismatch="")),
    phone("FAILED", seen("FAILED", *BOTH, ago=5 * HOUR), failed("FAILED")),
    phone("FAILEDOLD", seen("FAILEDOLD", *BOTH, ago=3 * DAY), failed("FAILEDOLD")),
    phone(
        "FAILEDLICOLD",
        seen("FAILEDLICOLD", *BOTH, ago=HOUR, lic_ago=3 * DAY),
        failed("FAILEDLICOLD"),
    ),
    phone("FAILEDNEVER", failed("FAILEDNEVER")),
    phone("FAILEDSEEN", failed("FAILEDSEEN"), last_seen=T0 - 5 * HOUR),
    phone("FAILEDSEENOLD", failed("FAILEDSEENOLD"), last_seen=T0 - 5 * DAY),
    phone("FAILEDSEENEDGE", failed("FAILEDSEENEDGE"), last_seen=T0 - timedelta(hours=26)),
    phone(
        "FAILEDLICEDGE",
        seen("FAILEDLICEDGE", *BOTH, ago=timedelta(hours=26)),
        failed("FAILEDLICEDGE"),
    ),
    phone("FAILEDUNREAD", failed("FAILEDUNREAD", read=UNREAD)),
    phone("FAILEDUNREADSEEN", failed("FAILEDUNREADSEEN", read=UNREAD), last_seen=T0 - 5 * HOUR),
    phone("ERRORED", seen("ERRORED", *BOTH, error_kind="http", error="HTTP 500")),
    phone(
        "ERRMISMATCH", seen("ERRMISMATCH", *BOTH, error="HTTP 500", identity_mismatch="serial Y")
    ),
    phone("ERREXPIRED", seen("ERREXPIRED", ("base", EXPIRED, -DAY)), failed("ERREXPIRED")),
    phone("REQPART", seen("REQPART", ("base", ACTIVE, YEAR))),
    phone("REQFAILED", failed("REQFAILED", ago=2 * HOUR)),
    phone("OTHERSITE", seen("OTHERSITE", *BOTH), site="hq"),
    phone("OTHERSITEBAD", seen("OTHERSITEBAD", ("base", EXPIRED, -DAY)), site="hq"),
    phone("NEVER"),
    phone("NEVERNOMODEL", model=None),
    phone("NEVERIMPORTED", last_seen=T0 - HOUR, site="hq"),
    phone("NEVERDRIVEN", model="SoundStation 2", driver=DriverName.POLY_UC.value),
    phone("ANALOG", model="SoundStation 2", host=None),
    phone("ANALOGDRIVER", seen("ANALOGDRIVER", ("base", EXPIRED, -DAY)), driver="analog"),
    phone("ANALOGSEEN", seen("ANALOGSEEN", *BOTH, ago=4 * DAY), driver="analog"),
    phone("ANALOGFAILED", failed("ANALOGFAILED"), driver="analog", model=None),
    phone(
        "ANALOGEXPIRING", seen("ANALOGEXPIRING", ("base", ACTIVE, 10 * DAY)), model="SoundStation 2"
    ),
    phone(
        "ANALOGUNKNOWN",
        seen("ANALOGUNKNOWN", ("base", UNKNOWN, None), read=UNREAD),
        model="SoundStation 2",
    ),
]


async def fill(store: InventoryStore) -> None:
    await store.upsert_devices([case.device for case in CASES])
    observations = ObservationStore(store.engine)
    for case in CASES:
        for observation in case.observations:
            await observations.record([observation])


async def reference(
    store: InventoryStore, now: datetime, policy: HealthPolicy
) -> dict[str, DeviceHealth]:
    """Every device classified in Python from its full stored status: serial -> verdict."""
    statuses = await ObservationStore(store.engine).statuses()
    return {
        device.serial: classify(device, statuses.get(device.serial), now, policy)
        for device in await store.list_devices()
    }


async def listed(
    store: InventoryStore,
    now: datetime,
    policy: HealthPolicy,
    *,
    status: Health | None = None,
    sort: Order = DeviceSort.SERIAL,
    descending: bool = False,
    limit: int = 1000,
    offset: int = 0,
    matching: DeviceFilter | None = None,
) -> tuple[int, list[tuple[str, Health]]]:
    listing = await list_devices(
        store, matching or DeviceFilter(), status=status, sort=sort, descending=descending,
        limit=limit, offset=offset, now=now, policy=policy,
    )  # fmt: skip
    return listing.total, [(device.serial, verdict.status) for device, _, verdict in listing.rows]


def in_status_order(
    verdicts: dict[str, DeviceHealth], descending: bool
) -> list[tuple[str, Health]]:
    key: Callable[[str], tuple[int, str]] = lambda s: (verdicts[s].status.rank, s)  # noqa: E731
    return [(s, verdicts[s].status) for s in sorted(verdicts, key=key, reverse=descending)]


@pytest.mark.parametrize("policy_name", sorted(POLICIES))
async def test_the_stores_statuses_are_those_of_classify(
    store: InventoryStore, policy_name: str
) -> None:
    await fill(store)
    policy = POLICIES[policy_name]
    seen_statuses: set[Health] = set()
    for now in MOMENTS:
        verdicts = await reference(store, now, policy)
        counts = Counter(v.status for v in verdicts.values())
        seen_statuses |= set(counts)
        rules = await status_rules(store.engine, now, policy)
        for health in STATUS_ORDER:
            assert (
                await count_of_rank(store.engine, rules, DeviceFilter(), health.rank)
                == (counts[health])
            ), (now, health)
            expected = sorted(s for s, v in verdicts.items() if v.status is health)
            total, rows = await listed(store, now, policy, status=health)
            assert (total, rows) == (len(expected), [(s, health) for s in expected]), (now, health)
            _, backwards = await listed(store, now, policy, status=health, descending=True)
            assert [s for s, _ in backwards] == expected[::-1]
        for descending in (False, True):
            everything = in_status_order(verdicts, descending)
            total, rows = await listed(store, now, policy, sort="status", descending=descending)
            assert (total, rows) == (len(verdicts), everything), (now, descending)
    assert seen_statuses == set(Health)  # the fleet exercises every status


@pytest.mark.parametrize("descending", [False, True])
async def test_status_order_pages_meet_at_every_boundary(
    store: InventoryStore, descending: bool
) -> None:
    await fill(store)
    policy = POLICIES["strict"]
    now = T0 + 3 * DAY
    everything = in_status_order(await reference(store, now, policy), descending)
    for limit in (1, 4, 7):
        for offset in range(0, len(everything) + 2, 3):
            total, rows = await listed(
                store, now, policy, sort="status", descending=descending, limit=limit,
                offset=offset,
            )  # fmt: skip
            assert total == len(everything)
            assert rows == everything[offset : offset + limit], (limit, offset)


async def test_one_status_pages_meet_and_other_orders_and_filters_hold(
    store: InventoryStore,
) -> None:
    await fill(store)
    policy = POLICIES["default"]
    now = T0
    verdicts = await reference(store, now, policy)
    for health in STATUS_ORDER:
        expected = sorted(s for s, v in verdicts.items() if v.status is health)
        for offset in range(len(expected) + 2):
            total, rows = await listed(store, now, policy, status=health, limit=2, offset=offset)
            assert total == len(expected)
            assert [s for s, _ in rows] == expected[offset : offset + 2]
        for sort in (DeviceSort.SITE, DeviceSort.MODEL, DeviceSort.EXPIRES_AT):
            for descending in (False, True):
                _, every = await listed(store, now, policy, sort=sort, descending=descending)
                _, rows = await listed(
                    store, now, policy, status=health, sort=sort, descending=descending
                )
                assert rows == [(s, h) for s, h in every if h is health], (sort, descending)
        hq = sorted(s for s in expected if verdicts[s].site == "hq")
        total, rows = await listed(
            store, now, policy, status=health, matching=DeviceFilter(site="hq")
        )
        assert (total, [s for s, _ in rows]) == (len(hq), hq)


@pytest.mark.parametrize("policy_name", sorted(POLICIES))
async def test_the_overview_counts_are_those_of_classify(
    store: InventoryStore, policy_name: str
) -> None:
    await fill(store)
    policy = POLICIES[policy_name]
    groups = {c.device.serial: c.device.product_group for c in CASES}
    for now in MOMENTS:
        for site in (None, "lab"):
            verdicts = {
                s: v for s, v in (await reference(store, now, policy)).items()
                if site is None or v.site == site
            }  # fmt: skip
            matching = DeviceFilter(site=site)
            rules = await status_rules(store.engine, now, policy)
            by_group, unreadable_total = await status_by_group(store.engine, rules, matching)
            expected: dict[object, Counter[Health]] = {}
            for serial, verdict in verdicts.items():
                expected.setdefault(groups[serial], Counter())[verdict.status] += 1
            found = {
                group: Counter({BY_RANK[r]: n for r, n in counts.items() if n})
                for group, counts in by_group.items()
            }
            assert found == expected, (now, site)
            unreadable = sorted(
                s for s, v in verdicts.items()
                if v.license_read is not None and not v.license_read.ok
                and v.status is not Health.OK
            )  # fmt: skip
            assert unreadable_total == len(unreadable)
            shown = await unreadable_devices(store.engine, rules, matching, 3)
            assert [(d.serial, BY_RANK[d.rank]) for d in shown] == [
                (s, verdicts[s].status) for s in unreadable[:3]
            ]
            assert all(d.read == verdicts[d.serial].license_read for d in shown)


async def test_the_overview_counts_active_licenses_by_expiry_window(store: InventoryStore) -> None:
    await fill(store)
    stored = await ObservationStore(store.engine).statuses()
    for now in MOMENTS:
        for site in (None, "hq"):
            windows = await expiring_licenses(store.engine, now, (10, 30, 400), site)
            expected = []
            for days in (10, 30, 400):
                found = [
                    lic.serial
                    for status in stored.values()
                    for lic in status.licenses
                    if lic.state is ACTIVE
                    and lic.expires_at is not None
                    and now < lic.expires_at <= now + timedelta(days=days)
                    and (site is None or lic.serial in {"OTHERSITE", "OTHERSITEBAD"})
                ]
                expected.append(ExpiringWindow(days, len(found), len(set(found))))
            assert windows == expected, (now, site)
