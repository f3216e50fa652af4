"""Health classification, fleet status and renderers, with a fixed `now`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from controller.health import (
    DeviceHealth,
    FleetHealth,
    Health,
    HealthPolicy,
    classify,
    escape_label,
    fleet_health,
    render_json,
    render_nagios,
    render_prometheus,
    render_text_lines,
)
from inventory.models import Device, License, LicenseRead, LicenseState
from inventory.observation_store import DeviceStatus

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = HealthPolicy()


def device(serial: str = "SN1", **fields: object) -> Device:
    values: dict[str, object] = {
        "mac": "0004f2000001",
        "model": "VVX 450",
        "driver": "poly-uc",
        "site": "hq",
    }
    values.update(fields)
    return Device.model_validate({"serial": serial, **values})


def lic(
    feature: str = "base",
    state: LicenseState = LicenseState.ACTIVE,
    expires_at: datetime | None = None,
    observed_at: datetime = NOW - timedelta(hours=1),
    serial: str = "SN1",
) -> License:
    return License(
        serial=serial,
        feature=feature,
        state=state,
        expires_at=expires_at,
        source="test",
        observed_at=observed_at,
    )


def status(
    *licenses: License,
    observed_at: datetime = NOW - timedelta(hours=1),
    reachable: bool = True,
    error_kind: str | None = None,
    error: str | None = None,
    mismatch: str | None = None,
    read: LicenseRead | None = None,
) -> DeviceStatus:
    return DeviceStatus(
        serial="SN1",
        observed_at=observed_at,
        reachable=reachable,
        driver="poly-uc",
        error_kind=error_kind,
        error=error,
        identity_mismatch=mismatch,
        licenses=list(licenses),
        license_read=read,
    )


UNREAD = LicenseRead(
    ok=False, call="GET /api/v1/mgmt/license/info", detail="HTTP 404", modeled=True
)


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


def fleet_of(*statuses: Health) -> FleetHealth:
    fleet = FleetHealth(checked_at=NOW)
    for index, health in enumerate(statuses):
        fleet.add(DeviceHealth(f"S{index}", None, None, health, "why"))
    return fleet


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


def test_every_format_says_why_the_license_state_was_not_read() -> None:
    fleet = fleet_health([(device("V1"), status(read=UNREAD))], NOW, POLICY)
    assert fleet.status is Health.UNKNOWN
    [row] = json.loads(render_json(fleet))["devices"]
    assert row["status"] == "UNKNOWN"
    assert "GET /api/v1/mgmt/license/info (modeled call): HTTP 404" in row["reason"]
    assert row["license_read"] == UNREAD.to_json()
    nagios = render_nagios(fleet).splitlines()
    assert nagios[0].startswith("POLYFLEET UNKNOWN - 1 unknown of 1 device |")
    assert nagios[1].startswith("UNKNOWN: V1 at hq - license state not read: GET /api/v1/mgmt/")
    assert "polyfleet probe V1" in nagios[1]
    text = "\n".join(line.plain for line in render_text_lines(fleet))
    assert "HTTP 404" in text
    assert "polyfleet probe V1" in text
    prom = render_prometheus(fleet)
    assert (
        'polyfleet_license_read{serial="V1",call="GET /api/v1/mgmt/license/info",'
        'modeled="true",detail="HTTP 404"} 0'
    ) in prom
    assert (
        'polyfleet_device_status{serial="V1",mac="0004f2000001",site="hq",status="UNKNOWN"} 1'
        in prom
    )


# -- renderers -----------------------------------------------------------------------------------


def test_json_has_the_product_keys_for_every_device() -> None:
    fleet = fleet_health([(device("A1"), None), (device("B1"), status(lic()))], NOW, POLICY)
    data = json.loads(render_json(fleet))
    assert data["status"] == "UNKNOWN"
    assert data["counts"] == {"OK": 1, "WARNING": 0, "CRITICAL": 0, "UNKNOWN": 1}
    assert [(d["serial"], d["mac"], d["status"]) for d in data["devices"]] == [
        ("A1", "0004f2000001", "UNKNOWN"),
        ("B1", "0004f2000001", "OK"),
    ]
    assert {"serial", "mac", "status", "reason"} <= set(data["devices"][0])
    assert json.loads(render_json(FleetHealth(checked_at=NOW)))["devices"] == []


def test_nagios_status_line_has_perfdata_and_long_output_lists_problems() -> None:
    fleet = fleet_of(Health.OK, Health.CRITICAL, Health.WARNING)
    first, *rest = render_nagios(fleet).splitlines()
    assert first == (
        "POLYFLEET CRITICAL - 1 critical, 1 warning of 3 devices"
        " | ok=1 warning=1 critical=1 unknown=0"
    )
    assert len(first.split(" | ")[0]) <= 80
    assert rest == ["CRITICAL: S1 - why", "WARNING: S2 - why"]
    assert render_nagios(fleet_of(Health.OK)).startswith("POLYFLEET OK - 1 device OK |")


def test_nagios_long_output_is_capped() -> None:
    lines = render_nagios(fleet_of(*[Health.WARNING] * 5), long_output_limit=2).splitlines()
    assert lines[1:] == ["WARNING: S0 - why", "WARNING: S1 - why", "... and 3 more devices not OK"]


def test_prometheus_label_values_are_escaped() -> None:
    assert escape_label('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    odd = device("Q1", site='hall "B"\\2\nnorth')
    text = render_prometheus(fleet_health([(odd, status(lic()))], NOW, POLICY))
    assert 'site="hall \\"B\\"\\\\2\\nnorth"' in text


def test_prometheus_families_are_declared_once_and_contiguous() -> None:
    pairs = [
        (device("A1"), status(lic(expires_at=NOW + timedelta(days=10)))),
        (device("B1", mac="0004f2000002"), None),
    ]
    text = render_prometheus(fleet_health(pairs, NOW, POLICY), duration=0.5)
    seen: list[str] = []
    for line in text.splitlines():
        name = line.split()[2] if line.startswith("#") else line.split("{")[0].split()[0]
        if not seen or seen[-1] != name:
            assert name not in seen, f"{name} is split"
            seen.append(name)
    assert "polyfleet_license_expiry_timestamp_seconds" in seen
    expected = NOW + timedelta(days=10)
    assert (
        f'polyfleet_license_expiry_timestamp_seconds{{serial="A1",feature="base"}} '
        f"{int(expected.timestamp())}" in text
    )
    assert f"polyfleet_health_run_timestamp_seconds {int(NOW.timestamp())}" in text


def test_json_lines_match_to_json_for_awkward_text() -> None:
    odd = device("Q1", site='Zürich "3"\\\nnord', mac=None)
    fleet = fleet_health([(odd, status(lic(), mismatch="x\ty \u2028"))], NOW, POLICY)
    fleet.add(DeviceHealth("Q2", None, None, Health.UNKNOWN, "never scanned"))
    data = json.loads(render_json(fleet))
    assert data["devices"] == [d.to_json() for d in fleet.devices]
    assert data["devices"][0]["site"] == 'Zürich "3"\\\nnord'


def test_text_and_nagios_keep_odd_names_literal() -> None:
    fleet = FleetHealth(checked_at=NOW)
    fleet.add(DeviceHealth("S[1]", None, "[red]lab|2", Health.WARNING, "expires [soon] | x\\y"))
    lines = [line.plain for line in render_text_lines(fleet)]
    assert lines[-1] == "WARNING  S[1] [red]lab|2  expires [soon] | x\\y"
    first, second = render_nagios(fleet).splitlines()
    assert first.count("|") == 1
    assert second == "WARNING: S[1] at [red]lab/2 - expires [soon] / x\\y"


def test_text_and_nagios_spell_escape_sequences() -> None:
    """A terminal or a monitoring UI shows a stored escape sequence; it never obeys it."""
    fleet = FleetHealth(checked_at=NOW)
    fleet.add(DeviceHealth("S\x1b[5m", None, "lab\u202e\n2", Health.CRITICAL, "x\x9b2J"))
    *_, line = [line.plain for line in render_text_lines(fleet)]
    assert line == "CRITICAL S\\x1b[5m lab\\u202e\\n2  x\\x9b2J"
    assert (
        render_nagios(fleet).splitlines()[1] == "CRITICAL: S\\x1b[5m at lab\\u202e\\n2 - x\\x9b2J"
    )


def test_the_fleet_result_serialises_as_the_json_report() -> None:
    fleet = fleet_health([(device("A1"), None), (device("B1"), status(lic()))], NOW, POLICY)
    dumped = json.loads(fleet.model_dump_json())
    assert dumped == json.loads(render_json(fleet))
