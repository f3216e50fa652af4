"""Parsing contract files: multi-row contracts, serial lists, and line-numbered rejections."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from inventory.catalog import ProductGroup
from inventory.contract_files import parse_contract_file, parse_contracts_csv, parse_contracts_json
from inventory.errors import ImportRefused
from inventory.models import ContractKind, Pricing


def test_rows_of_one_contract_are_merged_and_serial_lists_are_split() -> None:
    parsed = parse_contracts_csv(
        "Contract Number,Type,Serials,Start Date,End Date,Pricing,Region\n"
        "C-1,support,0004f2aabb01;0004F2AABB02,2026-01-01,2026-12-31,,\n"
        "C-1,support,0004F2AABB03 0004F2AABB04,2026-01-01,2026-12-31,,\n"
        'C-2,Extended Reactivation,"SN1, SN2",2026-01-01,2027-12-31,per term,EMEA\n'
    )
    assert parsed.rejected == []
    assert [item.lines for item in parsed.accepted] == [(2, 3), (4,)]
    first, second = parsed.contracts
    assert first.serials == {"0004F2AABB01", "0004F2AABB02", "0004F2AABB03", "0004F2AABB04"}
    assert (first.kind, first.pricing, first.region) == (
        ContractKind.SUPPORT,
        Pricing.PER_DEVICE,
        None,
    )
    assert (second.kind, second.pricing, second.region) == (
        ContractKind.EXTENDED_REACTIVATION,
        Pricing.PER_TERM,
        "EMEA",
    )
    assert second.end == date(2027, 12, 31)


def test_product_group_contracts() -> None:
    parsed = parse_contracts_csv(
        "number,kind,product_groups,start,end\n"
        "W-1,warranty,Video Products; network,2026-01-01,2026-12-31\n"
    )
    assert parsed.contracts[0].product_groups == {ProductGroup.VIDEO, ProductGroup.NETWORK}
    assert parsed.contracts[0].serials == frozenset()


def test_every_bad_row_is_reported_with_its_line_and_the_contract_is_not_half_imported() -> None:
    parsed = parse_contracts_csv(
        "number,kind,serial,start,end\n"
        "C-1,support,SN1,2026-01-01,2026-12-31\n"
        "C-1,support,SN2,2026-01-01,2026-12-31\n"
        "C-1,support,S N\x003,2026-01-01,2026-12-31\n"  # a bad serial sinks all of C-1
        "C-2,lifetime,SN4,2026-01-01,2026-12-31\n"
        "C-3,warranty,SN5,2026-12-31,2026-01-01\n"
        "C-4,warranty,SN6,01/02/2026,2026-12-31\n"
        "C-5,warranty,,2026-01-01,2026-12-31\n"
        ",warranty,SN7,2026-01-01,2026-12-31\n"
        "C-6,warranty,SN8,2026-01-01,2026-12-31\n"
        "C-6,support,SN9,2026-01-01,2026-12-31\n"
        "C-7,warranty,SN10,2026-01-01,2026-12-31\n"
    )
    assert [c.number for c in parsed.contracts] == ["C-7"]
    reasons = {(r.line, r.column): r.reason for r in parsed.rejected}
    assert reasons[(2, None)] == "contract C-1 is not imported because line 4 was rejected"
    assert reasons[(3, None)] == "contract C-1 is not imported because line 4 was rejected"
    assert (4, "serial") in reasons
    assert reasons[(5, "kind")].startswith("unknown kind 'lifetime' (known: warranty, support")
    assert reasons[(6, "end")] == "ends (2026-01-01) before it starts (2026-12-31)"
    assert reasons[(7, "start")] == "start '01/02/2026' is not a date (YYYY-MM-DD)"
    assert reasons[(8, None)] == "covers no serial and no product group"
    assert reasons[(9, "number")] == "number is missing"
    assert (
        reasons[(11, "kind")] == "contract C-6: kind 'support' differs from 'warranty' on line 10"
    )
    assert reasons[(10, None)] == "contract C-6 is not imported because line 11 was rejected"
    assert parsed.rejected_lines == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]


def test_json_lists_serials_as_a_list_or_text() -> None:
    parsed = parse_contracts_json(
        '[{"number": "C-1", "kind": "warranty", "serials": ["SN1", "sn2"],'
        ' "start": "2026-01-01", "end": "2026-12-31"},'
        ' {"number": "C-2", "kind": "support", "serials": "SN3;SN4",'
        ' "start": "2026-01-01", "end": "2026-12-31", "note": "x"},'
        ' {"number": "C-3", "kind": "support", "serials": 5,'
        ' "start": "2026-01-01", "end": "2026-12-31"}]'
    )
    assert [sorted(c.serials) for c in parsed.contracts] == [["SN1", "SN2"], ["SN3", "SN4"]]
    assert [(r.line, r.column) for r in parsed.rejected] == [(3, "serials")]
    assert [w.message for w in parsed.warnings] == ["unknown key 'note' ignored"]
    assert parsed.where(3) == "item 3"


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("empty.csv", "", "the file is empty"),
        ("header.csv", "number,kind,serial,start,end\n", "header but no rows"),
        ("cols.csv", "number,serial\nC-1,SN1\n", "missing column(s) kind, start, end"),
        ("nosn.csv", "number,kind,start,end\nC-1,support,2026-01-01,2026-12-31\n", "serial or"),
        ("bad.json", "{", "not valid JSON"),
        ("obj.json", '{"number": "C-1"}', "JSON list"),
    ],
)
def test_unusable_files_are_refused(tmp_path: Path, name: str, text: str, words: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ImportRefused, match=r"cannot import .*") as caught:
        parse_contract_file(path)
    assert words in str(caught.value)


def test_a_missing_or_binary_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImportRefused, match="no such file"):
        parse_contract_file(tmp_path / "nope.csv")
    binary = tmp_path / "latin1.csv"
    binary.write_bytes(b"number,kind,serial,start,end\nC-\xe9,support,SN1,2026-01-01,2026-12-31\n")
    with pytest.raises(ImportRefused, match="not UTF-8"):
        parse_contract_file(binary)
