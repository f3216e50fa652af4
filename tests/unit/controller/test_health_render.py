"""The renderings of a fleet's health (text, JSON, Nagios, Prometheus): the keys, the escaping."""

from __future__ import annotations

import json
from datetime import timedelta

from controller.health import DeviceHealth, FleetHealth, Health, fleet_health
from controller.health_render import (
    escape_label,
    render_json,
    render_nagios,
    render_prometheus,
    render_text,
    render_text_lines,
)
from inventory.models import LicenseState
from tests.unit.controller.health_cases import NOW, POLICY, UNREAD, device, fleet_of, lic, status


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


def test_the_plain_text_report_is_the_terminal_report_without_its_colour() -> None:
    """A pipe or file gets `render_text` (no rich); a terminal the same lines, styled."""
    fleet = fleet_health(
        [
            (device("A1"), status(lic())),
            (device("B1", site="lab\x1b[5m"), status(lic(state=LicenseState.EXPIRED))),
            (device("C1", site=None), None),
        ],
        NOW,
        POLICY,
    )
    styled = render_text_lines(fleet)
    assert render_text(fleet) == "".join(line.plain + "\n" for line in styled)
    assert render_text(fleet).splitlines()[2:] == [
        "CRITICAL B1 lab\\x1b[5m  feature base expired",
        "UNKNOWN  C1 -           never scanned",
    ]
    assert [span.style for span in styled[2].spans] == ["red"]
