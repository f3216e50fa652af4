"""Health classification and the fleet's status, with a fixed `now` (renderings:
test_health_render.py)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone

import pytest

from controller.health import (
    Health,
    HealthPolicy,
    OkReasons,
    classify,
    clean_verdict,
    fleet_health,
)
from inventory.health_rows import CleanRead
from inventory.models import Device, LicenseRead, LicenseState
from inventory.observation_store import DeviceStatus
from tests.unit.controller.health_cases import NOW, POLICY, UNREAD, device, fleet_of, lic, status


def check(
    dev: Device, st: DeviceStatus | None, policy: HealthPolicy = POLICY
) -> tuple[Health, str]:
    verdict = classify(dev, st, NOW, policy)
    return verdict.status, verdict.reason


# -- classification ------------------------------------------------------------------------------


def test_active_licenses_far_from_expiry_are_ok_and_say_when_the_next_expires() -> None:
    result = check(device(), status(lic(expires_at=NOW + timedelta(days=200)), lic("video")))
    assert result == (Health.OK, "2 feature(s) active, next expiry 2027-06-11 (in 200 days)")


def test_expiry_exactly_warn_days_away_warns_and_one_second_later_does_not() -> None:
    at_boundary = check(device(), status(lic(expires_at=NOW + timedelta(days=30))))
    assert at_boundary == (Health.WARNING, "feature base expires in 30 days (2026-12-23)")
    beyond = check(device(), status(lic(expires_at=NOW + timedelta(days=30, seconds=1))))
    assert beyond[0] is Health.OK


def test_warn_days_is_configurable_and_hours_are_shown_in_the_last_day() -> None:
    soon = status(lic(expires_at=NOW + timedelta(hours=5)))
    assert check(device(), soon, HealthPolicy(warn_days=0))[0] is Health.OK
    assert check(device(), soon, HealthPolicy(warn_days=1)) == (
        Health.WARNING,
        "feature base expires in 5 hours (2026-11-23)",
    )
    twelve = status(lic("video", expires_at=NOW + timedelta(days=12, hours=3)))
    assert check(device(), twelve)[1] == "feature video expires in 12 days (2026-12-05)"


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (LicenseState.EXPIRED, "feature video expired 2026-10-01"),
        (LicenseState.DEACTIVATED, "feature video deactivated"),
        (LicenseState.MISSING, "feature video missing"),
    ],
)
def test_expired_deactivated_or_missing_feature_is_critical(
    state: LicenseState, reason: str
) -> None:
    expired_on = datetime(2026, 10, 1, tzinfo=UTC)
    result = check(device(), status(lic("base"), lic("video", state, expires_at=expired_on)))
    assert result == (Health.CRITICAL, reason)


def test_active_license_whose_expiry_passed_since_the_scan_is_critical() -> None:
    result = check(device(), status(lic(expires_at=NOW - timedelta(minutes=5))))
    assert result == (Health.CRITICAL, "feature base expired 2026-11-23")


def test_unreadable_license_state_warns() -> None:
    assert check(device(), status(lic("video", LicenseState.UNKNOWN))) == (
        Health.WARNING,
        "feature video state could not be read",
    )


def test_a_required_feature_the_device_does_not_report_is_critical() -> None:
    policy = HealthPolicy(required_features=frozenset({"base", "video"}))
    assert check(device(), status(lic("base")), policy) == (
        Health.CRITICAL,
        "feature video missing (required)",
    )
    assert check(device(), status(lic("base"), lic("video")), policy)[0] is Health.OK


def test_required_features_are_not_judged_on_a_device_never_read() -> None:
    policy = HealthPolicy(required_features=frozenset({"video"}))
    never = status(reachable=False, error_kind="timeout", error="no answer")
    assert check(device(), never, policy) == (Health.UNKNOWN, "never reached: timeout: no answer")


def test_observation_older_than_max_age_is_stale() -> None:
    old = status(lic(), observed_at=NOW - timedelta(days=3))
    assert check(device(), old) == (Health.WARNING, "last observed 3 days ago")
    edge = status(lic(), observed_at=NOW - timedelta(hours=26))
    assert check(device(), edge)[0] is Health.OK  # older than, not as old as
    assert check(device(), edge, HealthPolicy(max_age=timedelta(minutes=90))) == (
        Health.WARNING,
        "last observed 26 hours ago",
    )


def test_failed_scan_with_older_licenses_warns_and_names_the_failure() -> None:
    earlier = NOW - timedelta(hours=2)
    failed = status(
        lic(observed_at=earlier), reachable=False, error_kind="timeout", error="no answer"
    )
    assert check(device(last_seen=earlier), failed) == (
        Health.WARNING,
        "last scan failed: timeout: no answer",
    )
    verdict = classify(device(last_seen=earlier), failed, NOW, POLICY)
    assert verdict.last_observed == earlier


def test_failed_scan_with_stale_licenses_says_both() -> None:
    long_ago = NOW - timedelta(days=4)
    failed = status(lic(observed_at=long_ago), reachable=False, error="connection refused")
    assert check(device(), failed) == (
        Health.WARNING,
        "last scan failed: connection refused; last observed 4 days ago",
    )


def test_a_failed_scan_does_not_hide_an_expired_license() -> None:
    failed = status(
        lic(state=LicenseState.EXPIRED), reachable=False, error_kind="timeout", error="slow"
    )
    status_, reason = check(device(), failed)
    assert status_ is Health.CRITICAL
    assert reason == "feature base expired; last scan failed: timeout: slow"


def test_never_scanned_or_never_reached_is_unknown() -> None:
    assert check(device(), None) == (Health.UNKNOWN, "never scanned")
    refused = status(reachable=False, error_kind="unreachable", error="no route to host")
    assert check(device(), refused) == (
        Health.UNKNOWN,
        "never reached: unreachable: no route to host",
    )


def test_reached_once_but_no_license_state_known_is_unknown() -> None:
    refused = status(reachable=False, error_kind="unreachable", error="no route")
    result = check(device(last_seen=NOW - timedelta(hours=3)), refused)
    assert result == (
        Health.UNKNOWN,
        "last scan failed: unreachable: no route; no license state known",
    )


def test_identity_mismatch_is_critical_whatever_the_licenses_say() -> None:
    swapped = status(
        lic(observed_at=NOW - timedelta(hours=5)),
        error_kind="identity_mismatch",
        error="device at 10.0.0.1 reports serial OTHER (inventory: SN1)",
        mismatch="device at 10.0.0.1 reports serial OTHER (inventory: SN1)",
    )
    assert check(device(), swapped) == (
        Health.CRITICAL,
        "identity mismatch: device at 10.0.0.1 reports serial OTHER (inventory: SN1)",
    )


def test_analog_devices_are_ok_without_any_scan() -> None:
    analog = device("AN1", mac=None, model="SoundStation 2", driver="analog", host=None)
    assert check(analog, None) == (Health.OK, "not networked: inventory only")
    refused = status(reachable=False, error_kind="not_supported", error="device is not networked")
    assert check(analog, refused)[0] is Health.OK
    by_model = device("AN2", mac=None, model="VoiceStation 300", driver=None)
    assert check(by_model, None) == (Health.OK, "not networked: inventory only")


def test_analog_device_with_an_expired_license_is_still_critical() -> None:
    analog = device("AN1", mac=None, model="SoundStation 2", driver="analog")
    expired = status(lic(state=LicenseState.EXPIRED), reachable=False, error_kind="not_supported")
    assert check(analog, expired) == (Health.CRITICAL, "feature base expired")


def test_several_problems_are_all_named_worst_first() -> None:
    many = status(
        lic("base", expires_at=NOW + timedelta(days=3)),
        lic("video", LicenseState.DEACTIVATED),
        observed_at=NOW - timedelta(days=2),
    )
    assert check(device(), many) == (
        Health.CRITICAL,
        "feature video deactivated; feature base expires in 3 days (2026-11-26); "
        "last observed 2 days ago",
    )


# -- the fleet -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("members", "worst", "code"),
    [
        ((), Health.UNKNOWN, 3),
        ((Health.OK, Health.OK), Health.OK, 0),
        ((Health.OK, Health.UNKNOWN), Health.UNKNOWN, 3),
        ((Health.UNKNOWN, Health.WARNING), Health.WARNING, 1),
        ((Health.UNKNOWN, Health.CRITICAL, Health.WARNING), Health.CRITICAL, 2),
    ],
)
def test_fleet_status_is_the_worst_with_unknown_below_warning_and_no_devices_unknown(
    members: tuple[Health, ...], worst: Health, code: int
) -> None:
    fleet = fleet_of(*members)
    assert fleet.status is worst
    assert fleet.status.exit_code == code


def test_fleet_health_classifies_every_pair() -> None:
    fleet = fleet_health([(device("A1"), None), (device("B1"), status(lic()))], NOW, POLICY)
    assert [d.status for d in fleet.devices] == [Health.UNKNOWN, Health.OK]
    assert fleet.summary() == "2 devices: 1 OK, 0 WARNING, 0 CRITICAL, 1 UNKNOWN"


def test_reached_but_license_state_not_read_is_unknown_naming_the_call_and_probe() -> None:
    # The VVX answered its identity but 404'd the license call: nothing read is never OK.
    assert check(device(), status(read=UNREAD)) == (
        Health.UNKNOWN,
        "license state not read: GET /api/v1/mgmt/license/info (modeled call): HTTP 404;"
        " run `polyfleet probe SN1`",
    )


def test_unread_license_state_is_not_judged_against_required_features() -> None:
    required = HealthPolicy(required_features=frozenset({"video"}))
    verdict, reason = check(device(), status(read=UNREAD), required)
    assert verdict is Health.UNKNOWN
    assert "required" not in reason


def test_a_model_the_policy_declares_unlicensed_is_ok_with_that_reason() -> None:
    def declared(model: str | None) -> str | None:
        return "model 'VVX 450' has no licensed features (policy p.toml)" if model else None

    policy = HealthPolicy(no_licensed_features=declared)
    assert check(device(), status(read=UNREAD), policy) == (
        Health.OK,
        "model 'VVX 450' has no licensed features (policy p.toml)",
    )
    # The declaration covers only what could not be read: a read list is judged as ever.
    expired = status(lic(state=LicenseState.EXPIRED), read=UNREAD)
    assert check(device(), expired, policy)[0] is Health.CRITICAL


def test_a_read_empty_license_list_is_ok_and_an_older_observation_without_it_as_before() -> None:
    read = LicenseRead(ok=True, call="GET /api/v1/mgmt/license/info", detail="0 feature(s)")
    assert check(device(), status(read=read)) == (
        Health.OK,
        "reachable, no licensed features reported",
    )
    assert check(device(), status())[0] is Health.OK  # stored before scans recorded it


# -- the store's clean reads ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 11, 23, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 11, 23, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 23, 12, 30, tzinfo=UTC).astimezone(timezone(timedelta(hours=-9))),
    ],
)
def test_a_clean_reads_ok_reason_is_classifys_for_expiries_either_side_of_midnight(
    now: datetime,
) -> None:
    """One OkReasons for the whole run, as the fleet check uses it: a reason worked out for one
    expiry must never be reused for another expiry day or another number of days left."""
    reasons = OkReasons(now)
    policy = HealthPolicy(warn_days=0)  # every future expiry leaves the device OK
    midnight = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    expiries: list[datetime | None] = [None, now + timedelta(hours=5)]
    for days in (1, 2, 45, 400):
        for base in (now + timedelta(days=days), midnight + timedelta(days=days)):
            expiries += [base + timedelta(microseconds=us) for us in (-1, 0, 1)]
    india = timezone(timedelta(hours=5, minutes=30))
    expiries += [e.astimezone(india) for e in expiries if e is not None]
    observed = now - timedelta(hours=1)
    clean = [(2, e) for e in expiries if e is None or e > now]  # the store's clean reads
    for total, expiry in [(0, None), *clean]:
        lics = [lic(expires_at=expiry), lic("video")][:total]
        expected = classify(device(), status(*lics, observed_at=observed), now, policy)
        read = CleanRead("SN1", None, None, "VVX 450", None, observed, total, expiry, None)
        verdict = clean_verdict(read, reasons)
        assert (verdict.status, verdict.reason) == (Health.OK, expected.reason), expiry
