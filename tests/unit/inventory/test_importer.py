"""The device-file parser: exactly which rows of messy real-world files are accepted or reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from inventory.catalog import ProductGroup
from inventory.errors import ImportRefused
from inventory.importer import ParsedImport, parse_device_file
from inventory.models import Device, DevicePorts

FIXTURES = Path(__file__).parents[2] / "fixtures" / "import"


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def _csv(tmp_path: Path, *lines: str, name: str = "devices.csv") -> ParsedImport:
    return parse_device_file(_write(tmp_path, name, "\n".join(lines) + "\n"))


def _rejections(parsed: ParsedImport) -> list[tuple[int, str | None]]:
    return [(row.line, row.column) for row in parsed.rejected]


# --- the messy CSV -------------------------------------------------------------------------


def test_messy_csv_fixture_really_has_a_bom_and_crlf_line_ends() -> None:
    data = (FIXTURES / "messy.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.count(b"\r\n") == 20
    assert b"\n" not in data.replace(b"\r\n", b"")


@pytest.fixture
def messy_csv() -> ParsedImport:
    return parse_device_file(FIXTURES / "messy.csv", default_site="Default")


def test_messy_csv_accepts_exactly_the_good_rows(messy_csv: ParsedImport) -> None:
    accepted = {row.line: row.device for row in messy_csv.accepted}
    assert {line: (d.serial, d.mac) for line, d in accepted.items()} == {
        2: ("SN-VVX-0001", "0004f2aabb01"),
        3: ("SN-VVX-0002", "0004f2aabb02"),
        6: ("SN-TRIO-0003", "0004f2aabb03"),
        7: ("SN-GS-0004", "0004f2aabb04"),
        14: ("SN-ANALOG-0001", None),
        15: ("SN-FOREIGN", "001122334455"),
        16: ("0004F2AABB16", "0004f2aabb16"),
        20: ("SN-NOTAG", "0004f2aabb20"),
    }
    assert [row.line for row in messy_csv.accepted] == sorted(accepted)


def test_messy_csv_rows_carry_every_value_cleaned(messy_csv: ParsedImport) -> None:
    accepted = {row.line: row.device for row in messy_csv.accepted}
    assert accepted[2] == Device(
        serial="SN-VVX-0001",
        mac="0004f2aabb01",
        host="10.1.0.11",
        model="VVX 450",
        product_group=ProductGroup.SOUNDPOINT_IP,
        site="HQ",
        tags={"Owner": "alice"},
    )
    # stray spaces trimmed; the quoted notes cell spans lines 3-4 and becomes the tag "Notes"
    assert accepted[3].host == "10.1.0.12"
    assert accepted[3].tags == {"Notes": "Desk 12,\r\nnext to the window", "Owner": "bob"}
    assert accepted[6].ports == DevicePorts(https=8443)
    assert accepted[6].site == "Default"  # no location in the file: --site applies
    assert accepted[6].product_group is ProductGroup.SOUNDSTATION_IP
    assert accepted[7].site == "Branch"
    assert accepted[14].product_group is ProductGroup.SOUNDSTATION
    assert accepted[14].tags == {"Notes": "conference room B"}
    assert accepted[16].model == "VVX 350"  # UC phone without serial: serial is its MAC
    assert accepted[20].tags == {}  # blank cells set no tag


def test_messy_csv_reports_exactly_the_bad_rows(messy_csv: ParsedImport) -> None:
    expected = [
        (8, "MAC Address", "has 10 hex digits, a MAC has 12"),
        (9, "MAC Address", "multicast"),
        (10, "Serial Number", "serial SN-VVX-0001 already appears on line 2"),
        (11, "MAC Address", "MAC 00:04:f2:aa:bb:02 already appears on line 3"),
        (12, None, "neither a serial number nor a MAC address"),
        (13, "HTTPS Port", "port 'https' is not a whole number"),
        (17, "Serial Number", "serial missing"),
        (19, "HTTPS Port", "port 70000 is outside 1-65535"),
    ]
    assert _rejections(messy_csv) == [(line, column) for line, column, _ in expected]
    for row, (_, _, reason) in zip(messy_csv.rejected, expected, strict=True):
        assert reason in row.reason
    assert "'Studio X70' is not one" in messy_csv.rejected[6].reason
    assert messy_csv.rejected_lines == [8, 9, 10, 11, 12, 13, 17, 19]


def test_messy_csv_warns_only_about_the_foreign_mac(messy_csv: ParsedImport) -> None:
    assert [(w.line, w.column) for w in messy_csv.warnings] == [(15, "MAC Address")]
    assert "00:11:22:33:44:55 is not in a Poly OUI" in messy_csv.warnings[0].message


def test_without_default_site_a_row_without_site_has_none() -> None:
    parsed = parse_device_file(FIXTURES / "messy.csv")
    assert {row.line: row.device.site for row in parsed.accepted}[6] is None
    assert parsed.where(6) == "line 6"


# --- the messy JSON ------------------------------------------------------------------------


@pytest.fixture
def messy_json() -> ParsedImport:
    return parse_device_file(FIXTURES / "messy.json", default_site="Default")


def test_messy_json_accepts_exactly_the_good_items(messy_json: ParsedImport) -> None:
    accepted = {row.line: row.device for row in messy_json.accepted}
    assert accepted == {
        1: Device(
            serial="SN-J-0001",
            mac="0004f2cc0001",
            host="10.2.0.1",
            model="Trio 8800",
            product_group=ProductGroup.SOUNDSTATION_IP,
            site="Lab",
            ports=DevicePorts(https=8443, ssh=2222),
            credentials="lab-phones",
            tags={"rack": "R1", "owner": "carol"},
            first_seen=datetime(2024, 3, 1, 8, 0, tzinfo=UTC),
        ),
        2: Device(
            serial="SN-J-0002",
            mac="0004f2cc0002",
            model="Studio X50",
            product_group=ProductGroup.VIDEO,
            site="Default",
            tls_fingerprint="sha256:AB:CD",
            last_seen=datetime(2024, 3, 2, 9, 30, tzinfo=UTC),
        ),
        5: Device(
            serial="0004F2CC0005",
            mac="0004f2cc0005",
            model="VVX 601",
            product_group=ProductGroup.SOUNDPOINT_IP,
            site="Default",
        ),
        12: Device(
            serial="12345",
            model="SoundPoint Pro SE-225",
            product_group=ProductGroup.SOUNDPOINT_PRO,
            site="Annex",
        ),
    }


def test_messy_json_reports_exactly_the_bad_items(messy_json: ParsedImport) -> None:
    expected = [
        (3, "product_group", "unknown product group 'teleporters' (known: soundstation,"),
        (4, "last_seen", "'yesterday' is not an ISO 8601 timestamp"),
        (6, "serial", "serial SN-J-0001 already appears on item 1"),
        (7, "ports.snmp", "port 0 is outside 1-65535"),
        (8, "mac", "broadcast"),
        (9, None, "neither a serial number nor a MAC address"),
        (10, "serial_number", "keys 'serial' and 'serial_number' both give the serial"),
        (11, "ports.telnet", "unknown port 'telnet'"),
        (13, "https_port", "port true is not a whole number"),
        (14, "asset", "a tag value must be text, not an object"),
    ]
    assert _rejections(messy_json) == [(line, column) for line, column, _ in expected]
    for row, (_, _, reason) in zip(messy_json.rejected, expected, strict=True):
        assert reason in row.reason
    assert messy_json.warnings == []
    assert messy_json.where(3) == "item 3"


# --- whole-file refusals -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("blank.csv", b"\xef\xbb\xbf \r\n\r\n", "the file is empty"),
        ("header.csv", b"serial,mac\r\n\r\n,,\r\n", "has a header but no rows"),
        ("latin1.csv", b"serial,site\nSN1,M\xfcnchen\n", "byte 0xfc at byte offset 17 (line 2)"),
        ("bom-latin1.csv", b"\xef\xbb\xbfserial\n\xe9\n", "byte 0xe9 at byte offset 10 (line 2)"),
        (
            "noid.csv",
            b"Name,IP Address,Room\nphone,10.0.0.1,12\n",
            "no serial or MAC column (columns found: 'Name', 'IP Address', 'Room')",
        ),
        (
            "twice.csv",
            b"Serial,SN\nA,B\n",
            "columns 'Serial' (column 1) and 'SN' (column 2) both give the serial",
        ),
        ("tagtwice.csv", b"serial,Notes,tag:Notes\nA,x,y\n", "both give tag 'Notes'"),
        ("tagless.csv", b"serial,tag:\nA,x\n", "header 'tag:' names no tag"),
        ("quote.csv", b'serial,notes\nA,ok\nB,"never closed\nC,x\n', "starting on line 3"),
        ("empty.json", b"[]", "the JSON list is empty"),
        ("object.json", b'{"serial": "A"}', "expected a JSON list of device objects, found an"),
        ("strings.json", b'[{"serial": "A"}, "B"]', "item 2 is a string"),
        ("broken.json", b'[{"serial": "A"},\n {"serial": }]', "not valid JSON"),
    ],
)
def test_unusable_files_are_refused_naming_the_problem(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = _write(tmp_path, name, content)
    with pytest.raises(ImportRefused) as refused:
        parse_device_file(path)
    assert message in str(refused.value)
    assert str(path) in str(refused.value)


def test_missing_file_and_directory_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ImportRefused, match="no such file"):
        parse_device_file(tmp_path / "nope.csv")
    with pytest.raises(ImportRefused, match="is a directory"):
        parse_device_file(tmp_path)


# --- format choice, headers, values --------------------------------------------------------


def test_format_is_sniffed_when_the_extension_does_not_say(tmp_path: Path) -> None:
    as_json = parse_device_file(_write(tmp_path, "list.txt", ' \n[{"serial": "a1"}]'))
    as_csv = parse_device_file(_write(tmp_path, "list.dat", "serial\na1\n"))
    assert (as_json.fmt, as_json.devices) == ("json", [Device(serial="A1")])
    assert (as_csv.fmt, as_csv.devices) == ("csv", [Device(serial="A1")])


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolon_or_tab_separated_files_are_read_too(tmp_path: Path, sep: str) -> None:
    parsed = _csv(tmp_path, f"Serial{sep}MAC{sep}Location", f"s1{sep}00:04:f2:00:00:01{sep}HQ, 2")
    assert parsed.devices == [Device(serial="S1", mac="0004f2000001", site="HQ, 2")]


def test_explicit_format_overrides_the_extension(tmp_path: Path) -> None:
    path = _write(tmp_path, "export.json", "serial,mac\nA1,0004f2000001\n")
    parsed = parse_device_file(path, fmt="csv")
    assert parsed.devices == [Device(serial="A1", mac="0004f2000001")]
    with pytest.raises(ImportRefused, match="not valid JSON"):
        parse_device_file(path)


@pytest.mark.parametrize(
    ("header", "field", "cell", "value"),
    [
        ("SERIALNUMBER", "serial", "x1", "X1"),
        ("Serial-Number", "serial", "x1", "X1"),
        ("sn", "serial", "x1", "X1"),
        ("MacAddress", "mac", "00:04:F2:00:00:09", "0004f2000009"),
        ("mac_address", "mac", "0004.f200.0009", "0004f2000009"),
        ("Hostname", "host", "vvx.example.net", "vvx.example.net"),
        ("IP Address", "host", "10.0.0.9", "10.0.0.9"),
        ("address", "host", "10.0.0.9", "10.0.0.9"),
        ("Location", "site", "Berlin", "Berlin"),
        ("Credential Profile", "credentials", "phones", "phones"),
        ("Firmware", "firmware", "8.0.1.1234", "8.0.1.1234"),
        ("Driver", "driver", "poly-uc", "poly-uc"),
        ("TLS Fingerprint", "tls_fingerprint", "AB:CD", "AB:CD"),
        ("ssh_host_key", "ssh_host_key", "ssh-ed25519 AAAA", "ssh-ed25519 AAAA"),
    ],
)
def test_header_aliases_are_case_and_separator_insensitive(
    tmp_path: Path, header: str, field: str, cell: str, value: str
) -> None:
    other = "mac" if field == "serial" else "serial"
    other_cell = "0004f2000001" if other == "mac" else "S1"
    parsed = _csv(tmp_path, f"{other},{header}", f"{other_cell},{cell}")
    # a MAC-only row needs a UC model to use the MAC as serial; serial-only rows are fine
    if field == "serial":
        assert parsed.devices[0].serial == value
    else:
        assert getattr(parsed.devices[0], field) == value
    assert parsed.devices[0].tags == {}


@pytest.mark.parametrize(
    ("header", "port"), [("snmp_port", "snmp"), ("HTTPS Port", "https"), ("SSH-Port", "ssh")]
)
def test_port_columns(tmp_path: Path, header: str, port: str) -> None:
    parsed = _csv(tmp_path, f"serial,{header}", "S1,10161", "S2,")
    assert [getattr(d.ports, port) for d in parsed.devices] == [10161, None]


@pytest.mark.parametrize("spelling", ["SoundPoint IP (VoIP)", "SOUNDPOINT_IP", "soundpoint-ip"])
def test_product_group_accepts_value_name_or_title(tmp_path: Path, spelling: str) -> None:
    parsed = _csv(tmp_path, "serial,model,Product Group", f'S1,Studio X50,"{spelling}"')
    assert parsed.devices[0].product_group is ProductGroup.SOUNDPOINT_IP  # given beats model


def test_unknown_model_is_accepted_with_a_warning(tmp_path: Path) -> None:
    parsed = _csv(tmp_path, "serial,model", "S1,Acme Phone 9")
    assert parsed.devices == [Device(serial="S1", model="Acme Phone 9")]
    assert [(w.line, w.column) for w in parsed.warnings] == [(2, "model")]
    assert "not in the catalogue" in parsed.warnings[0].message


def test_timestamps_keep_their_offset_and_naive_ones_are_utc(tmp_path: Path) -> None:
    parsed = _csv(
        tmp_path,
        "serial,first_seen,last_seen",
        "S1,2024-05-01T12:00:00+02:00,2024-05-02 08:00:00",
        "S2,2024-05-01T12:00:00Z,not-a-date",
    )
    device = parsed.devices[0]
    assert device.first_seen == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert device.first_seen is not None
    assert device.first_seen.utcoffset() == timedelta(hours=2)
    assert device.last_seen == datetime(2024, 5, 2, 8, 0, tzinfo=timezone.utc)  # noqa: UP017
    assert _rejections(parsed) == [(3, "last_seen")]


def test_unknown_columns_and_tag_columns_become_tags(tmp_path: Path) -> None:
    parsed = _csv(
        tmp_path,
        "serial,Asset Tag,tag:cost center, TAG:floor ",
        "S1,A-17,CC-9,3",
        "S2,,, ",
    )
    assert [d.tags for d in parsed.devices] == [
        {"Asset Tag": "A-17", "cost center": "CC-9", "floor": "3"},
        {},
    ]


def test_a_row_with_more_cells_than_the_header_is_rejected(tmp_path: Path) -> None:
    parsed = _csv(tmp_path, "serial,site", "S1,HQ,,", "S2,HQ,oops")
    assert [d.serial for d in parsed.devices] == ["S1"]  # trailing empty cells are harmless
    assert _rejections(parsed) == [(3, None)]
    assert "has 3 cells but the header has 2 columns" in parsed.rejected[0].reason


def test_cells_under_a_header_without_name_are_ignored_with_a_warning(tmp_path: Path) -> None:
    parsed = _csv(tmp_path, "serial,,site", "S1,junk,HQ")
    assert parsed.devices == [Device(serial="S1", site="HQ")]
    assert [(w.line, w.column) for w in parsed.warnings] == [(1, None)]
    assert "column(s) 2 have no header" in parsed.warnings[0].message


def test_a_row_with_several_problems_reports_each(tmp_path: Path) -> None:
    parsed = _csv(
        tmp_path, "serial,mac,ssh_port,last_seen", "S1,0004f2zz0001,0,tomorrow", "S2,,22,"
    )
    assert _rejections(parsed) == [(2, "mac"), (2, "ssh_port"), (2, "last_seen")]
    assert parsed.rejected_lines == [2]
    assert [d.serial for d in parsed.devices] == ["S2"]


def test_invalid_serial_is_rejected_with_the_reason(tmp_path: Path) -> None:
    parsed = _csv(tmp_path, "serial,site", f"{'X' * 65},HQ", "OK1,HQ")
    assert _rejections(parsed) == [(2, "serial")]
    assert "65 characters long, the limit is 64" in parsed.rejected[0].reason


def test_duplicates_count_rows_that_were_rejected_for_other_reasons(tmp_path: Path) -> None:
    parsed = _csv(tmp_path, "serial,https_port", "S1,99999", "s1,443")
    assert _rejections(parsed) == [(2, "https_port"), (3, "serial")]
    assert "already appears on line 2" in parsed.rejected[1].reason


def test_mac_only_row_of_a_uc_phone_uses_the_mac_as_serial(tmp_path: Path) -> None:
    parsed = _csv(
        tmp_path,
        "mac,model",
        "00-04-F2-01-02-03,Polycom VVX 450",
        "0004f2010204,",
        "0004f2010205,RealPresence DMA 7000",
    )
    assert [(d.serial, d.mac) for d in parsed.devices] == [("0004F2010203", "0004f2010203")]
    assert _rejections(parsed) == [(3, "serial"), (4, "serial")]
    assert "no model given" in parsed.rejected[0].reason


def test_json_accepts_aliases_nested_ports_and_tags(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "d.json",
        '[{"Serial Number": "a1", "MAC Address": "0004.f200.0001", "IP": "10.0.0.1",'
        ' "ports": {"snmp_port": 1161}, "tags": {"rack": 4, "spare": true, "none": null},'
        ' "tag:floor": "2", "note": ""}]',
    )
    assert parse_device_file(path).devices == [
        Device(
            serial="A1",
            mac="0004f2000001",
            host="10.0.0.1",
            ports=DevicePorts(snmp=1161),
            tags={"rack": "4", "spare": "true", "floor": "2"},
        )
    ]


# --- the fast path: each row validated once -------------------------------------------------


def test_accepted_devices_equal_what_device_validation_makes(tmp_path: Path) -> None:
    """The importer builds checked rows without validating them again; the result must be the
    Device pydantic would make (values, fields set, repr), including a quoted formula cell."""
    parsed = _csv(
        tmp_path,
        "serial,mac,model,host,site,https_port,first_seen,tag:room,firmware",
        "s1,00:04:f2:00:00:01,VVX 450,[fe80::1],HQ,8443,2024-05-01T12:00:00,101,",
        "s2,00:04:f2:00:00:02,Studio X50,cam.example.,,,,,'=1+2",
        "s3,,Group Series 500,10.0.0.3,'\tBranch,,2024-05-01T12:00:00+02:00,'@x,",
        "s4,00:04:f2:00:00:04,,host/evil,,,,,",
    )
    assert _rejections(parsed) == [(5, "host")]
    with pytest.raises(ValidationError) as refused:
        Device.model_validate({"serial": "s9", "host": "host/evil"})
    assert parsed.rejected[0].reason == refused.value.errors()[0]["msg"]
    for device in parsed.devices:
        given = {name: getattr(device, name) for name in device.model_fields_set}
        validated = Device.model_validate(given)
        assert device == validated
        assert repr(device) == repr(validated)
        assert device.model_fields_set == validated.model_fields_set
    assert parsed.devices[0].host == "fe80::1"
    assert parsed.devices[0].ports == DevicePorts(https=8443)
    assert parsed.devices[0].first_seen == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parsed.devices[2].site == "Branch"


def test_a_lone_surrogate_in_json_is_still_rejected_by_validation(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.json", '[{"serial": "s1", "model": "x\\ud800"}]')
    parsed = parse_device_file(path)
    assert _rejections(parsed) == [(1, "model")]
    assert "valid string" in parsed.rejected[0].reason
