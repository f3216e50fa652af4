"""`polyfleet probe ID` on a simulated fleet: the JSON a site bringing up hardware reads, the
exit code, and that nothing is written (loopback 127.91.1.x: no other test uses it)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_cli_scan import lab, served_by

PROBE_KEYS = [
    "serial", "host", "driver", "ok", "abilities", "operations", "calls", "modeled_calls",
    "settings",
]  # fmt: skip
CALL_KEYS = [
    "operation", "call", "documented", "modeled", "answered", "answer", "conclusion",
]  # fmt: skip


async def test_probe_lists_every_call_of_the_driver_and_writes_nothing(
    tmp_path: Path, db_url: str
) -> None:
    async with lab(tmp_path, db_url, "127.91.1.1") as fleet:
        phone = fleet.of("vvx")[0]
        before = await fleet.show(phone.serial)
        done = await fleet.cli("probe", phone.serial, "-o", "json")
        assert done.code == 0, done.stderr
        report = done.json()
        assert list(report) == PROBE_KEYS
        assert (report["serial"], report["driver"], report["ok"]) == (
            phone.serial,
            served_by("vvx"),
            True,
        )
        assert [op["name"] for op in report["operations"]][:2] == ["identify", "read_licenses"]
        assert all(op["ok"] for op in report["operations"])
        assert report["calls"]
        assert all(list(call) == CALL_KEYS for call in report["calls"])
        assert all(call["documented"] is not call["modeled"] for call in report["calls"])
        assert await fleet.show(phone.serial) == before  # no pin, no firmware, nothing stored
        missing = await fleet.cli("probe", "NO-SUCH-DEVICE", "-o", "json")
        assert missing.code == 1
        assert "NO-SUCH-DEVICE" in missing.stderr
