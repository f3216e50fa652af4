"""Export then import must give back exactly the same devices, in CSV and in JSON."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.provisional import domains

from inventory.catalog import MODEL_FAMILIES, ProductGroup, product_group_for_model
from inventory.exporter import CSV_COLUMNS, Format, write_devices
from inventory.importer import parse_csv_text, parse_device_file, parse_json_text
from inventory.models import Device, DevicePorts

_chars = st.characters(blacklist_categories=("Cc", "Cs"))
formulaic = st.sampled_from(
    ["=1+1", "-5", "+3.5", "+41 44", "-2+3", "@SUM(A1)", "'=x", "''-2", "'-5", "-", "'", "'x"]
)
"""Cells a spreadsheet would run, plain numbers, and quotes: CSV neutralises some of them."""
texts = st.text(alphabet=_chars, min_size=1, max_size=20).map(str.strip).filter(bool) | formulaic
multiline = st.builds(lambda a, sep, b: a + sep + b, texts, st.sampled_from(["\n", "\r\n"]), texts)
values = st.one_of(texts, multiline, st.sampled_from(['say "hi", then', "tag:x"]))
optional_texts = st.none() | texts
hosts = st.none() | st.ip_addresses().map(str) | domains()
ports = st.none() | st.integers(min_value=1, max_value=65535)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
timestamps = st.none() | st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC) | offsets
)
models = st.none() | st.sampled_from([m for f in MODEL_FAMILIES for m in f.models]) | texts
macs = st.none() | st.integers(min_value=1, max_value=2**48 - 1).map(
    lambda n: f"{n & ~(1 << 40):012x}"  # clear the group bit: unicast
).filter(lambda mac: mac != "000000000000")


@st.composite
def devices(draw: st.DrawFn) -> Device:
    """Devices as an import produces them: product group filled whenever the model has one."""
    model = draw(models)
    group = draw(st.none() | st.sampled_from(ProductGroup))
    if group is None and model is not None:
        group = product_group_for_model(model)
    return Device(
        serial=draw(texts.filter(lambda s: len(s.upper()) <= 64)),
        mac=draw(macs),
        model=model,
        product_group=group,
        driver=draw(st.none() | st.sampled_from(["poly-uc", "polycom-gs", "custom"])),
        host=draw(hosts),
        ports=DevicePorts(snmp=draw(ports), https=draw(ports), ssh=draw(ports)),
        site=draw(optional_texts),
        firmware=draw(optional_texts),
        credentials=draw(optional_texts),
        tags=draw(st.dictionaries(texts, values, max_size=4)),
        tls_fingerprint=draw(optional_texts),
        ssh_host_key=draw(optional_texts),
        first_seen=draw(timestamps),
        last_seen=draw(timestamps),
    )


fleets = st.lists(
    devices(),
    min_size=1,
    max_size=8,
    unique_by=(lambda d: d.serial, lambda d: d.mac or ("no mac", d.serial)),
)


def _export(fleet: list[Device], fmt: Format) -> str:
    out = io.StringIO(newline="")
    assert write_devices(fleet, fmt, out) == len(fleet)
    return out.getvalue()


@settings(max_examples=150, deadline=None)
@given(fleets)
def test_csv_export_then_import_reproduces_every_device(fleet: list[Device]) -> None:
    parsed = parse_csv_text(_export(fleet, "csv"))
    assert parsed.rejected == []
    assert parsed.devices == fleet


@settings(max_examples=150, deadline=None)
@given(fleets)
def test_json_export_then_import_reproduces_every_device(fleet: list[Device]) -> None:
    parsed = parse_json_text(_export(fleet, "json"))
    assert parsed.rejected == []
    assert parsed.devices == fleet


SAMPLE = [
    Device(
        serial="SN-1",
        mac="482567123456",
        model="VVX 450",
        product_group=ProductGroup.SOUNDPOINT_IP,
        driver="poly-uc",
        host="10.0.0.1",
        ports=DevicePorts(https=8443),
        site="HQ",
        firmware="8.0.1",
        credentials="phones",
        tags={"rack": "R1", "notes": "line one\nline two"},
        tls_fingerprint="AB:CD",
        ssh_host_key="ssh-ed25519 AAAA",
        first_seen=datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
        last_seen=datetime(2024, 6, 1, 12, 0, 0, 123456, tzinfo=UTC),
    ),
    Device(serial="SN-2", model="SoundStation 2", product_group=ProductGroup.SOUNDSTATION),
]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_file_imports_back_through_parse_device_file(tmp_path: Path, fmt: Format) -> None:
    path = tmp_path / f"inventory.{fmt}"
    with path.open("w", encoding="utf-8", newline="") as handle:
        write_devices(SAMPLE, fmt, handle)
    parsed = parse_device_file(path)
    assert parsed.devices == SAMPLE
    assert parsed.warnings == []


def test_csv_has_fixed_columns_then_sorted_tags_and_spreadsheet_safe_values() -> None:
    """A MAC is 12 lower-case hex digits in every CSV, as in JSON (PRODUCT.md)."""
    lines = _export(SAMPLE, "csv").splitlines()
    assert lines[0] == ",".join([*CSV_COLUMNS, "tag:notes", "tag:rack"])
    assert lines[1].startswith("SN-1,482567123456,VVX 450,soundpoint-ip,poly-uc,10.0.0.1,")
    assert "2024-05-01T12:00:00+02:00,2024-06-01T12:00:00.123456+00:00" in lines[1]
    assert lines[1].endswith(',"line one')


def test_json_is_a_list_with_canonical_mac_and_nested_ports_and_tags() -> None:
    data = json.loads(_export(SAMPLE, "json"))
    assert data[0]["mac"] == "482567123456"
    assert data[0]["ports"] == {"snmp": None, "https": 8443, "ssh": None}
    assert data[0]["tags"] == {"rack": "R1", "notes": "line one\nline two"}
    assert data[0]["first_seen"] == "2024-05-01T12:00:00+02:00"
    assert data[1]["mac"] is None
    assert json.loads(_export([], "json")) == []


class _Recorder(io.StringIO):
    """Remembers the size of every write, to see that output is streamed."""

    def __init__(self) -> None:
        super().__init__(newline="")
        self.sizes: list[int] = []

    def write(self, text: str) -> int:
        self.sizes.append(len(text))
        return super().write(text)


def _one_shot(count: int) -> Iterator[Device]:
    for n in range(count):
        yield Device(serial=f"SN{n:05d}", mac=f"0004f2{n:06x}", tags={"rack": str(n % 3)})


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_streams_device_by_device(fmt: Format) -> None:
    out = _Recorder()
    tag_names = ["rack"] if fmt == "csv" else None
    assert write_devices(_one_shot(2000), fmt, out, tag_names=tag_names) == 2000
    assert len(out.sizes) >= 2000
    assert max(out.sizes) < 500
    parsed = parse_csv_text(out.getvalue()) if fmt == "csv" else parse_json_text(out.getvalue())
    assert parsed.devices == list(_one_shot(2000))


def test_csv_export_refuses_a_tag_missing_from_the_given_tag_names() -> None:
    with pytest.raises(ValueError, match=r"device SN00000 has tags \['rack'\] missing"):
        write_devices(_one_shot(1), "csv", io.StringIO(), tag_names=[])
