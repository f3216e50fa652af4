"""License health of a fleet: classification per device and the fleet's status.

Its renderings (text, JSON, Nagios, Prometheus) are in `controller.health_render`.

Pure functions only (no store, no clock, no terminal): the command feeds in devices, their latest
stored status and `now`, so every rule can be tested with a fixed time.

Rules per device, all problems found are named in `reason`, worst first:

* CRITICAL: a license expired (reported `expired`, or reported `active` with an expiry date that
  has passed since), `deactivated` or `missing`; a required feature absent; the device at the
  inventory's address answered with another identity (a swapped device).
* WARNING: an active license expiring within `warn_days` (boundary included); the last good
  observation older than `max_age` (stale); the last scan failed while older licenses are known;
  a license whose state the driver could not read (`unknown`).
* UNKNOWN: never scanned, or never reached with no license state known at all; reached, but its
  license state could not be read (the reason names the call and what came back, and points to
  `polyfleet probe`), unless the policy declares the model has no licensed features.
* OK: otherwise. A device is never OK because nothing could be read.

Analog devices (driver `analog`, or a model of a non-networked family) cannot be reached by
design: they are OK ("not networked: inventory only") unless stored licenses say otherwise, and
neither staleness nor failed scans count against them.

The fleet's status is the worst device status in the order CRITICAL > WARNING > UNKNOWN > OK
(monitoring-plugins' `max_state_alt`): one unscanned device turns an otherwise healthy fleet
UNKNOWN, but never hides a WARNING or CRITICAL; no devices at all is UNKNOWN too (a wrong store
or site must not pass for a healthy fleet). Exit codes follow Nagios: 0 OK, 1 WARNING,
2 CRITICAL, 3 UNKNOWN.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from operator import attrgetter
from typing import Any, Protocol

from pydantic import (
    BaseModel,
    Field,
    GetCoreSchemaHandler,
    computed_field,
    field_serializer,
)
from pydantic_core import core_schema

from device_drivers.names import DriverName
from inventory.catalog import family_for_model
from inventory.health_rows import CleanRead, LicenseSummary
from inventory.health_sql import RANK_CRITICAL, RANK_OK, RANK_UNKNOWN, RANK_WARNING
from inventory.models import LicenseRead, LicenseState


class Health(StrEnum):
    """A device's or the fleet's health, named as Nagios names its states."""

    OK = "OK"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"
    UNKNOWN = "UNKNOWN"

    @property
    def exit_code(self) -> int:
        """Nagios plugin exit code of this state."""
        return _EXIT_CODES[self]

    @property
    def rank(self) -> int:
        """Severity for "worst of": CRITICAL > WARNING > UNKNOWN > OK."""
        return _RANKS[self]


_EXIT_CODES = {Health.OK: 0, Health.WARNING: 1, Health.CRITICAL: 2, Health.UNKNOWN: 3}
# The store sorts and filters by these (inventory.health_sql): one set of numbers.
_RANKS = {
    Health.OK: RANK_OK,
    Health.UNKNOWN: RANK_UNKNOWN,
    Health.WARNING: RANK_WARNING,
    Health.CRITICAL: RANK_CRITICAL,
}
BY_RANK = {rank: health for health, rank in _RANKS.items()}
STATUS_ORDER = (Health.OK, Health.WARNING, Health.CRITICAL, Health.UNKNOWN)
NOT_NETWORKED = "not networked: inventory only"


class LicenseLike(Protocol):
    """What classification reads of a license (`inventory.models.License` fits)."""

    @property
    def feature(self) -> str: ...
    @property
    def state(self) -> LicenseState: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def observed_at(self) -> datetime: ...


class DeviceLike(Protocol):
    """What classification reads of an inventory device (`inventory.models.Device` fits)."""

    @property
    def serial(self) -> str: ...
    @property
    def mac(self) -> str | None: ...
    @property
    def site(self) -> str | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def driver(self) -> str | None: ...
    @property
    def last_seen(self) -> datetime | None: ...


class StatusLike(Protocol):
    """The latest stored observation (`inventory.observation_store.DeviceStatus` fits)."""

    @property
    def observed_at(self) -> datetime: ...
    @property
    def reachable(self) -> bool: ...
    @property
    def error_kind(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def identity_mismatch(self) -> str | None: ...
    @property
    def licenses(self) -> Sequence[LicenseLike]: ...
    @property
    def license_read(self) -> LicenseRead | None: ...


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """The thresholds of one run (`--warn-days`, `--max-age`, required features)."""

    warn_days: int = 30
    max_age: timedelta = timedelta(hours=26)
    required_features: frozenset[str] = frozenset()
    no_licensed_features: Callable[[str | None], str | None] | None = None
    """Model → why it has no licensed features (the policy file's declaration), else None."""

    warn: timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "warn", timedelta(days=self.warn_days))


def summarize(licenses: Sequence[LicenseLike]) -> LicenseSummary:
    """The summary of a complete license list."""
    expiries = [lic.expires_at for lic in licenses if lic.expires_at is not None]
    observed = [lic.observed_at for lic in licenses]
    return LicenseSummary(len(licenses), min(expiries, default=None), max(observed, default=None))


@dataclass(slots=True)  # not frozen: frozen __init__ costs 1 µs a field, 100,000 times over
class DeviceHealth:
    """One device's verdict, with what the renderers show about it."""

    serial: str
    mac: str | None
    site: str | None
    status: Health
    reason: str
    last_observed: datetime | None = None
    """The last observation that reached the device (None: never reached)."""
    licenses: tuple[LicenseLike, ...] = ()
    license_read: LicenseRead | None = None
    """How the last scan that reached the device fared reading its license state."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """In a pydantic model (FleetHealth) a verdict is taken as it is (an instance check,
        not 100,000 validations) and serialised as `to_json`."""
        return core_schema.is_instance_schema(
            cls, serialization=core_schema.plain_serializer_function_ser_schema(cls.to_json)
        )

    def to_json(self) -> dict[str, Any]:
        """PRODUCT.md's keys, plus site and last_observed (license detail is in the metrics)."""
        last = self.last_observed
        return {
            "serial": self.serial,
            "mac": self.mac,
            "status": self.status.value,
            "reason": self.reason,
            "site": self.site,
            "last_observed": last.isoformat() if last is not None else None,
            "license_read": self.license_read.to_json() if self.license_read else None,
        }


def is_networked(device: DeviceLike) -> bool:
    """False for analog products, which the inventory holds for quotes and contracts only."""
    if device.driver is not None:
        return device.driver != DriverName.ANALOG.value
    return model_networked(device.model) if device.model else True


@functools.lru_cache(maxsize=1024)
def model_networked(model: str) -> bool:
    """Cached: a fleet has few model names and the catalog lookup is fuzzy (slow) matching."""
    family = family_for_model(model)
    return family is None or family.networked


def classify(
    device: DeviceLike,
    status: StatusLike | None,
    now: datetime,
    policy: HealthPolicy,
    summary: LicenseSummary | None = None,
) -> DeviceHealth:
    """The health of one device from its inventory record and latest stored status.

    Without `summary`, `status.licenses` must be complete. With one, it may hold only the
    notable licenses, except when the policy requires features (their absence needs the list).
    """
    licenses: Sequence[LicenseLike] = status.licenses if status is not None else ()
    if summary is None:
        summary = summarize(licenses)
    if not is_networked(device):
        problems = _license_problems(licenses, now, policy, check_required=False)
        return _verdict(device, problems, licenses, None, NOT_NETWORKED, summary, now)
    if status is None:
        problems = [(Health.UNKNOWN, "never scanned")]
        return _verdict(device, problems, licenses, None, "", summary, now)

    problems = []
    mismatch = status.identity_mismatch
    if mismatch:
        problems.append((Health.CRITICAL, f"identity mismatch: {mismatch}"))
    failed = not status.reachable or (status.error is not None and not mismatch)
    known = summary.total > 0
    read = status.license_read
    unread = read is not None and not read.ok and not (failed or mismatch)
    ok_reason: str | None = None
    if unread and read is not None:
        declared = policy.no_licensed_features and policy.no_licensed_features(device.model)
        if declared:
            ok_reason = declared
        else:
            problems.append((Health.UNKNOWN, unread_reason(device.serial, read)))
    # A read that reached the device gave a license list (maybe empty): required features count.
    licenses_read = known or not (failed or mismatch or unread)
    problems += _license_problems(licenses, now, policy, check_required=licenses_read)
    last: datetime | None = status.observed_at
    if failed or mismatch:  # this observation did not read *this* device: the last one that did
        seen = [t for t in (summary.newest_observation, device.last_seen) if t is not None]
        last = max(seen) if seen else None
    if failed:
        why = _failure(status)
        if last is None and not known:
            problems.append((Health.UNKNOWN, f"never reached: {why}"))
            return _verdict(device, problems, licenses, None, "", summary, now)
        if not known:
            problems.append((Health.UNKNOWN, f"last scan failed: {why}; no license state known"))
        else:
            problems.append((Health.WARNING, f"last scan failed: {why}"))
    if last is not None and now - last > policy.max_age:
        problems.append((Health.WARNING, f"last observed {_ago(now - last)}"))
    verdict = _verdict(device, problems, licenses, last, ok_reason, summary, now)
    verdict.license_read = read
    return verdict


class OkReasons:
    """The OK reasons of the clean reads of one run at `now`, each worked out once: a fleet
    has few distinct ones, and naming each device's expiry day costs more than the rest of its
    verdict. A reason with days left is fixed by the feature count, the whole days left and
    whether the expiry's UTC time of day is past midnight counted from now's, which the expiry
    minus now tells without converting either to a date."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        utc = now.astimezone(UTC)
        self._now_us = (
            (utc.hour * 60 + utc.minute) * 60 + utc.second
        ) * 1_000_000 + utc.microsecond
        self._known: dict[tuple[int, int, bool], str] = {}

    def of(self, total: int, next_expiry: datetime | None) -> str:
        """`_ok_reason` of a device with `total` licenses, none notable."""
        if next_expiry is None:
            key = (total, -1, False)
        else:
            left = next_expiry - self.now
            if left.days < 1:  # hours left: said per device
                return _ok_reason(LicenseSummary(total, next_expiry, None), self.now)
            wraps = self._now_us + left.seconds * 1_000_000 + left.microseconds >= _DAY_US
            key = (total, left.days, wraps)
        reason = self._known.get(key)
        if reason is None:
            summary = LicenseSummary(total, next_expiry, None)
            reason = self._known[key] = _ok_reason(summary, self.now)
        return reason


_DAY_US = 86_400_000_000


def clean_verdict(row: CleanRead, reasons: OkReasons) -> DeviceHealth:
    """OK, as `classify` says of a networked device that the store found read cleanly since the
    staleness limit with no notable license."""
    return DeviceHealth(
        row.serial, row.mac, row.site, Health.OK, reasons.of(row.total, row.next_expiry),
        row.observed_at, (), row.license_read,
    )  # fmt: skip


def unread_reason(serial: str, read: LicenseRead) -> str:
    """`license state not read: <call> (modeled call): <what came back>; run polyfleet probe`."""
    modeled = " (modeled call)" if read.modeled else ""
    return (
        f"license state not read: {read.call or 'license read'}{modeled}:"
        f" {read.detail or 'nothing usable'}; run `polyfleet probe {serial}`"
    )


def _verdict(
    device: DeviceLike,
    problems: list[tuple[Health, str]],
    licenses: Sequence[LicenseLike],
    last: datetime | None,
    ok_reason: str | None,
    summary: LicenseSummary,
    now: datetime,
) -> DeviceHealth:
    """Worst problem wins; the reason names every problem, worst first (else why it is OK)."""
    if not problems:
        reason = ok_reason if ok_reason is not None else _ok_reason(summary, now)
        return DeviceHealth(
            device.serial, device.mac, device.site, Health.OK, reason, last, tuple(licenses)
        )
    problems.sort(key=lambda p: -p[0].rank)  # stable: same severity keeps discovery order
    reason = "; ".join(text for _, text in problems)
    return DeviceHealth(
        device.serial, device.mac, device.site, problems[0][0], reason, last, tuple(licenses)
    )


def _license_problems(
    licenses: Sequence[LicenseLike], now: datetime, policy: HealthPolicy, *, check_required: bool
) -> list[tuple[Health, str]]:
    problems: list[tuple[Health, str]] = []
    warn = policy.warn
    for lic in licenses:
        state = lic.state
        if state is LicenseState.ACTIVE:
            expires_at = lic.expires_at
            if expires_at is None or expires_at - now > warn:
                continue
        name = f"feature {lic.feature}"
        if state is LicenseState.EXPIRED:
            on = f" {_day(lic.expires_at)}" if lic.expires_at else ""
            problems.append((Health.CRITICAL, f"{name} expired{on}"))
        elif state is LicenseState.DEACTIVATED:
            problems.append((Health.CRITICAL, f"{name} deactivated"))
        elif state is LicenseState.MISSING:
            problems.append((Health.CRITICAL, f"{name} missing"))
        elif state is LicenseState.UNKNOWN:
            problems.append((Health.WARNING, f"{name} state could not be read"))
        elif lic.expires_at is not None:
            left = lic.expires_at - now
            if left <= timedelta(0):
                problems.append((Health.CRITICAL, f"{name} expired {_day(lic.expires_at)}"))
            elif left <= warn:
                problems.append(
                    (Health.WARNING, f"{name} expires {_within(left)} ({_day(lic.expires_at)})")
                )
    if check_required and policy.required_features:
        have = {lic.feature for lic in licenses}
        for feature in sorted(policy.required_features - have):
            problems.append((Health.CRITICAL, f"feature {feature} missing (required)"))
    return problems


def _failure(status: StatusLike) -> str:
    if status.error_kind and status.error:
        return f"{status.error_kind}: {status.error}"
    return status.error or status.error_kind or "unreachable"


def _ok_reason(summary: LicenseSummary, now: datetime) -> str:
    if not summary.total:
        return "reachable, no licensed features reported"
    text = f"{summary.total} feature(s) active"
    if summary.next_expiry is not None:
        nearest = summary.next_expiry
        text += f", next expiry {_day(nearest)} ({_within(nearest - now)})"
    return text


def _day(moment: datetime | None) -> str:
    if moment is None:
        return "?"
    return (moment if moment.tzinfo is UTC else moment.astimezone(UTC)).date().isoformat()


def _within(left: timedelta) -> str:
    days = left.days
    if days < 1:
        hours = max(1, math.ceil(left.total_seconds() / 3600))
        return f"in {hours} hour{'s' if hours != 1 else ''}"
    return f"in {days} day{'s' if days != 1 else ''}"


def _ago(age: timedelta) -> str:
    """A human age: minutes up to 2 h, hours up to 2 days, then days."""
    seconds = age.total_seconds()
    if seconds < 7200:
        n, unit = int(seconds // 60), "minute"
    elif seconds < 172800:
        n, unit = int(seconds // 3600), "hour"
    else:
        n, unit = int(seconds // 86400), "day"
    return f"{n} {unit}{'s' if n != 1 else ''} ago"


# -- the fleet -----------------------------------------------------------------------------------


class FleetHealth(BaseModel):
    """Every device's verdict, their counts and the fleet's status: the health use case's
    result, which `model_dump_json` serialises with the keys of `health --format json`."""

    checked_at: datetime
    counts: dict[Health, int] = Field(default_factory=lambda: dict.fromkeys(STATUS_ORDER, 0))
    devices: list[DeviceHealth] = Field(default_factory=list)

    @field_serializer("checked_at")
    def _iso(self, moment: datetime) -> str:
        return moment.isoformat()  # `+00:00` as in the JSON report, not pydantic's `Z`

    def add(self, verdict: DeviceHealth) -> None:
        self.devices.append(verdict)
        self.counts[verdict.status] += 1

    def extend(self, verdicts: list[DeviceHealth]) -> None:
        """`add` of each, counted in one C-level pass (100,000 method calls cost 0.05 s)."""
        self.devices.extend(verdicts)
        for status, count in Counter(map(_STATUS_OF, verdicts)).items():
            self.counts[status] += count

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> Health:
        """Worst device status (CRITICAL > WARNING > UNKNOWN > OK). No devices at all is
        UNKNOWN: a cron job pointed at the wrong store (or a mistyped --site) must not look
        healthy forever."""
        present = [s for s in STATUS_ORDER if self.counts.get(s)]
        return max(present, key=lambda s: s.rank, default=Health.UNKNOWN)

    def not_ok(self) -> list[DeviceHealth]:
        """Devices that are not OK, worst first, then by serial."""
        bad = [d for d in self.devices if d.status is not Health.OK]
        return sorted(bad, key=lambda d: (-d.status.rank, d.serial))

    def summary(self) -> str:
        """`3 devices: 1 OK, 1 WARNING, 1 CRITICAL, 0 UNKNOWN`."""
        total = sum(self.counts.values())
        parts = ", ".join(f"{self.counts.get(s, 0)} {s.value}" for s in STATUS_ORDER)
        return f"{total} device{'s' if total != 1 else ''}: {parts}"


_STATUS_OF = attrgetter("status")


def fleet_health(
    pairs: Iterable[tuple[DeviceLike, StatusLike | None]], now: datetime, policy: HealthPolicy
) -> FleetHealth:
    """Classify every (device, status) pair."""
    fleet = FleetHealth(checked_at=now)
    for device, status in pairs:
        fleet.add(classify(device, status, now, policy))
    return fleet
