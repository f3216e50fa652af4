"""`polyfleet contracts …` and `polyfleet quote` as users run them: exit codes, streams, JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.eligibility import RULES
from tests.e2e.cli import Outcome, polyfleet

FIXTURES = Path(__file__).parents[1] / "fixtures" / "policy"
INVENTORY = (
    "serial,mac,model,site\n"
    "0004F2AABB01,00:04:f2:aa:bb:01,VVX 450,hq-berlin\n"
    "0004F2AABB02,00:04:f2:aa:bb:02,Trio 8800,somewhere\n"
    "8L2003534AFC,64:16:7f:00:00:02,Studio X50,hq-berlin\n"
)
CONTRACTS = (
    "number,kind,serial,start,end\n"
    "C-1,extended-reactivation,0004F2AABB01,2026-01-01,2026-12-31\n"
    "C-1,extended-reactivation,8L2003534AFC,2026-01-01,2026-12-31\n"
    "C-2,support,0004F2AABB02,2024-01-01,2025-12-31\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def fleet(db_url: str, tmp_path: Path) -> str:
    """A store with three devices and their contracts (C-2, of the Trio, has lapsed)."""
    assert (
        polyfleet(db_url, "inventory", "import", str(write(tmp_path, "i.csv", INVENTORY))).code == 0
    )
    imported = polyfleet(db_url, "contracts", "import", str(write(tmp_path, "c.csv", CONTRACTS)))
    assert imported.code == 0, imported.stderr
    assert "imported 2 contract(s): 2 new" in imported.stderr
    return db_url


def quote(db: str, *args: str) -> Outcome:
    return polyfleet(db, "quote", *args)


def test_an_eligible_device_exits_0_with_rules_fee_and_due_date(fleet: str) -> None:
    result = quote(fleet, "00-04-f2-aa-bb-01", "--on", "2026-11-25", "-o", "json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["eligible"] is True
    assert data["serial"] == "0004F2AABB01"
    assert (data["contract"], data["pricing"], data["fee"], data["currency"]) == (
        "C-1",
        "per-device",
        "49.00",
        "USD",
    )
    assert data["sla_due"] == "2026-11-27"  # hq-berlin is in Germany: no Thanksgiving
    assert data["sla_country"] == "DE"
    assert [rule["name"] for rule in data["rules"]] == list(RULES)
    assert all(rule["passed"] for rule in data["rules"])


def test_the_table_shows_each_rule_and_the_verdict(fleet: str) -> None:
    result = quote(fleet, "0004F2AABB01", "--on", "2026-11-25", "--feature", "uc_features")
    assert result.code == 0, result.stderr
    for words in ("certified-voip-partner", "pass", "ELIGIBLE", "49.00 USD", "2026-11-27"):
        assert words in result.stdout


def test_an_ineligible_device_exits_4_and_says_why(fleet: str) -> None:
    result = quote(fleet, "0004F2AABB02", "--on", "2026-11-25", "-o", "json")
    assert result.code == 4
    data = result.json()
    assert data["eligible"] is False
    assert data["fee"] is None
    contract = next(rule for rule in data["rules"] if rule["name"] == "contract")
    assert contract["passed"] is False
    assert "C-2 (support, by serial) ended on 2025-12-31" in contract["reason"]
    assert data["sla_due"] == "2026-11-30"  # unknown site: default US calendar, Thanksgiving
    table = quote(fleet, "0004F2AABB02", "--on", "2026-11-25")
    assert table.code == 4
    assert "INELIGIBLE" in table.stdout
    assert "FAIL" in table.stdout


def test_an_unknown_device_exits_1(fleet: str) -> None:
    result = quote(fleet, "NO-SUCH-DEVICE")
    assert result.code == 1
    assert "NO-SUCH-DEVICE" in result.stderr
    assert result.stdout == ""


def test_policy_option_and_config_file_override_the_default(fleet: str, tmp_path: Path) -> None:
    not_partner = write(tmp_path, "p.toml", "[eligibility]\ncertified_voip_partner = false\n")
    result = quote(fleet, "0004F2AABB01", "--on", "2026-11-25", "--policy", str(not_partner))
    assert result.code == 4
    assert "Certified VoIP Partners" in result.stdout
    config = write(tmp_path, "polyfleet.toml", f'policy = "{not_partner}"\n')
    via_config = polyfleet(fleet, "--config", str(config), "quote", "0004F2AABB01", "-o", "json")
    assert via_config.code == 4
    assert via_config.json()["policy"] == str(not_partner)
    # the history fixture prices the camera with its own video fee, in EUR
    result = quote(
        fleet,
        "8L2003534AFC",
        "--on",
        "2026-11-25",
        "-o",
        "json",
        "--policy",
        str(FIXTURES / "history.toml"),
    )
    assert result.code == 0, result.stdout
    assert (result.json()["fee"], result.json()["currency"]) == ("120.00", "EUR")


def test_a_broken_policy_exits_2_naming_the_file_and_key(fleet: str) -> None:
    bad = FIXTURES / "unknown_key.toml"
    result = quote(fleet, "0004F2AABB01", "--policy", str(bad))
    assert result.code == 2
    assert str(bad) in result.stderr
    assert "eligibility.certified_partner" in result.stderr
    missing = quote(fleet, "0004F2AABB01", "--policy", "/nonexistent/policy.toml")
    assert missing.code == 2
    assert "cannot read policy file /nonexistent/policy.toml" in missing.stderr
    assert quote(fleet, "0004F2AABB01", "--on", "25.11.2026").code == 2


def test_contracts_list_filters_by_date_and_csv_imports_back(fleet: str, tmp_path: Path) -> None:
    listed = polyfleet(fleet, "contracts", "list", "-o", "json")
    assert listed.code == 0
    assert [(c["number"], len(c["serials"])) for c in listed.json()] == [("C-1", 2), ("C-2", 1)]
    active = polyfleet(fleet, "contracts", "list", "--active-on", "2026-06-01", "-o", "json")
    assert [c["number"] for c in active.json()] == ["C-1"]
    as_csv = polyfleet(fleet, "contracts", "list", "-o", "csv")
    assert (
        as_csv.stdout.splitlines()[0]
        == "number,kind,start,end,pricing,region,product_groups,serials"
    )
    back = polyfleet(fleet, "contracts", "import", str(write(tmp_path, "back.csv", as_csv.stdout)))
    assert back.code == 0, back.stderr
    assert "0 new, 0 replaced, 2 unchanged" in back.stderr
    assert polyfleet(fleet, "contracts", "list", "--active-on", "June").code == 2


def test_contracts_import_reports_rejected_rows_strict_and_dry_run(
    fleet: str, tmp_path: Path
) -> None:
    text = (
        "number,kind,serial,start,end\n"
        "C-3,warranty,0004F2AABB02,2026-01-01,2027-12-31\n"
        "C-4,lifetime,0004F2AABB02,2026-01-01,2027-12-31\n"
        "C-5,warranty,UNKNOWN1 UNKNOWN2,2026-01-01,2027-12-31\n"
    )
    path = write(tmp_path, "more.csv", text)
    strict = polyfleet(fleet, "contracts", "import", "--strict", str(path))
    assert strict.code == 1
    assert "more.csv:3: column kind rejected: unknown kind 'lifetime'" in strict.stderr
    assert "nothing imported" in strict.stderr
    dry = polyfleet(fleet, "contracts", "import", "--dry-run", "-o", "json", str(path))
    assert dry.code == 1
    summary = dry.json()
    assert (summary["written"], summary["inserted"], summary["rejected_rows"]) == (False, 2, 1)
    assert summary["serials_not_in_inventory"] == ["UNKNOWN1", "UNKNOWN2"]
    listed = polyfleet(fleet, "contracts", "list", "-o", "json").json()
    assert [c["number"] for c in listed] == ["C-1", "C-2"]
    result = polyfleet(fleet, "contracts", "import", str(path))
    assert result.code == 1
    assert "2 covered serial(s) are not in the inventory" in result.stderr
    listed = polyfleet(fleet, "contracts", "list", "-o", "json").json()
    assert [c["number"] for c in listed] == ["C-1", "C-2", "C-3", "C-5"]
    # the Trio is now covered by the warranty C-3
    assert quote(fleet, "0004F2AABB02", "--on", "2026-11-25").code == 0


def test_contracts_import_of_an_unusable_file_exits_2(fleet: str, tmp_path: Path) -> None:
    result = polyfleet(fleet, "contracts", "import", str(tmp_path / "missing.csv"))
    assert result.code == 2
    assert "no such file" in result.stderr
    path = write(tmp_path, "x.csv", "a,b\n1,2\n")
    assert polyfleet(fleet, "contracts", "import", str(path)).code == 2
    assert polyfleet(fleet, "contracts", "import", "--format", "xml", str(path)).code == 2
