"""`polyfleet keys …`: the portal's CSV as is, line-numbered problems, never a secret shown."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from simulator.context import FleetSecrets
from simulator.portal import Portal, create_app
from tests.e2e.cli import polyfleet
from tests.simulator.https_helpers import contract_for, small_fleet

FUTURE = (datetime.now(UTC) + timedelta(days=200)).replace(microsecond=0)
PAST = datetime.now(UTC) - timedelta(days=2)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def add_device(db_url: str, serial: str) -> None:
    result = polyfleet(db_url, "inventory", "add", serial)
    assert result.code == 0, result.stderr


async def _portal_export(tmp_path: Path) -> tuple[Path, list[str], list[str]]:
    """The simulated portal's own `keys.csv` export, every entitled key issued."""
    devices = small_fleet({"vvx": 50, "studiox": 50}, count=4, seed=3)
    contracts = [contract_for([d.serial for d in devices[:3]])]
    fleet_secrets = FleetSecrets.generate()
    portal = Portal(devices, contracts, fleet_secrets)
    server = TestServer(create_app(portal), host="127.0.0.1")
    await server.start_server()
    try:
        headers = {"Authorization": f"Bearer {fleet_secrets.portal_token}"}
        async with (
            aiohttp.ClientSession() as http,
            http.get(server.make_url("/api/v1/keys.csv?all_entitled=1"), headers=headers) as resp,
        ):
            assert resp.status == 200
            text = await resp.text()
    finally:
        await server.close()
    path = write(tmp_path, "keys.csv", text)
    return path, [d.serial for d in devices[:3]], [k.key for k in portal.issued]


def test_imports_the_portal_export_as_is_and_never_prints_a_key(
    db_url: str, tmp_path: Path
) -> None:
    path, serials, secrets = asyncio.run(_portal_export(tmp_path))
    add_device(db_url, serials[0])
    add_device(db_url, serials[1])
    result = polyfleet(db_url, "keys", "import", str(path))
    assert result.code == 0, result.stderr
    assert f"imported {len(secrets)} key(s)" in result.stderr
    # the third covered device is not in the inventory: reported with its line, still imported
    assert f"serial {serials[2]} is not in the inventory" in result.stderr
    assert "keys.csv:" in result.stderr

    listed = polyfleet(db_url, "keys", "list", "-o", "json")
    assert listed.code == 0
    rows = listed.json()
    assert len(rows) == len(secrets)
    assert {r["serial"] for r in rows} == set(serials)
    assert set(rows[0]) == {
        "serial", "feature", "key_ref", "expires_at", "source", "imported_at", "used_at", "used_by",
    }  # fmt: skip
    assert rows[0]["source"] == "file:keys.csv"
    assert rows[0]["used_at"] is None
    table = polyfleet(db_url, "keys", "list")
    csv_out = polyfleet(db_url, "keys", "list", "-o", "csv", "--serial", serials[0].lower())
    header = "serial,feature,key_ref,expires_at,source,used_at,used_by"
    assert csv_out.stdout.splitlines()[0] == header
    for out in (result, listed, table, csv_out):
        for secret in secrets:
            assert secret not in out.stdout + out.stderr

    again = polyfleet(db_url, "keys", "import", str(path))
    assert again.code == 0, again.stderr
    assert f"imported 0 key(s); {len(secrets)} already stored" in again.stderr
    assert len(polyfleet(db_url, "keys", "list", "-o", "json").json()) == len(secrets)


BAD = (
    "Serial,Feature,Key Code,Expiry\n"
    f"SN-1,productivity_suite,KEY-ONE,{FUTURE.isoformat()}\n"
    ",productivity_suite,KEY-TWO,2030-01-01\n"
    "SN-3,bad feature!,KEY-THREE,2030-01-01\n"
    "SN-4,multipoint,KEY-FOUR,next tuesday\n"
    f"SN-5,multipoint,KEY-FIVE,{PAST.isoformat()}\n"
    "SN-6,multipoint,,2030-01-01\n"
    f"sn-1,productivity_suite,KEY-ONE,{FUTURE.isoformat()}\n"
    "SN-8,system,KEY-EIGHT,\n"
)


def test_bad_rows_are_rejected_with_their_line(db_url: str, tmp_path: Path) -> None:
    path = write(tmp_path, "bad.csv", BAD)
    result = polyfleet(db_url, "keys", "import", str(path), "-o", "json")
    assert result.code == 1
    err = result.stderr
    assert "bad.csv:3: column serial rejected: serial '' is empty" in err
    assert "bad.csv:4: column feature rejected" in err
    assert "bad.csv:5: column expires_at rejected" in err
    assert "not an ISO 8601 date" in err
    assert "bad.csv:6: column expires_at rejected: key expired on" in err
    assert "bad.csv:7: column key rejected: key is empty" in err
    assert "bad.csv:8: column key rejected: the same key for SN-1" in err
    assert "already appears on line 2" in err
    summary = result.json()
    assert (summary["imported"], summary["rejected_rows"]) == (2, 6)
    for secret in ("KEY-ONE", "KEY-TWO", "KEY-THREE", "KEY-FOUR", "KEY-FIVE", "KEY-EIGHT"):
        assert secret not in result.stdout + err
    listed = polyfleet(db_url, "keys", "list", "-o", "json").json()
    assert [(k["serial"], k["expires_at"]) for k in listed] == [
        ("SN-1", FUTURE.isoformat()),
        ("SN-8", None),  # no expiry given: a key without expiry
    ]


def test_strict_and_dry_run_write_nothing(db_url: str, tmp_path: Path) -> None:
    path = write(tmp_path, "bad.csv", BAD)
    strict = polyfleet(db_url, "keys", "import", "--strict", str(path))
    assert strict.code == 1
    assert "--strict: nothing imported" in strict.stderr
    good = write(tmp_path, "good.csv", "serial,feature,key,expires_at\nSN-1,system,K1,2030-01-01\n")
    dry = polyfleet(db_url, "keys", "import", "--dry-run", str(good))
    assert dry.code == 0
    assert "would import 1 key(s)" in dry.stderr
    assert polyfleet(db_url, "keys", "list", "-o", "json").json() == []


def test_unusable_files_exit_2(db_url: str, tmp_path: Path) -> None:
    missing = polyfleet(db_url, "keys", "import", str(tmp_path / "nope.csv"))
    assert missing.code == 2
    assert "no such file" in missing.stderr
    no_key = write(tmp_path, "k.csv", "serial,feature,expires_at\nSN-1,system,2030-01-01\n")
    result = polyfleet(db_url, "keys", "import", str(no_key))
    assert result.code == 2
    assert "missing column(s) key" in result.stderr
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"serial,feature,key\nSN-\xe9,system,K\n")
    assert polyfleet(db_url, "keys", "import", str(latin)).code == 2
    assert polyfleet(db_url, "keys", "import", str(write(tmp_path, "e.csv", "\n"))).code == 2
