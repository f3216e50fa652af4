"""Import files read as bounded streams: limits, positions across chunks, nesting, batches."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from inventory import input_files
from inventory.contract_files import parse_contract_file
from inventory.errors import ImportRefused
from inventory.importer import parse_device_file, read_device_batches
from inventory.input_files import ReadLimits, parse_toml, read_small_text
from tests.unit.inventory.test_importer import _write


def _rows(count: int, start: int = 0) -> list[str]:
    return [f"SN{i:07d},0004f2{i:06x}" for i in range(start, start + count)]


def test_dev_zero_is_refused_after_one_row_limit() -> None:
    with pytest.raises(ImportRefused, match="line 1 is longer than the row limit of 1 MiB"):
        parse_device_file(Path("/dev/zero"), fmt="csv")


def test_dev_zero_as_json_is_refused_as_not_json() -> None:
    with pytest.raises(ImportRefused, match="not valid JSON"):
        parse_device_file(Path("/dev/zero"), fmt="json")


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = _write(tmp_path, "big.csv", "serial\n" + "A1\n" * 100)
    with pytest.raises(ImportRefused, match=r"larger than the import limit of 100 bytes"):
        parse_device_file(path, limits=ReadLimits(max_bytes=100))
    assert len(parse_device_file(path, limits=ReadLimits(max_bytes=1000)).rejected) == 99


def test_a_stream_over_the_size_limit_is_refused_while_reading(tmp_path: Path) -> None:
    """A pipe or device has no size up front: the limit counts what was read."""
    with pytest.raises(ImportRefused, match="larger than the import limit of 1 KiB"):
        parse_device_file(Path("/dev/zero"), fmt="csv", limits=ReadLimits(max_bytes=1024))


def test_a_line_over_the_row_limit_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "long.csv", "serial,notes\nA1,short\nB2," + "x" * 600 + "\n")
    with pytest.raises(ImportRefused, match="line 3 is longer than the row limit of 512 bytes"):
        parse_device_file(path, limits=ReadLimits(max_row=512))


def test_lines_and_items_that_straddle_read_chunks_are_whole(tmp_path: Path) -> None:
    count = 12_000  # ~290 KB of CSV, ~500 KB of JSON: more than one 256 KiB read
    csv_path = _write(tmp_path, "many.csv", "serial,mac\r\n" + "\r\n".join(_rows(count)) + "\r\n")
    items = [{"serial": f"SN{i:07d}", "mac": f"0004f2{i:06x}"} for i in range(count)]
    json_path = _write(tmp_path, "many.json", json.dumps(items, indent=1))
    for path in (csv_path, json_path):
        parsed = parse_device_file(path, limits=ReadLimits(max_row=4096))
        assert parsed.rejected == []
        assert [d.serial for d in parsed.devices] == [f"SN{i:07d}" for i in range(count)]


def test_duplicates_and_line_numbers_hold_across_batches(tmp_path: Path) -> None:
    rows = _rows(25)
    rows[20] = "SN0000003,0004f2ffffff"  # serial of line 5, in the third batch of 10
    path = _write(tmp_path, "dups.csv", "serial,mac\n" + "\n".join(rows) + "\nBAD,zz\n")
    batches = list(read_device_batches(path, batch_rows=10))
    assert [len(b.accepted) + len(b.rejected) for b in batches] == [10, 10, 6]
    rejected = [(r.line, r.reason) for b in batches for r in b.rejected]
    assert rejected[0] == (22, "serial SN0000003 already appears on line 5")
    assert rejected[1][0] == 27


def test_json_errors_name_the_line_and_column_in_the_whole_file(tmp_path: Path) -> None:
    good = ",\n".join(json.dumps({"serial": f"SN{i:07d}"}) for i in range(12_000))
    document = "[\n" + good + ',\n  {"serial": }\n]'
    with pytest.raises(json.JSONDecodeError) as whole:  # what json says, reading it whole
        json.loads(document)
    assert (whole.value.lineno, whole.value.colno) == (12002, 14)
    path = _write(tmp_path, "broken.json", document)
    with pytest.raises(ImportRefused, match=r"\(Expecting value at line 12002 column 14\)"):
        parse_device_file(path, limits=ReadLimits(max_row=4096))


def test_not_utf8_names_the_byte_offset_and_line_past_the_first_chunk(tmp_path: Path) -> None:
    body = "serial\nA1\n" + "\n" * 300_000  # 300 KB, then a Latin-1 byte
    path = _write(tmp_path, "latin.csv", body.encode() + b"Z\xfcrich\n")
    offset = len(body) + 1
    with pytest.raises(ImportRefused, match=rf"byte 0xfc at byte offset {offset} \(line 300003\)"):
        parse_device_file(path)


@pytest.mark.parametrize(
    ("name", "document"),
    [
        ("list.json", "[" * 100_000 + "]" * 100_000),
        ("item.json", '[{"serial": "A1"}, ' + '{"a": ' * 50_000 + "1" + "}" * 50_000 + "]"),
    ],
)
def test_deeply_nested_json_is_refused_not_a_recursion_error(
    tmp_path: Path, name: str, document: str
) -> None:
    path = _write(tmp_path, name, document)
    with pytest.raises(ImportRefused, match="nested too deeply"):
        parse_device_file(path, limits=ReadLimits(max_row=4 * input_files.MIB))


def test_deeply_nested_contract_json_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "contracts.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ImportRefused, match="nested too deeply"):
        parse_contract_file(path)


def test_deeply_nested_toml_is_a_decode_error() -> None:
    with pytest.raises(tomllib.TOMLDecodeError, match="nested too deeply"):
        parse_toml("a = " + "[" * 100_000)


def test_small_files_are_read_bounded(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="larger than 16 MiB") as too_big:
        read_small_text(Path("/dev/zero"))
    assert too_big.value.strerror is not None
    assert read_small_text(_write(tmp_path, "c.toml", "db = 'x'\n")) == "db = 'x'\n"
