"""`polyfleet health` as cron and monitoring run it: formats, exit codes, lock, timeout."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.usecases.scan import ScanRequest
from inventory.database import DatabaseTarget
from inventory.models import Device, License, LicenseState
from inventory.observation_store import DeviceObservation, ObservationStore
from inventory.store import InventoryStore
from tests.e2e.cli import Outcome, polyfleet

ANSI = re.compile(r"\x1b\[")


def _license(
    serial: str, feature: str, state: LicenseState, expires_in: timedelta | None, seen: datetime
) -> License:
    now = datetime.now(UTC)
    return License(
        serial=serial,
        feature=feature,
        state=state,
        expires_at=now + expires_in if expires_in is not None else None,
        source="test",
        observed_at=seen,
    )


def seed(target: DatabaseTarget, *kinds: str) -> None:
    """One device per kind: ok, analog, expiring, expired, never, stale, down, odd-site."""
    now = datetime.now(UTC)
    hour_ago = now - timedelta(hours=1)
    devices: list[Device] = []
    observations: list[DeviceObservation] = []
    for index, kind in enumerate(kinds):
        serial = f"{kind.upper().replace('-', '')}{index}"
        site = 'hall "B"\\2' if kind == "odd-site" else ("branch" if index % 2 else "hq")
        if kind == "analog":
            devices.append(
                Device(serial=serial, model="SoundStation 2", driver="analog", site=site)
            )
            continue
        devices.append(
            Device(
                serial=serial,
                mac=f"0004f2aa00{index:02x}",
                model="VVX 450",
                driver="poly-uc",
                host=f"10.0.0.{index + 1}",
                site=site,
            )
        )
        if kind == "never":
            continue
        seen = now - timedelta(days=3) if kind == "stale" else hour_ago
        expiry = {"expiring": timedelta(days=10)}.get(kind, timedelta(days=300))
        state = LicenseState.EXPIRED if kind == "expired" else LicenseState.ACTIVE
        licenses = [
            _license(serial, "base", state, expiry, seen),
            _license(serial, "video", LicenseState.ACTIVE, None, seen),
        ]
        if kind == "down":  # licenses known from an earlier scan, this one timed out
            observations.append(
                DeviceObservation(
                    serial=serial,
                    observed_at=now,
                    reachable=False,
                    driver="poly-uc",
                    error_kind="timeout",
                    error="no answer",
                )
            )
            continue
        observations.append(
            DeviceObservation(
                serial=serial, observed_at=seen, reachable=True, driver="poly-uc", licenses=licenses
            )
        )

    async def write() -> None:
        async with await InventoryStore.open(target) as store:
            report = await store.upsert_devices(devices)
            assert not report.conflicts
            recorder = ObservationStore(store.engine)
            earlier = [
                DeviceObservation(
                    serial=o.serial,
                    observed_at=hour_ago,
                    reachable=True,
                    licenses=[_license(o.serial, "base", LicenseState.ACTIVE, None, hour_ago)],
                )
                for o in observations
                if not o.reachable
            ]
            await recorder.record(earlier)
            await recorder.record(observations)

    asyncio.run(write())


def health(db_url: str, *args: str) -> Outcome:
    result = polyfleet(db_url, "health", *args)
    assert not ANSI.search(result.stdout + result.stderr), "colour codes without a TTY"
    return result


# -- exit codes and formats ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kinds", "status", "code"),
    [
        (("ok", "analog"), "OK", 0),
        (("ok", "expiring", "never"), "WARNING", 1),
        (("ok", "expired", "expiring", "never"), "CRITICAL", 2),
        (("ok", "never"), "UNKNOWN", 3),
    ],
)
def test_every_format_exits_with_the_nagios_code_of_the_worst_device(
    db_target: DatabaseTarget, db_url: str, kinds: tuple[str, ...], status: str, code: int
) -> None:
    seed(db_target, *kinds)
    for fmt in ("text", "json", "nagios", "prometheus"):
        result = health(db_url, "--format", fmt)
        assert result.code == code, (fmt, result.stdout, result.stderr)
    assert health(db_url, "--format", "json").json()["status"] == status
    assert health(db_url, "--format", "nagios").stdout.startswith(f"POLYFLEET {status} - ")
    metrics = parse_exposition(health(db_url, "--format", "prometheus").stdout)
    assert metrics["polyfleet_health_status"] == [({}, code)]


def test_text_shows_a_summary_and_only_the_devices_that_are_not_ok(
    db_target: DatabaseTarget, db_url: str
) -> None:
    seed(db_target, "ok", "expired", "stale", "never")
    result = health(db_url)
    assert result.code == 2
    lines = result.stdout.splitlines()
    assert lines[0] == "fleet health: CRITICAL - 4 devices: 1 OK, 1 WARNING, 1 CRITICAL, 1 UNKNOWN"
    body = "\n".join(lines[1:])
    assert re.search(r"CRITICAL +EXPIRED1 .*feature base expired \d{4}-\d\d-\d\d", body)
    assert re.search(r"WARNING +STALE2 .*last observed 3 days ago", body)
    assert re.search(r"UNKNOWN +NEVER3 .*never scanned", body)
    assert "OK0" not in body
    assert body.index("CRITICAL") < body.index("WARNING") < body.index("UNKNOWN")


def test_json_has_the_product_keys_for_every_device(db_target: DatabaseTarget, db_url: str) -> None:
    seed(db_target, "ok", "analog", "expiring", "down")
    result = health(db_url, "--format", "json")
    assert result.code == 1
    data = result.json()
    assert data["status"] == "WARNING"
    assert data["counts"] == {"OK": 2, "WARNING": 2, "CRITICAL": 0, "UNKNOWN": 0}
    by_serial = {d["serial"]: d for d in data["devices"]}
    assert set(by_serial) == {"OK0", "ANALOG1", "EXPIRING2", "DOWN3"}
    for device in data["devices"]:
        assert {"serial", "mac", "status", "reason"} <= set(device)
    assert by_serial["OK0"]["mac"] == "0004f2aa0000"
    assert by_serial["ANALOG1"]["reason"] == "not networked: inventory only"
    assert by_serial["EXPIRING2"]["reason"].startswith("feature base expires in ")
    assert by_serial["DOWN3"]["reason"] == "last scan failed: timeout: no answer"
    assert datetime.fromisoformat(by_serial["OK0"]["last_observed"]).tzinfo is not None


def test_nagios_status_line_perfdata_and_long_output(
    db_target: DatabaseTarget, db_url: str
) -> None:
    seed(db_target, "ok", "expired", "expiring", "never")
    result = health(db_url, "--format", "nagios")
    assert result.code == 2
    first, *rest = result.stdout.splitlines()
    assert first == (
        "POLYFLEET CRITICAL - 1 critical, 1 warning, 1 unknown of 4 devices"
        " | ok=1 warning=1 critical=1 unknown=1"
    )
    assert len(first.split(" | ")[0]) <= 80
    assert [line.split(" - ")[0] for line in rest] == [
        "CRITICAL: EXPIRED1 at branch",
        "WARNING: EXPIRING2 at hq",
        "UNKNOWN: NEVER3 at branch",
    ]


# -- Prometheus --------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def parse_exposition(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """A strict little reader of text format 0.0.4: HELP and TYPE before a family's samples,
    each family in one block, every label value properly escaped."""
    assert text.endswith("\n")
    families: dict[str, list[tuple[dict[str, str], float]]] = {}
    typed: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in families, f"{name} declared twice"
            families[name] = []
            current = name
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name == current, f"TYPE of {name} without its HELP"
            assert kind in {"gauge", "counter"}
            typed[name] = kind
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, label_text, value = match.groups()
        assert name == current, f"{name} outside its block"
        assert name in typed, f"{name} has no TYPE"
        labels: dict[str, str] = {}
        rest = label_text or ""
        while rest:
            label = _LABEL.match(rest)
            assert label, f"bad labels in {line!r}"
            labels[label.group(1)] = _unescape(label.group(2))
            rest = rest[label.end() :]
        families[name].append((labels, float(value)))
    return families


def test_prometheus_output_parses_back(db_target: DatabaseTarget, db_url: str) -> None:
    seed(db_target, "ok", "expiring", "odd-site", "never")
    before = datetime.now(UTC).timestamp()
    result = health(db_url, "--format", "prometheus")
    assert result.code == 1
    metrics = parse_exposition(result.stdout)
    counts = {labels["status"]: value for labels, value in metrics["polyfleet_devices"]}
    assert counts == {"OK": 2, "WARNING": 1, "CRITICAL": 0, "UNKNOWN": 1}
    statuses = {labels["serial"]: labels for labels, _ in metrics["polyfleet_device_status"]}
    assert statuses["ODDSITE2"]["site"] == 'hall "B"\\2'
    assert statuses["EXPIRING1"]["status"] == "WARNING"
    expiry = {
        (labels["serial"], labels["feature"]): value
        for labels, value in metrics["polyfleet_license_expiry_timestamp_seconds"]
    }
    assert set(expiry) == {("OK0", "base"), ("EXPIRING1", "base"), ("ODDSITE2", "base")}
    assert 9 * 86400 < expiry[("EXPIRING1", "base")] - before < 11 * 86400
    states = {
        (labels["serial"], labels["feature"], labels["state"])
        for labels, _ in metrics["polyfleet_license_state"]
    }
    assert ("OK0", "video", "active") in states
    seen = {
        labels["serial"] for labels, _ in metrics["polyfleet_last_observation_timestamp_seconds"]
    }
    assert seen == {"OK0", "EXPIRING1", "ODDSITE2"}
    ((_, run_at),) = metrics["polyfleet_health_run_timestamp_seconds"]
    assert before - 1 <= run_at <= datetime.now(UTC).timestamp() + 1


def test_output_file_is_written_atomically_for_the_textfile_collector(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    seed(db_target, "ok")
    collector = tmp_path / "textfile"
    collector.mkdir()
    target = collector / "polyfleet.prom"
    target.write_text("old\n")
    result = health(db_url, "--format", "prometheus", "--output", str(target))
    assert result.code == 0
    assert result.stdout == ""
    assert "written to" in result.stderr
    assert parse_exposition(target.read_text())["polyfleet_devices"]
    assert sorted(p.name for p in collector.iterdir()) == ["polyfleet.prom"]
    missing = health(db_url, "--format", "prometheus", "--output", str(tmp_path / "no" / "x.prom"))
    assert missing.code == 3
    assert "directory" in missing.stderr


# -- options ------------------------------------------------------------------------------------


def test_no_devices_is_unknown_not_ok(db_target: DatabaseTarget, db_url: str) -> None:
    seed(db_target, "ok")
    result = health(db_url, "--site", "nowhere", "--format", "nagios")
    assert result.code == 3
    assert result.stdout.startswith(
        "POLYFLEET UNKNOWN - no devices to check (wrong --db or --site?)"
    )


def test_site_max_age_and_warn_days(db_target: DatabaseTarget, db_url: str) -> None:
    seed(db_target, "ok", "expiring", "ok", "expired")  # hq: OK0, OK2; branch: the others
    hq = health(db_url, "--site", "hq", "--format", "json")
    assert hq.code == 0
    assert {d["serial"] for d in hq.json()["devices"]} == {"OK0", "OK2"}
    stale = health(db_url, "--site", "hq", "--max-age", "30m", "--format", "json")
    assert stale.code == 1
    assert {d["reason"] for d in stale.json()["devices"]} == {"last observed 60 minutes ago"}
    assert health(db_url, "--site", "hq", "--max-age", "90m").code == 0
    assert health(db_url, "--site", "branch", "--format", "json").code == 2
    quiet = health(db_url, "--site", "branch", "--warn-days", "5", "--format", "json")
    assert quiet.json()["counts"]["WARNING"] == 0
    strict = health(db_url, "--site", "hq", "--require", "base", "--require", "audio")
    assert strict.code == 2
    assert "feature audio missing (required)" in strict.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--max-age", "26"), "invalid --max-age '26'"),
        (("--max-age", "soon"), "invalid --max-age 'soon'"),
        (("--warn-days", "-3"), "invalid --warn-days '-3'"),
        (("--warn-days", "ten"), "invalid --warn-days 'ten'"),
        (("--timeout", "0"), "invalid --timeout '0'"),
        (("--format", "xml"), "invalid --format 'xml'"),
    ],
)
def test_bad_option_values_are_unknown_not_critical(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = health(str(tmp_path / "x.db"), *args)
    assert result.code == 3
    assert message in result.stderr
    if "--format" not in args:
        nagios = health(str(tmp_path / "x.db"), "--format", "nagios", *args)
        assert nagios.code == 3
        assert nagios.stdout.startswith(f"POLYFLEET UNKNOWN - {message}")


def test_an_unreachable_store_is_unknown(tmp_path: Path) -> None:
    result = health("postgresql://nobody@127.0.0.1:1/none", "--format", "nagios")
    assert result.code == 3
    assert result.stdout.startswith("POLYFLEET UNKNOWN - health check failed: ")
    assert len(result.stdout.splitlines()) == 1


# -- cron safety --------------------------------------------------------------------------------


def test_a_second_run_while_the_lock_is_held_exits_3_saying_why(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    seed(db_target, "ok")
    lock = tmp_path / "health.lock"
    with lock.open("w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder.write("pid 4242, started 2026-11-23T03:00:00+00:00\n")
        holder.flush()
        text = health(db_url, "--lock-file", str(lock))
        assert text.code == 3
        assert f"another health run (pid 4242, started 2026-11-23T03:00:00+00:00) holds {lock}" in (
            text.stderr.replace("\n", "")
        )
        nagios = health(db_url, "--lock-file", str(lock), "--format", "nagios")
        assert nagios.code == 3
        assert nagios.stdout == (
            "POLYFLEET UNKNOWN - another health run (pid 4242, started "
            f"2026-11-23T03:00:00+00:00) holds {lock}\n"
        )
        as_json = health(db_url, "--lock-file", str(lock), "--format", "json")
        assert as_json.json()["status"] == "UNKNOWN"
        assert "another health run" in as_json.json()["error"]
    assert health(db_url, "--lock-file", str(lock)).code == 0
    assert health(db_url).code == 0  # default lock in the data dir, released after each run
    assert health(db_url).code == 0


def test_a_run_exceeding_timeout_exits_3(
    db_target: DatabaseTarget, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(db_target, "ok")

    async def stuck(*args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(30)

    monkeypatch.setattr("controller.cli.health_cmd.check_fleet", stuck)
    result = health(db_url, "--timeout", "0.3", "--format", "nagios")
    assert result.code == 3
    assert result.stdout == (
        "POLYFLEET UNKNOWN - health run did not finish within 0.3 s (--timeout)\n"
    )


def test_scan_refreshes_the_store_before_classifying(
    db_target: DatabaseTarget, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(db_target, "never")
    assert health(db_url).code == 3
    calls: list[str | None] = []

    async def fake_run_scan(store: InventoryStore, request: ScanRequest, **_: Any) -> list[Any]:
        calls.append(request.site)
        now = datetime.now(UTC)
        await ObservationStore(store.engine).record(
            [
                DeviceObservation(
                    serial="NEVER0",
                    observed_at=now,
                    reachable=True,
                    licenses=[_license("NEVER0", "base", LicenseState.ACTIVE, None, now)],
                )
            ]
        )
        return []

    monkeypatch.setattr("controller.usecases.scan.run_scan", fake_run_scan)
    result = health(db_url, "--scan", "--site", "hq", "--format", "json")
    assert calls == ["hq"]
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["devices"][0]["reason"] == "1 feature(s) active"


def test_scan_against_a_simulated_fleet_then_classify(tmp_path: Path) -> None:
    """The whole path with real transports: simulate, import, `health --scan`."""
    base = f"127.{random.randint(100, 250)}.{random.randint(0, 250)}.1"
    inventory = tmp_path / "fleet.csv"
    simulator = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "simulate", "-n", "6", "--seed", "3",
         "--workers", "1", "--base-address", base, "--inventory-out", str(inventory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    try:
        portal = tmp_path / "fleet.portal.toml"
        deadline = time.monotonic() + 30
        while not portal.exists():
            assert simulator.poll() is None, simulator.stderr.read() if simulator.stderr else ""
            assert time.monotonic() < deadline, "simulator did not start"
            time.sleep(0.1)
        time.sleep(0.2)
        db = str(tmp_path / "fleet.db")
        assert polyfleet(db, "inventory", "import", str(inventory)).code == 0
        creds = tmp_path / "fleet.credentials.toml"
        assert polyfleet(db, "credentials", "import", str(creds)).code == 0
        before = health(db, "--format", "json")
        assert before.json()["counts"]["UNKNOWN"] == 5  # all but the analog phone
        after = health(db, "--scan", "--format", "json", "--timeout", "120")
        data = after.json()
        if data["counts"]["UNKNOWN"]:  # a device timed out on a starved CPU: one more scan
            after = health(db, "--scan", "--format", "json", "--timeout", "120")
            data = after.json()
        assert data["counts"]["UNKNOWN"] == 0, (data, after.stderr)
        assert after.code == {"OK": 0, "WARNING": 1, "CRITICAL": 2}[data["status"]]
        assert data["counts"]["UNKNOWN"] == 0
        assert sum(data["counts"].values()) == 6
        assert "scanned 6 device(s)" in after.stderr
        reasons = [d["reason"] for d in data["devices"]]
        assert all("never" not in reason for reason in reasons)
    finally:
        simulator.send_signal(signal.SIGINT)
        try:
            simulator.wait(timeout=15)
        except subprocess.TimeoutExpired:
            simulator.kill()
            simulator.wait()
        if simulator.stderr is not None:
            simulator.stderr.close()
