"""Pure parsers of the Poly drivers fed with captured payloads (tests/fixtures/drivers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from device_drivers import detect
from device_drivers.errors import (
    ApiStatusError,
    AuthenticationFailed,
    CommandErrorLine,
    DeviceBusy,
    DeviceError,
    MalformedReply,
    NotSupported,
)
from device_drivers.poly import group_series_modeled, infra_modeled, uc_modeled, videoos_modeled
from device_drivers.poly._common import rejection_reason
from device_drivers.poly.parsing import (
    facts_from_whoami,
    first_mac,
    gs_error_line,
    license_state,
    parse_sys_descr,
    parse_uc_device_info,
    parse_uc_prov_server,
    parse_videoos_system,
    parse_whoami,
    raise_for_gs_error,
    uc_data,
    videoos_session_id,
)
from inventory.catalog import (
    MODELED_SYS_OBJECT_IDS,
    ProductGroup,
    family_for_sys_object_id,
)
from inventory.models import LicenseState

FIXTURES = Path(__file__).parents[3] / "fixtures" / "drivers"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def text(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode("utf-8")


# --- UC phones ---------------------------------------------------------------------------------


def test_uc_device_info_capture_gives_mac_as_serial() -> None:
    facts = parse_uc_device_info(uc_data(load("uc_device_info_v1_trio8800.json"), "info"))
    assert facts.serial == "0004F2FE3AB0"
    assert facts.mac == "0004f2fe3ab0"
    assert (facts.model, facts.firmware) == ("Trio 8800", "5.7.1.4145")
    assert facts.product_group is ProductGroup.SOUNDSTATION_IP


def test_uc_device_info_keys_are_case_insensitive() -> None:
    data = {
        "modelnumber": "VVX 411",
        "FIRMWARERELEASE": "5.5.0.22173",
        "MacAddress": "0004F214B8E7",
    }
    facts = parse_uc_device_info(data)
    assert (facts.serial, facts.model, facts.firmware) == ("0004F214B8E7", "VVX 411", "5.5.0.22173")


def test_uc_device_info_with_a_multicast_mac_is_malformed() -> None:
    data = uc_data(load("uc_device_info_v2_mividas_mock.json"), "info")
    with pytest.raises(MalformedReply, match="MACAddress"):
        parse_uc_device_info(data)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("4001", DeviceBusy),
        ("4004", NotSupported),
        ("4010", AuthenticationFailed),
        ("5000", ApiStatusError),
        (4009, ApiStatusError),
    ],
)
def test_uc_status_other_than_2000_is_an_error_even_on_http_200(
    status: object, error: type[DeviceError]
) -> None:
    with pytest.raises(error, match=str(status)) as caught:
        uc_data({"Status": status}, "call")
    if isinstance(caught.value, ApiStatusError):  # the envelope's code, as the API sent it
        assert caught.value.status == str(status)


def test_uc_busy_capture_and_envelopes_without_status() -> None:
    with pytest.raises(DeviceBusy, match="device busy"):
        uc_data(load("uc_status_busy.json"), "info")
    with pytest.raises(MalformedReply):
        uc_data({"data": {}}, "info")
    with pytest.raises(MalformedReply):
        uc_data([1, 2], "info")
    assert uc_data(load("uc_line_info.json"), "lineInfo")[0]["LineNumber"] == "1"


def test_uc_network_info_gives_the_provisioning_server() -> None:
    data = uc_data(load("uc_network_info.json"), "network/info")
    assert parse_uc_prov_server(data) == "http://prov.example.com/phones"
    with pytest.raises(NotSupported):
        parse_uc_prov_server({**data, "ProvServerAddress": ""})


def test_uc_modeled_license_info() -> None:
    info = uc_modeled.parse_license_info(uc_data(load("uc_license_info_modeled.json"), "lic"))
    states = {s.feature: s.state for s in info.features}
    assert states == {"productivity_suite": LicenseState.EXPIRED, "uc_features": "active"}
    assert info.features[0].expires_at == datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)
    assert info.last_update is not None
    assert (info.last_update.result, info.last_update.reason) == ("rejected", "wrong_serial")
    empty = uc_modeled.parse_license_info({"Features": [{"State": "active"}], "LastUpdate": None})
    assert (empty.features, empty.last_update) == ([], None)


def test_uc_modeled_license_file_round_trips_through_the_simulator_parser() -> None:
    from simulator.uc_phone_modeled import parse_license_cfg

    body = uc_modeled.render_license_cfg(["PFK1-0004F2FE3AB0-uc_features-20270101-ABC", "K2"])
    assert parse_license_cfg(body.decode()) == [
        "PFK1-0004F2FE3AB0-uc_features-20270101-ABC",
        "K2",
    ]
    assert uc_modeled.parse_license_cfg(body.decode()) == parse_license_cfg(body.decode())
    assert uc_modeled.merge_keys(["A", "B"], "A") == ["B", "A"]
    assert len(uc_modeled.merge_keys([str(i) for i in range(40)], "new")) == 32
    assert uc_modeled.provisioning_location("http://prov:8080/site-a/", "00:04:F2:FE:3A:B0") == (
        "http",
        "prov",
        8080,
        "/site-a/0004f2fe3ab0-license.cfg",
    )
    assert uc_modeled.provisioning_location("prov.example.com", "0004f2fe3ab0")[2] == 80
    with pytest.raises(NotSupported):
        uc_modeled.provisioning_location("ftp://prov.example.com", "0004f2fe3ab0")


# --- VideoOS ------------------------------------------------------------------------------------


def test_videoos_system_capture() -> None:
    facts = parse_videoos_system(load("videoos_system_studiox30.json"))
    assert (facts.serial, facts.model, facts.firmware) == ("8L200353429AFC", "StudioX30", "3.12.0")
    assert facts.mac is None
    assert facts.system_name == "NH-StudioX30-53429a"
    assert facts.product_group is ProductGroup.VIDEO
    with pytest.raises(MalformedReply, match="serial"):
        parse_videoos_system({"model": "StudioX30"})


def test_videoos_login_session_id() -> None:
    assert videoos_session_id(load("videoos_login.json")) == "PSN0HppfExample"
    with pytest.raises(MalformedReply):
        videoos_session_id({"success": True})


def test_videoos_modeled_options_and_apply_replies() -> None:
    options = videoos_modeled.parse_options(load("videoos_options_modeled.json"))
    assert [(o.feature, o.state) for o in options] == [
        ("multipoint", LicenseState.ACTIVE),
        ("1080p", LicenseState.DEACTIVATED),
        ("software_update", LicenseState.MISSING),
    ]
    assert options[2].expires_at is None
    assert videoos_modeled.parse_apply({"success": False, "reason": "expired"}) == (None, "expired")
    option, reason = videoos_modeled.parse_apply(
        {"success": True, "option": {"name": "1080p", "state": "active", "expiresAt": None}}
    )
    assert reason is None
    assert option is not None
    assert option.state is LicenseState.ACTIVE


# --- Group Series ----------------------------------------------------------------------------


def test_whoami_capture_with_double_cr_line_breaks() -> None:
    raw = text("gs_whoami.txt")
    fields = parse_whoami(raw)
    assert fields["SNMP Enabled"] == "True"
    assert fields["Local Time is"] == "Mon, 23 Nov 2026 10:00:00 UTC"
    facts = facts_from_whoami(raw)
    assert (facts.serial, facts.model, facts.firmware, facts.system_name) == (
        "8215340E1F2AB1",
        "Group Series 500",
        "6.2.2.8-460003",
        "Boardroom-GS500",
    )
    assert facts.product_group is ProductGroup.VIDEO
    with pytest.raises(MalformedReply):
        facts_from_whoami("Model: HDX 8000\r\n")


def test_gs_error_lines_map_to_error_classes() -> None:
    assert gs_error_line("ok\r\nerror: command not found\r\n") == "error: command not found"
    assert gs_error_line("command is not available in current system configuration") is not None
    assert gs_error_line("systemsetting systemname room") is None
    with pytest.raises(NotSupported):
        raise_for_gs_error("error: this command is not supported on this model", "x")
    with pytest.raises(DeviceBusy):
        raise_for_gs_error("error: system busy", "x")
    line = "error: command needs more parameters to execute successfully"
    with pytest.raises(CommandErrorLine) as caught:
        raise_for_gs_error(f"ok\r\n{line}\r\n", "x")
    assert (caught.value.status, caught.value.kind.reached) == (line, True)
    raise_for_gs_error("optionkey end", "x")


def test_gs_modeled_option_list_and_apply() -> None:
    options = group_series_modeled.parse_option_list(text("gs_optionkey_list_modeled.txt"))
    assert [(o.feature, o.state) for o in options] == [
        ("multipoint", LicenseState.EXPIRED),
        ("1080p", LicenseState.ACTIVE),
        ("software_update", LicenseState.MISSING),
    ]
    assert options[1].expires_at == datetime(2027, 9, 30, 23, 59, 59, tzinfo=UTC)
    with pytest.raises(MalformedReply):
        group_series_modeled.parse_option_list("optionkey 1080p active 2027-09-30\r\n")
    status, error = group_series_modeled.parse_apply_reply("optionkey 1080p active 2027-09-30\r\n")
    assert (status is not None, error) == (True, None)
    assert group_series_modeled.parse_apply_reply("error: option key has expired\r\n") == (
        None,
        "error: option key has expired",
    )
    with pytest.raises(MalformedReply):
        group_series_modeled.parse_apply_reply("hello")
    with pytest.raises(ValueError, match="characters"):
        group_series_modeled.apply_command("KEY; reboot now")


# --- infrastructure ---------------------------------------------------------------------------


def test_infra_license_status_with_modeled_feature_status() -> None:
    status = infra_modeled.parse_license_status(load("infra_license_status.json"))
    assert status.licensing_status == "VALID_SYSTEM_RESTART_REQUIRED"
    assert [(f.feature, f.state) for f in status.features] == [("system", LicenseState.ACTIVE)]
    bare = infra_modeled.parse_license_status(
        {"licensingStatus": "INVALID", "plcmLicenseFeatureList": [{"name": "system"}]}
    )
    assert bare.features[0].state is LicenseState.EXPIRED


def test_dma_and_rprm_snmp_license_objects() -> None:
    base = "1.3.6.1.4.1.13885.13.2.2.3.3.1"
    rows = infra_modeled.dma_licenses(
        [(f"{base}.2.1", "system"), (f"{base}.2.2", b"video"), (f"{base}.2.3", "")],
        [(f"{base}.3.1", 1), (f"{base}.3.2", 3), (f"{base}.3.3", 2)],
    )
    assert [(r.feature, r.state) for r in rows] == [
        ("system", LicenseState.ACTIVE),
        ("video", LicenseState.MISSING),
    ]
    assert infra_modeled.rprm_license(500).state is LicenseState.ACTIVE
    assert infra_modeled.rprm_license(0).state is LicenseState.MISSING
    assert infra_modeled.rprm_license(None).state is LicenseState.UNKNOWN


# --- shared pieces ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "reason"),
    [
        ("wrong_serial", "wrong_serial"),
        ("SERIAL_NUMBER_MISMATCH", "wrong_serial"),
        ("error: option key is for another system", "wrong_serial"),
        ("error: option key has expired", "expired"),
        ("error: invalid option key", "invalid_key"),
        ("error: option not supported on this model", "unknown_feature"),
        ("tampered", "tampered"),
        ("something else", "other"),
    ],
)
def test_rejection_reasons(said: str, reason: str) -> None:
    assert rejection_reason(said) == reason


def test_small_helpers() -> None:
    assert license_state("EXPIRED") is LicenseState.EXPIRED
    assert license_state("grace") is LicenseState.UNKNOWN
    assert license_state(None) is LicenseState.UNKNOWN
    assert first_mac([("x.1", ""), ("x.2", "00:04:f2:aa:bb:cc")]) == "0004f2aabbcc"
    assert first_mac([("x.1", None)]) is None
    assert parse_sys_descr("Polycom Group Series 500, software 6.2.2") == (
        "Group Series 500",
        "6.2.2",
    )
    assert parse_sys_descr("Linux router 5.10") == ("Linux router 5.10", None)
    assert parse_sys_descr(None) == (None, None)


# --- detection ------------------------------------------------------------------------------


def test_modeled_sys_object_ids_are_shared_with_the_simulator() -> None:
    from simulator import mib

    for family, dotted in MODELED_SYS_OBJECT_IDS.items():
        assert ".".join(map(str, mib.SYS_OBJECT_IDS[family])) == dotted
        found = family_for_sys_object_id("." + dotted)
        assert found is not None
        assert found.key == family
    assert family_for_sys_object_id("1.3.6.1.4.1.9.1.1") is None


def test_detection_from_snmp_identity() -> None:
    gs = detect.driver_for_facts(MODELED_SYS_OBJECT_IDS["gs"], "Polycom HDX 8000, software 3.1")
    assert (gs.family, gs.confidence, gs.is_poly) == ("gs", detect.Confidence.CONFIDENT, True)
    by_model = detect.driver_for_facts(
        "1.3.6.1.4.1.13885.1", None, endpoint_serial="82X", endpoint_model="Group Series 300"
    )
    assert (by_model.family, by_model.confidence) == ("gs", detect.Confidence.CONFIDENT)
    weak = detect.driver_for_facts(None, "Polycom VVX 450, software 6.4")
    assert (weak.family, weak.confidence) == ("vvx", detect.Confidence.WEAK)
    generic = detect.driver_for_facts("1.3.6.1.4.1.13885.5", "Polycom mystery box")
    assert (generic.family, generic.polycom, generic.is_poly) == (None, True, False)
    assert detect.driver_for_facts("1.3.6.1.4.1.9.1.1", "Cisco IOS") == detect.NOTHING
