"""Device health status decided by the store, so the API can filter, count, sort and page a
100,000-device store by status without classifying every device in Python.

`controller.health.classify` is the reference: this module states its status rules (not its
reasons) in SQL, parameterised by `now` and the policy (`StatusRules`); a test compares the two
device by device on both backends. As `polyfleet health`'s fast path does, the store first
picks the devices with something to weigh (candidates: an observation that did not read the
device cleanly, or is older than the staleness limit; an inactive license or one expiring
within the warning window; a required feature absent), each kind through an index, and weighs
only those: as a set (`scored`, for counts and the few CRITICAL or WARNING devices), or one by
one as a serial-ordered page is read (`of_rank`, for OK and UNKNOWN, which may be nearly every
device). A networked device never scanned is UNKNOWN (`unscanned`); every other device is OK.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from inventory.async_engine import AsyncEngine
from inventory.device_queries import DeviceFilter, DeviceSort, Narrow, counted_page, page_devices
from inventory.models import Device, LicenseState
from inventory.schema import LICENSE_INACTIVE, STATUS_PROBLEM, device_status, devices, licenses

RANK_OK, RANK_UNKNOWN, RANK_WARNING, RANK_CRITICAL = 0, 1, 2, 3
"""Severity for "worst of" and for sorting: CRITICAL > WARNING > UNKNOWN > OK."""
NOT_OK = frozenset({RANK_UNKNOWN, RANK_WARNING, RANK_CRITICAL})

_FIXED_CRITICAL = [
    s.value for s in (LicenseState.EXPIRED, LicenseState.DEACTIVATED, LicenseState.MISSING)
]


@dataclass(frozen=True, slots=True)
class StatusRules:
    """What a device's status depends on besides its rows: the time, the policy's thresholds,
    and the model names that Python resolves (catalog matching, policy patterns) beforehand."""

    now: datetime
    warn: timedelta
    max_age: timedelta
    required_features: frozenset[str]
    analog_driver: str
    """The driver of devices that are not networked by design."""
    not_networked_models: frozenset[str]
    """Model names (of devices without a driver) of non-networked product families."""
    no_license_models: frozenset[str]
    """Model names the policy declares to have no licensed features."""
    no_license_unmodelled: bool = False
    """Whether the policy declares that of a device without a model."""


def notable_license(before: datetime) -> sa.ColumnElement[bool]:
    """A license classification has something to say about: not active, or expiring before
    `before` (now + the warning window)."""
    return sa.or_(LICENSE_INACTIVE, licenses.c.expires_at <= before)


def clean_observation(since: datetime) -> sa.ColumnElement[bool]:
    """The latest observation read the device cleanly (reached, no error, identity confirmed,
    license state read or not recorded) at or after `since` (now - the staleness limit)."""
    return sa.and_(sa.not_(STATUS_PROBLEM), device_status.c.observed_at >= since)


def _not_networked(rules: StatusRules) -> sa.ColumnElement[bool]:
    """Analog by its driver, or without a driver by its model (`is_networked`); never NULL,
    nor is `_networked`, its complement, so either may be negated."""
    d = devices.c
    analog = sa.and_(d.driver.is_not(None), d.driver == rules.analog_driver)
    if not rules.not_networked_models:
        return analog
    models = sorted(rules.not_networked_models)
    return sa.or_(analog, sa.and_(d.driver.is_(None), d.model.is_not(None), d.model.in_(models)))


def _networked(rules: StatusRules) -> sa.ColumnElement[bool]:
    d = devices.c
    driven = sa.and_(d.driver.is_not(None), d.driver != rules.analog_driver)
    if not rules.not_networked_models:
        return sa.or_(d.driver.is_(None), driven)
    models = sorted(rules.not_networked_models)
    unknown_family = sa.or_(d.model.is_(None), d.model.not_in(models))
    return sa.or_(driven, sa.and_(d.driver.is_(None), unknown_family))


def unscanned(rules: StatusRules) -> sa.ColumnElement[bool]:
    """A networked device without a status row (never scanned): UNKNOWN. Tested per device."""
    scanned = sa.exists().where(device_status.c.serial == devices.c.serial)
    return sa.and_(_networked(rules), ~scanned)


def _candidates(rules: StatusRules, ranks: frozenset[int]) -> sa.CompoundSelect[Any]:
    """Serials of the devices with a status row that may have a status of `ranks`: a superset,
    each part one index range."""
    s, lic = device_status.c, licenses.c
    parts: list[sa.Select[Any]] = [sa.select(s.serial).where(STATUS_PROBLEM)]
    if RANK_WARNING in ranks:
        parts.append(sa.select(s.serial).where(s.observed_at < rules.now - rules.max_age))
    if ranks & {RANK_WARNING, RANK_CRITICAL}:
        notable_before = rules.now + rules.warn if RANK_WARNING in ranks else rules.now
        parts.append(sa.select(lic.serial).where(LICENSE_INACTIVE))
        parts.append(sa.select(lic.serial).where(lic.expires_at <= notable_before))
    if RANK_CRITICAL in ranks and rules.required_features:
        parts.append(
            sa.select(devices.c.serial).where(
                _networked(rules), _required_present(rules) < len(rules.required_features)
            )
        )
    return sa.union(*parts)


def _required_present(rules: StatusRules) -> sa.ScalarSelect[Any]:
    """How many of the required features a device has (one row per feature at most)."""
    query = sa.select(sa.func.count()).where(
        licenses.c.serial == devices.c.serial,
        licenses.c.feature.in_(sorted(rules.required_features)),
    )
    return query.scalar_subquery()


def _critical_license(rules: StatusRules) -> sa.ColumnElement[bool]:
    """A license that makes its device CRITICAL: expired, deactivated, missing, or past due."""
    lic = licenses.c
    active = lic.state == LicenseState.ACTIVE.value
    return sa.or_(lic.state.in_(_FIXED_CRITICAL), sa.and_(active, lic.expires_at <= rules.now))


def _warning_license(rules: StatusRules) -> sa.ColumnElement[bool]:
    """A license that makes its device WARNING at least: state unread, or due within the
    warning window (past due too: CRITICAL wins)."""
    lic = licenses.c
    active = lic.state == LicenseState.ACTIVE.value
    before = rules.now + rules.warn
    unknown = lic.state == LicenseState.UNKNOWN.value
    return sa.or_(unknown, sa.and_(active, lic.expires_at <= before))


@dataclass(frozen=True, slots=True)
class _Facts:
    """What classification weighs of a device's licenses (none NULL)."""

    known: sa.ColumnElement[bool]
    critical: sa.ColumnElement[bool]
    warning: sa.ColumnElement[bool]
    required: sa.ColumnElement[int]
    """How many of the required features it has."""


def _grouped_facts(rules: StatusRules, among: sa.Select[Any]) -> tuple[sa.Subquery, _Facts]:
    """The facts of the devices of `among`, in one pass over their licenses (a set of them)."""
    lic = licenses.c

    def flag(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
        return sa.func.max(sa.case((condition, 1), else_=0))

    required = lic.feature.in_(sorted(rules.required_features))
    grouped = (
        sa.select(
            lic.serial,
            flag(_critical_license(rules)).label("critical"),
            flag(_warning_license(rules)).label("warning"),
            sa.func.sum(sa.case((required, 1), else_=0)).label("required"),
        )
        .where(lic.serial.in_(among))
        .group_by(lic.serial)
        .subquery("license_facts")
    )
    f = grouped.c
    facts = _Facts(
        known=f.serial.is_not(None),
        critical=sa.func.coalesce(f.critical, 0) == 1,
        warning=sa.func.coalesce(f.warning, 0) == 1,
        required=sa.func.coalesce(f.required, 0),
    )
    return grouped, facts


def _correlated_facts(rules: StatusRules) -> _Facts:
    """The facts of the device of the enclosing query's row, looked up for that row alone."""

    def any_license(condition: sa.ColumnElement[bool]) -> sa.Exists:
        return sa.exists().where(licenses.c.serial == devices.c.serial, condition)

    return _Facts(
        known=any_license(sa.true()),
        critical=any_license(_critical_license(rules)),
        warning=any_license(_warning_license(rules)),
        required=_required_present(rules),
    )


@dataclass(frozen=True, slots=True)
class _Terms:
    rank: sa.ColumnElement[int]
    unreadable: sa.ColumnElement[bool]


def _terms(rules: StatusRules, facts: _Facts) -> _Terms:
    """`classify`'s status rule by rule, for a device with a status row or not networked
    (controller/health.py names the terms the same). No term is NULL where it is negated."""
    s, d = device_status.c, devices.c
    cut = rules.now - rules.max_age
    known, critical_license, warning_license = facts.known, facts.critical, facts.warning
    mismatch = sa.and_(s.identity_mismatch.is_not(None), s.identity_mismatch != "")
    failed = sa.or_(s.reachable.is_(False), sa.and_(s.error.is_not(None), sa.not_(mismatch)))
    unread = sa.and_(s.license_read_ok.is_(False), sa.not_(failed), sa.not_(mismatch))
    declared: sa.ColumnElement[bool] = sa.false()
    if rules.no_license_models:
        models = sorted(rules.no_license_models)
        declared = sa.and_(d.model.is_not(None), d.model.in_(models))
    if rules.no_license_unmodelled:
        declared = sa.or_(declared, d.model.is_(None))
    missing_required: sa.ColumnElement[bool] = sa.false()
    if rules.required_features:
        licenses_read = sa.or_(known, sa.not_(sa.or_(failed, mismatch, unread)))
        missing_required = sa.and_(licenses_read, facts.required < len(rules.required_features))
    # Failed or swapped, the last observation that read the device is the newest of its
    # licenses' and its last_seen; that weighs only where nothing worse is said: failed with
    # no license known (so last_seen alone).
    stale = sa.or_(
        sa.and_(failed, sa.not_(known), d.last_seen.is_not(None), d.last_seen < cut),
        sa.and_(sa.not_(sa.or_(failed, mismatch)), s.observed_at < cut),
    )
    not_networked = _not_networked(rules)
    rank = sa.case(
        (
            not_networked,
            sa.case(
                (s.serial.is_(None), RANK_OK),
                (critical_license, RANK_CRITICAL),
                (warning_license, RANK_WARNING),
                else_=RANK_OK,
            ),
        ),
        (sa.or_(mismatch, critical_license, missing_required), RANK_CRITICAL),
        (sa.or_(warning_license, sa.and_(failed, known), stale), RANK_WARNING),
        (
            sa.or_(sa.and_(unread, sa.not_(declared)), sa.and_(failed, sa.not_(known))),
            RANK_UNKNOWN,
        ),
        else_=RANK_OK,
    )
    # classify returns before recording the read of a device never reached with no licenses.
    never_reached = sa.and_(failed, sa.not_(known), d.last_seen.is_(None))
    unreadable = sa.and_(
        sa.not_(not_networked), s.license_read_ok.is_(False), sa.not_(never_reached)
    )
    return _Terms(rank, unreadable)


def scored(
    rules: StatusRules,
    matching: DeviceFilter,
    ranks: frozenset[int],
    *,
    unreadable_only: bool = False,
) -> sa.Subquery:
    """The matching devices with a status row (or not networked) whose status is one of
    `ranks` (not RANK_OK): serial, `rank` and `unreadable` (1 where the verdict carries a
    license read that failed; with `unreadable_only`, those devices alone)."""
    candidates = (
        sa.select(device_status.c.serial).where(
            STATUS_PROBLEM, device_status.c.license_read_ok.is_(False)
        )
        if unreadable_only
        else _candidates(rules, ranks)
    ).cte("candidates")
    facts_table, facts = _grouped_facts(rules, sa.select(candidates.c.serial))
    terms = _terms(rules, facts)
    not_networked = _not_networked(rules)
    joined = (
        devices.join(candidates, candidates.c.serial == devices.c.serial)
        .outerjoin(device_status, device_status.c.serial == devices.c.serial)
        .outerjoin(facts_table, facts_table.c.serial == devices.c.serial)
    )
    weighed = (
        sa.select(
            devices.c.serial,
            terms.rank.label("rank"),
            sa.case((terms.unreadable, 1), else_=0).label("unreadable"),
        )
        .select_from(joined)
        .where(matching.clause(), sa.or_(device_status.c.serial.is_not(None), not_networked))
        .subquery("weighed")
    )
    query = sa.select(weighed).where(weighed.c.rank.in_(sorted(ranks)))
    if unreadable_only:
        query = query.where(weighed.c.unreadable == 1)
    return query.subquery("scored")


def of_rank(rules: StatusRules, matching: DeviceFilter, rank: int) -> Narrow:
    """Narrows a query over `devices` to the devices of status `rank`. CRITICAL and WARNING:
    joined with those `scored` so (few). OK and UNKNOWN (which may be nearly all): tested
    device by device as the query goes, a candidate weighed on its own, so that a page in
    serial order reads not much more than the page."""
    if rank in (RANK_WARNING, RANK_CRITICAL):
        bad = scored(rules, matching, frozenset({rank}))
        return lambda query: query.join(bad, bad.c.serial == devices.c.serial)
    # A candidate, as `_candidates` picks them, tested on this row.
    st = device_status.c
    unclean = STATUS_PROBLEM
    if rank == RANK_OK:  # every kind of candidate: stale, notable licenses, required features
        unclean = sa.or_(unclean, st.observed_at < rules.now - rules.max_age)
    candidate = sa.and_(st.serial.is_not(None), unclean)
    if rank == RANK_OK:
        notable = notable_license(rules.now + rules.warn)
        candidate = sa.or_(
            candidate, sa.exists().where(licenses.c.serial == devices.c.serial, notable)
        )
        if rules.required_features:
            missing = _required_present(rules) < len(rules.required_features)
            candidate = sa.or_(candidate, sa.and_(_networked(rules), missing))
    weighed = sa.and_(candidate, _terms(rules, _correlated_facts(rules)).rank == rank)
    never = sa.and_(_networked(rules), st.serial.is_(None))

    def narrow(query: sa.Select[Any]) -> sa.Select[Any]:
        query = query.outerjoin(device_status, st.serial == devices.c.serial)
        if rank == RANK_OK:
            return query.where(sa.not_(never), sa.or_(sa.not_(candidate), weighed))
        return query.where(sa.or_(never, weighed))

    return narrow


async def count_of_rank(
    engine: AsyncEngine, rules: StatusRules, matching: DeviceFilter, rank: int
) -> int:
    """How many matching devices have status `rank`."""
    ranks = NOT_OK if rank == RANK_OK else frozenset({rank})
    bad = scored(rules, matching, ranks)
    queries = [sa.select(sa.func.count()).select_from(bad)]
    every = sa.select(sa.func.count()).select_from(devices).where(matching.clause())
    if rank in (RANK_OK, RANK_UNKNOWN):
        queries.append(every.where(unscanned(rules)))
    if rank == RANK_OK:
        queries.append(every)
    async with engine.connect() as conn:
        counts = [int((await conn.execute(query)).scalar_one()) for query in queries]
    if rank == RANK_OK:
        return counts[2] - counts[0] - counts[1]
    return sum(counts)


async def page_of_rank(
    engine: AsyncEngine,
    rules: StatusRules,
    matching: DeviceFilter,
    rank: int,
    *,
    sort: DeviceSort,
    descending: bool,
    limit: int,
    offset: int,
) -> tuple[list[Device], int]:
    """One page of the matching devices of status `rank`, and how many there are."""
    narrow = of_rank(rules, matching, rank)
    if rank in (RANK_WARNING, RANK_CRITICAL):  # few, found at a cost: counted with the page
        page, total = await counted_page(
            engine, matching, sort=sort, descending=descending, limit=limit, offset=offset,
            narrow=narrow,
        )  # fmt: skip
        if total is not None:
            return page, total
    else:
        page = await page_devices(
            engine, matching, sort=sort, descending=descending, limit=limit, offset=offset,
            narrow=narrow,
        )  # fmt: skip
    return page, await count_of_rank(engine, rules, matching, rank)


async def model_names(engine: AsyncEngine) -> set[str | None]:
    """The distinct models of the store's devices (None: some have none), for the rules: one
    index probe per model name (a fleet has few), not a pass over the devices."""
    model = devices.c.model
    names = sa.select(sa.func.min(model).label("model")).cte("names", recursive=True)
    following = sa.select(sa.func.min(model)).where(model > names.c.model).scalar_subquery()
    names = names.union_all(sa.select(following).where(names.c.model.is_not(None)))
    unnamed = sa.select(sa.exists().where(model.is_(None)))
    async with engine.connect() as conn:
        found: set[str | None] = set((await conn.execute(sa.select(names.c.model))).scalars())
        found.discard(None)
        if (await conn.execute(unnamed)).scalar():
            found.add(None)
    return found
