"""Every table and message shows stored and typed text as data (issue 9), on a colour terminal.

MACs whose colon spelling holds rich emoji codes (`00:04:f2:cd:…` showed as `00:04:f2💿…`),
sites that are rich markup (`[link=…]` became a terminal hyperlink, `[blink]` emitted ESC[5m)
and a site holding an escape sequence go through inventory, scan, health, quote, re-activation,
confirmations, contracts, discover and drivers. Each must come out literally (escape sequences
spelled `\\x1b…`), with no hyperlink, blink, reverse video or emoji in the output. rich only
emits escape sequences to a terminal, so FORCE_COLOR makes it think it writes to one.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

import pytest
from rich._emoji_codes import EMOJI
from rich.text import Text

from controller.discovery import Discovered, Outcome
from device_drivers.models import DeviceFacts
from device_drivers.registry import DriverRegistry
from inventory.database import DatabaseTarget, resolve_db
from inventory.identifiers import format_mac
from inventory.models import STORED, Device
from inventory.safe_text import FORMULA_STARTS, csv_value
from inventory.store import InventoryStore
from tests.e2e.cli import polyfleet
from tests.e2e.reactivation_fleet import TODAY, expired_feature, make_devices, managed_fleet

EMOJI_PAIRS = [a + b for a in "abcdef" for b in "abcdef" if a + b in EMOJI]
"""Every two-hex-letter rich emoji code (`:ab:`, `:cd:` today), from rich's own table."""
SITE_LINK = "[link=http://evil.example]clickme[/link]"
SITE_BLINK = "[blink]X[/blink]"
SITE_ESCAPE = "lab\x1b[7mreverse"
SITE_ESCAPE_SHOWN = "lab\\x1b[7mreverse"
LEGACY_HOST = "10.255.255.1@127.77.14.16"
"""Stored before hosts were validated: scan must say so per device, never send a request."""
NOT_DATA = ("\x1b]8;", "\x1b[5m", "\x1b[7m", *(EMOJI[pair] for pair in EMOJI_PAIRS))
"""Signs of interpreted text: OSC 8 hyperlink, blink, reverse video, an emoji glyph."""


def emoji_macs() -> list[str]:
    """One Poly MAC per emoji code, spelled so rich's emoji pattern meets the code."""
    macs = [f"0004f2{pair}00{n:02x}" for n, pair in enumerate(EMOJI_PAIRS, 1)]
    for mac in macs:  # the attack is real: rich's default rendering changes each of them
        assert Text.from_markup(format_mac(mac)).plain != format_mac(mac)
    return macs


def shown_as_data(output: str, *literals: str) -> None:
    for sign in NOT_DATA:
        assert sign not in output, (sign, output)
    assert "Traceback" not in output
    for literal in literals:
        assert literal in output, (literal, output)


@pytest.fixture
def colour_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich writes styles, hyperlinks and emoji as to a terminal; tables wide enough to keep
    every value on one line."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr("controller.cli.console.PIPE_WIDTH", 400)


async def add_legacy_device(target: DatabaseTarget) -> Device:
    """A device written by an older polyfleet: unchecked host, an escape sequence in its site."""
    device = Device.model_validate(
        {"serial": "LEGACY-1", "host": LEGACY_HOST, "site": SITE_ESCAPE, "driver": "poly-uc"},
        context=STORED,
    )
    async with await InventoryStore.open(target) as store:
        await store.upsert_devices([device])
    return device


def write_contract(path: Path, number: str, serial: str) -> Path:
    start, end = TODAY - timedelta(days=10), TODAY + timedelta(days=10)
    path.write_text(
        "number,kind,serial,start,end\n"
        f'"{number}",warranty,{serial},{start.isoformat()},{end.isoformat()}\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.usefixtures("colour_terminal")
async def test_every_table_shows_stored_text_literally(tmp_path: Path) -> None:
    db = str(tmp_path / "polyfleet.db")
    target = resolve_db(db)
    macs = emoji_macs()
    devices = make_devices(len(macs) + 2, expired=len(macs))
    for device, mac in zip(devices, macs, strict=False):
        if device.mac is not None and device.serial == device.mac.upper():
            device.serial = mac.upper()  # a UC phone's serial is its MAC
        device.mac = mac
    expired, marked = devices[: len(macs)], devices[len(macs) :]
    marked[0].site, marked[1].site = SITE_LINK, SITE_BLINK
    shown_macs = [format_mac(mac) for mac in macs]
    first = expired[0]
    async with managed_fleet(
        tmp_path, db, devices, [d.serial for d in expired], target=target
    ) as fleet:
        legacy = await add_legacy_device(target)
        contract = write_contract(tmp_path / "c.csv", SITE_LINK, marked[0].serial)
        assert (await fleet.cli("contracts", "import", str(contract))).code == 0

        async def run(*args: str, code: int = 0) -> str:
            done = await fleet.cli(*args)
            assert done.code == code, (args, done.stdout, done.stderr)
            return done.stdout + done.stderr

        listed = await run("inventory", "list")
        shown_as_data(listed, *shown_macs, SITE_LINK, SITE_BLINK, SITE_ESCAPE_SHOWN, LEGACY_HOST)
        shown_as_data(await run("inventory", "show", first.serial), shown_macs[0])
        shown_as_data(await run("inventory", "show", marked[1].serial), SITE_BLINK)
        shown_as_data(await run("inventory", "show", SITE_BLINK, code=1), repr(SITE_BLINK))
        scanned = await run("scan", code=1)
        shown_as_data(scanned, legacy.serial, SITE_ESCAPE_SHOWN, "not contacted")
        health = await run("health", code=2)
        shown_as_data(health, first.serial, legacy.serial, SITE_ESCAPE_SHOWN)
        shown_as_data(await run("quote", first.serial), f"MAC {shown_macs[0]}")
        feature = expired_feature(first)
        plan = await run("reactivate", first.serial, "--feature", feature, "--dry-run")
        shown_as_data(plan, f"{first.serial} {feature}")
        done = await run("reactivate", "--all-expired", "--yes")
        shown_as_data(done, *(d.serial for d in expired))
        shown_as_data(await run("confirmations", "list"), *shown_macs)
        listed_json = await fleet.cli("confirmations", "list", "-o", "json")
        number = next(r["number"] for r in listed_json.json() if r["serial"] == first.serial)
        shown_as_data(await run("confirmations", "show", number), shown_macs[0])
        shown_as_data(await run("contracts", "list"), SITE_LINK)


def test_discover_table_shows_what_devices_report_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, colour_terminal: None
) -> None:
    """A device's answers (model, sysDescr) are as untrusted as an import file."""
    reported = DeviceFacts(serial="SN1", mac=emoji_macs()[0], model=SITE_BLINK)
    found = [
        Discovered(
            address="10.0.0.7",
            outcome=Outcome.UNIDENTIFIED,
            driver="poly-uc",
            facts=reported,
            detail=SITE_ESCAPE,
        ),
        Discovered(address="10.0.0.8", outcome=Outcome.NOT_POLY, detail=f"sysDescr {SITE_LINK}"),
    ]

    async def discover(self: object, addresses: Iterable[str]) -> list[Discovered]:
        return found

    monkeypatch.setattr("controller.discovery.Discoverer.discover", discover)
    done = polyfleet(str(tmp_path / "p.db"), "discover", "10.0.0.7/31")
    assert done.code == 0, done.stderr
    shown_as_data(done.stdout, SITE_BLINK, SITE_ESCAPE_SHOWN, SITE_LINK)


def test_drivers_table_shows_names_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, colour_terminal: None
) -> None:
    """Driver origins come from installed distributions, which anyone can name."""
    monkeypatch.setattr(DriverRegistry, "origin", lambda self, name: SITE_LINK)
    done = polyfleet(str(tmp_path / "p.db"), "drivers", "list")
    assert done.code == 0, done.stderr
    shown_as_data(done.stdout, SITE_LINK, "poly-uc")


@pytest.mark.usefixtures("colour_terminal")
def test_errors_and_warnings_show_typed_ids_literally(tmp_path: Path) -> None:
    db = str(tmp_path / "p.db")
    missing = polyfleet(db, "inventory", "show", f"{SITE_BLINK}\x1b[7m")
    assert missing.code == 1
    shown_as_data(missing.stderr, "'[blink]X[/blink]\\x1b[7m'")
    outside = polyfleet(db, "inventory", "add", "S1", "--mac", "00:11:22:cd:00:01")
    assert outside.code == 0, outside.stderr
    shown_as_data(outside.stderr + outside.stdout, "00:11:22:cd:00:01")


FORMULAS = {
    "site": '=HYPERLINK("http://evil.example","x")',
    "model": "+41 44 668 18 00",
    "tag:note": "-2+3+cmd|' /C calc'!A0",
    "tag:at": "@SUM(1+1)",
    "tag:quoted": "'=already quoted",
}
"""Values a spreadsheet would run (OWASP's list), and one a user quoted themselves."""
CMD = "=cmd|' /C calc'!A0"


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def no_formulas(rows: list[list[str]]) -> None:
    """No cell starts as a formula; only plain numbers may start with a sign."""
    for row in rows:
        for cell in row:
            if cell[:1] in FORMULA_STARTS:
                float(cell)


async def test_csv_outputs_neutralise_formulas_and_read_back_exactly(tmp_path: Path) -> None:
    db, copy = str(tmp_path / "polyfleet.db"), str(tmp_path / "copy.db")
    devices = make_devices(2, expired=1)
    first = devices[0]
    async with managed_fleet(tmp_path, db, devices, [first.serial], target=resolve_db(db)) as fleet:

        async def run(*args: str) -> str:
            done = await fleet.cli(*args)
            assert done.code == 0, (args, done.stderr)
            return done.stdout

        tags = [f"--tag={k[4:]}={v}" for k, v in FORMULAS.items() if k.startswith("tag:")]
        await run("inventory", "add", "F-1", "--site", FORMULAS["site"],
                  "--model", FORMULAS["model"], "--tag=count=-5", *tags)  # fmt: skip
        contract = write_contract(tmp_path / "c.csv", CMD, "F-1")
        await run("contracts", "import", str(contract))
        await run("reactivate", "--all-expired", "--yes", "--actor", CMD)

        exported = await run("inventory", "export")
        outputs = {
            "inventory export": exported,
            "inventory list": await run("inventory", "list", "-o", "csv"),
            "inventory show": await run("inventory", "show", "F-1", "-o", "csv"),
            "contracts list": await run("contracts", "list", "-o", "csv"),
            "confirmations list": await run("confirmations", "list", "-o", "csv"),
            "confirmations export": await run("confirmations", "export", "--format", "csv"),
        }
        for name, text in outputs.items():
            cells = {cell for row in csv_rows(text) for cell in row}
            no_formulas(csv_rows(text))
            assert cells & {"'" + CMD, "'" + FORMULAS["site"]}, name
        header, *rows = csv_rows(exported)
        device = dict(zip(header, next(r for r in rows if r[0] == "F-1"), strict=True))
        assert device["site"] == "'" + FORMULAS["site"]
        assert device["tag:count"] == "-5"  # a plain number stays a number
        assert device["tag:quoted"] == "''=already quoted"

        # our own import gives back exactly the store that was exported
        (tmp_path / "export.csv").write_text(exported, encoding="utf-8")
        imported = await asyncio.to_thread(
            polyfleet, copy, "inventory", "import", str(tmp_path / "export.csv")
        )
        assert imported.code == 0, imported.stderr
        again = await asyncio.to_thread(polyfleet, copy, "inventory", "export", "--format", "json")
        assert again.json() == json.loads(await run("inventory", "export", "--format", "json"))

        # the confirmation export still recomputes: hashes are of values, not of cells
        as_json = json.loads(await run("confirmations", "export", "--format", "json"))
        header, *rows = csv_rows(outputs["confirmations export"])
        from_csv = [{k: csv_value(v) or None for k, v in zip(header, r, strict=True)} for r in rows]
        assert from_csv == as_json
        assert as_json[0]["actor"] == CMD
        # the hash covers every field but itself and the signature (which signs the hash)
        body = {k: v for k, v in from_csv[0].items() if k not in ("hash", "signature")}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(canonical.encode()).hexdigest() == from_csv[0]["hash"]
