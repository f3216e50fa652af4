"""`polyfleet inventory …` as users run it: exit codes, streams, and the store after each."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.cli import polyfleet

CSV = (
    "\ufeffSerial Number,MAC Address,Model,IP Address,Site,Room\r\n"
    "0004F2AABB01,00:04:F2:AA:BB:01,VVX 450,10.0.0.1,hq,101\r\n"
    "8L2003534AFC,64-16-7f-00-00-02,Studio X50,10.0.0.2,branch,\r\n"
    "BAD1,zz:zz,VVX 250,10.0.0.3,hq,\r\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def serials(db_url: str) -> list[str]:
    listed = polyfleet(db_url, "inventory", "list", "-o", "json")
    assert listed.code == 0, listed.stderr
    return [d["serial"] for d in listed.json()]


def test_import_reports_rejected_rows_and_imports_the_rest(db_url: str, tmp_path: Path) -> None:
    result = polyfleet(db_url, "inventory", "import", str(write(tmp_path, "f.csv", CSV)))
    assert result.code == 1
    assert "f.csv:4: column MAC Address rejected" in result.stderr
    assert "not hex digits" in result.stderr
    assert result.stdout == ""
    assert serials(db_url) == ["0004F2AABB01", "8L2003534AFC"]


def test_strict_import_writes_nothing_when_a_row_is_rejected(db_url: str, tmp_path: Path) -> None:
    result = polyfleet(
        db_url, "inventory", "import", "--strict", str(write(tmp_path, "f.csv", CSV))
    )
    assert result.code == 1
    assert "nothing imported" in result.stderr
    assert serials(db_url) == []


def test_dry_run_writes_nothing_and_json_summary_goes_to_stdout(
    db_url: str, tmp_path: Path
) -> None:
    result = polyfleet(
        db_url, "inventory", "import", "--dry-run", "-o", "json", str(write(tmp_path, "f.csv", CSV))
    )
    assert result.code == 1
    summary = result.json()
    assert summary["written"] is False
    assert summary["inserted"] == 2
    assert [(r["line"], r["column"]) for r in summary["rejected"]] == [(4, "MAC Address")]
    assert serials(db_url) == []


def test_unusable_files_exit_2_and_leave_the_store_unchanged(db_url: str, tmp_path: Path) -> None:
    good = write(tmp_path, "good.csv", "serial,mac\nKEEP1,0004f2000001\n")
    assert polyfleet(db_url, "inventory", "import", str(good)).code == 0
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("serial,site\nA1,Z\xfcrich\n".encode("latin-1"))
    cases = {
        "missing": tmp_path / "missing.csv",
        "empty": write(tmp_path, "empty.csv", ""),
        "no id column": write(tmp_path, "noid.csv", "model,site\nVVX 450,hq\n"),
        "not utf-8": latin1,
    }
    for what, path in cases.items():
        result = polyfleet(db_url, "inventory", "import", str(path))
        assert result.code == 2, what
        assert "error:" in result.stderr, what
    assert serials(db_url) == ["KEEP1"]


def test_import_conflicting_identity_is_reported_with_its_line(db_url: str, tmp_path: Path) -> None:
    first = write(tmp_path, "a.csv", "serial,mac\nA1,0004f2000001\nB1,0004f2000002\n")
    assert polyfleet(db_url, "inventory", "import", str(first)).code == 0
    swapped = write(tmp_path, "b.csv", "serial,mac,site\nNEW1,,x\nA1,0004f2000002,y\n")
    result = polyfleet(db_url, "inventory", "import", str(swapped))
    assert result.code == 1
    assert "b.csv:3: column mac rejected: identity conflict" in result.stderr
    shown = polyfleet(db_url, "inventory", "show", "A1", "-o", "json").json()[0]
    assert shown["mac"] == "0004f2000001"  # JSON: 12 lower-case hex digits
    assert shown["site"] is None


def test_export_then_import_into_an_empty_store_reproduces_it(db_url: str, tmp_path: Path) -> None:
    polyfleet(db_url, "inventory", "import", str(write(tmp_path, "f.csv", CSV)))
    polyfleet(db_url, "inventory", "add", "SS2-1", "--model", "SoundStation 2", "--tag", "room=5")
    for fmt in ("csv", "json"):
        exported = tmp_path / f"out.{fmt}"
        assert polyfleet(db_url, "inventory", "export", str(exported), "--format", fmt).code == 0
        other = f"sqlite:///{tmp_path / f'copy-{fmt}.db'}"
        assert polyfleet(other, "inventory", "import", str(exported)).code == 0
        original = polyfleet(db_url, "inventory", "list", "-o", "json").json()
        assert polyfleet(other, "inventory", "list", "-o", "json").json() == original


def test_add_show_remove_by_any_mac_spelling(db_url: str) -> None:
    added = polyfleet(
        db_url, "inventory", "add", "0004f2aabb01", "--mac", "0004.f2aa.bb01", "-o", "json"
    )
    assert added.code == 0, added.stderr
    assert added.json()[0]["serial"] == "0004F2AABB01"
    shown = polyfleet(db_url, "inventory", "show", "00-04-F2-AA-BB-01", "-o", "json")
    assert shown.json()[0]["mac"] == "0004f2aabb01"
    table = polyfleet(db_url, "inventory", "show", "00-04-F2-AA-BB-01")
    assert "00:04:f2:aa:bb:01" in table.stdout  # tables may show colons
    assert polyfleet(db_url, "inventory", "remove", "00:04:f2:aa:bb:01").code == 0
    missing = polyfleet(db_url, "inventory", "show", "0004F2AABB01")
    assert missing.code == 1
    assert "no device with serial or MAC" in missing.stderr


def test_add_rejects_bad_input_with_a_reason_and_stores_nothing(db_url: str) -> None:
    result = polyfleet(db_url, "inventory", "add", "X1", "--mac", "01:00:5e:00:00:01")
    assert result.code == 1
    assert "multicast" in result.stderr
    assert polyfleet(db_url, "inventory", "add", "X1", "--tag", "novalue").code == 1
    assert polyfleet(db_url, "inventory", "add", "X1", "--credentials", "nope").code == 1
    assert serials(db_url) == []


def test_list_filters_by_site_and_renders_csv(db_url: str, tmp_path: Path) -> None:
    polyfleet(db_url, "inventory", "import", str(write(tmp_path, "f.csv", CSV)))
    result = polyfleet(db_url, "inventory", "list", "--site", "branch", "-o", "csv")
    assert result.code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("serial,mac,model")
    assert lines[1:] == ["8L2003534AFC,64167f000002,Studio X50,video,branch,10.0.0.2,,"]


def test_messy_real_world_csv_imports_exactly_the_right_rows(db_url: str) -> None:
    messy = Path(__file__).parent.parent / "fixtures" / "import" / "messy.csv"
    result = polyfleet(db_url, "inventory", "import", str(messy), "--site", "Default", "-o", "json")
    assert result.code == 1
    summary = result.json()
    assert sorted({r["line"] for r in summary["rejected"]}) == [8, 9, 10, 11, 12, 13, 17, 19]
    assert summary["rejected_rows"] == 8
    assert "8 row(s) rejected" in result.stderr
    assert "MAC 00:11:22:33:44:55 is not in a Poly OUI" in result.stderr
    assert serials(db_url) == [
        "0004F2AABB16",
        "SN-ANALOG-0001",
        "SN-FOREIGN",
        "SN-GS-0004",
        "SN-NOTAG",
        "SN-TRIO-0003",
        "SN-VVX-0001",
        "SN-VVX-0002",
    ]
    trio = polyfleet(db_url, "inventory", "show", "0004.f2aa.bb03", "-o", "json").json()[0]
    assert (trio["site"], trio["ports"]["https"]) == ("Default", 8443)


def test_show_lists_the_newest_observations_as_many_as_the_setting_keeps(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An analog phone cannot be read, but each scan of it is recorded (and says so)."""
    assert polyfleet(db_url, "inventory", "add", "SS2-1", "--model", "SoundStation 2").code == 0
    fresh = polyfleet(db_url, "inventory", "show", "SS2-1", "-o", "json").json()[0]
    assert fresh["observations"] == []
    monkeypatch.setenv("POLYFLEET_OBSERVATION_HISTORY", "2")
    for _ in range(3):
        scanned = polyfleet(db_url, "scan")
        assert scanned.code == 0, scanned.stderr
    shown = polyfleet(db_url, "inventory", "show", "ss2-1", "-o", "json").json()[0]
    assert shown["serial"] == "SS2-1"  # the device's keys are all still there
    history = shown["observations"]
    assert [(o["reachable"], o["error_kind"], o["licenses"]) for o in history] == [
        (False, "not_supported", None)
    ] * 2
    assert history[0]["observed_at"] > history[1]["observed_at"]
    table = polyfleet(db_url, "inventory", "show", "SS2-1")
    assert "last 2 of 2 observation(s), newest first" in table.stdout
    assert "unknown: not read (unreachable)" in table.stdout
    csv_row = polyfleet(db_url, "inventory", "show", "SS2-1", "-o", "csv").stdout
    assert "observations" not in csv_row  # CSV stays one device row
