"""Hosts are addresses and nothing else, on every way in; one stored before is never contacted.

Issue 9: `127.0.0.1/../../etc`, `evil.example;rm -rf /` and `http://x@127.0.0.1:22/` imported
with exit 0; `127.77.14.18/evil?x=` made `scan` send an authenticated request to another path,
and `10.255.255.1@127.77.14.16` made it log a traceback.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from inventory.database import resolve_db
from inventory.models import STORED, Device
from inventory.store import InventoryStore
from tests.e2e.cli import polyfleet
from tests.unit.inventory.test_hosts import ATTACKS


def test_import_rejects_every_host_that_is_not_an_address(tmp_path: Path) -> None:
    db = str(tmp_path / "p.db")
    rows = [
        "serial,ip",
        "GOOD-1,phone-1.example.com",
        *(f'BAD-{n},"{h}"' for n, h in enumerate(ATTACKS)),
    ]
    file = tmp_path / "devices.csv"
    file.write_text("\n".join(rows) + "\n", encoding="utf-8")
    done = polyfleet(db, "inventory", "import", str(file))
    assert done.code == 1
    for line, host in enumerate(ATTACKS, start=3):
        assert f"{file}:{line}: column ip rejected: host {host!r} contains " in done.stderr
    listed = polyfleet(db, "inventory", "list", "-o", "json").json()
    assert [(d["serial"], d["host"]) for d in listed] == [("GOOD-1", "phone-1.example.com")]

    as_json = tmp_path / "devices.json"
    as_json.write_text(json.dumps([{"serial": "J-1", "host": ATTACKS[3]}]), encoding="utf-8")
    refused = polyfleet(db, "inventory", "import", str(as_json))
    assert refused.code == 1
    assert f"{as_json}:1: column host rejected: host {ATTACKS[3]!r} contains '/'" in refused.stderr


def test_add_refuses_a_bad_host_and_a_port_in_the_host(tmp_path: Path) -> None:
    db = str(tmp_path / "p.db")
    bad = polyfleet(db, "inventory", "add", "A1", "--host", ATTACKS[1])
    assert bad.code == 1
    assert f"host: host {ATTACKS[1]!r} contains ';'" in bad.stderr
    with_port = polyfleet(db, "inventory", "add", "A1", "--host", "10.0.0.5:8443")
    assert with_port.code == 1
    assert "in its own field (https_port" in with_port.stderr
    assert polyfleet(db, "inventory", "add", "A1", "--host", "[2001:db8::5]").code == 0
    assert polyfleet(db, "inventory", "show", "A1", "-o", "json").json()[0]["host"] == "2001:db8::5"


@pytest.fixture
async def listener() -> AsyncIterator[tuple[int, list[str]]]:
    """A TCP port on loopback that records every connection made to it."""
    seen: list[str] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(str(writer.get_extra_info("peername")))
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], seen
    finally:
        server.close()
        await server.wait_closed()


async def test_scan_of_a_stored_bad_host_is_a_device_error_and_sends_nothing(
    tmp_path: Path, listener: tuple[int, list[str]]
) -> None:
    """Hosts written by an older polyfleet: each is one failed row, nothing reaches a socket."""
    port, seen = listener
    db = str(tmp_path / "p.db")
    # with the port in the host, the way the old URL concatenation would have reached it
    stored = [*ATTACKS, f"127.0.0.1:{port}/evil?x=", f"10.255.255.1@127.0.0.1:{port}"]
    async with await InventoryStore.open(resolve_db(db)) as store:
        await store.upsert_devices(
            [
                Device.model_validate(
                    {
                        "serial": f"OLD-{n}",
                        "host": host,
                        "driver": "poly-uc",
                        "ports": {"https": port},
                    },
                    context=STORED,
                )
                for n, host in enumerate(stored)
            ]
        )
    done = await asyncio.to_thread(polyfleet, db, "scan", "--timeout", "1", "-o", "json")
    assert done.code == 1
    assert "Traceback" not in done.stderr
    results = {row["serial"]: row for row in done.json()}
    for n, host in enumerate(stored):
        row = results[f"OLD-{n}"]
        assert row["error_kind"] == "unreachable"
        assert row["error"].startswith(f"not contacted: the inventory's host {host!r}")
        assert "polyfleet inventory add" in row["error"]
    assert seen == []
