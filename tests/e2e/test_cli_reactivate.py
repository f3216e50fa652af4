"""`polyfleet reactivate` as a technician and cron run it, against a simulated fleet served by the
test process: every exit code (0 confirmed, 1 failed, 4 ineligible, 2 usage), the JSON shape,
--all-expired with and without --site, --dry-run, repeats, and no prompt without a terminal."""

from __future__ import annotations

import asyncio
import os
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from controller import reactivation_ledger
from inventory.database import DatabaseTarget, resolve_db
from inventory.key_files import key_ref
from simulator import uc_phone
from simulator.activation_keys import issue_key
from simulator.fleet import SITES
from simulator.https_face import current_device
from simulator.licensing import FEATURES_BY_FAMILY, effective_state, end_of_day
from simulator.portal import IssuedKey
from simulator.state import LicenseState, SimDevice, SimLicense
from tests.e2e.cli import Outcome, polyfleet
from tests.e2e.reactivation_fleet import (
    CONTRACT,
    TODAY,
    ManagedFleet,
    expired_feature,
    finish,
    issued_keys,
    make_devices,
    managed_fleet,
    operations,
)

CONFIRMATION_KEYS = {
    "number", "serial", "mac", "feature", "state_before", "state_after", "key_ref", "driver",
    "fee", "currency", "contract", "requested_at", "confirmed_at", "actor", "hash", "prev_hash",
}  # fmt: skip
"""A confirmation's JSON keys that scripts rely on (PRODUCT.md)."""
ROW_KEYS = {
    "serial", "feature", "status", "operation", "confirmation", "fee", "contract", "reason",
    "resumable", "plan",
}  # fmt: skip
NUMBER = re.compile(r"^RC-\d{4}-\d{6}$")


def by_serial(result: Outcome) -> dict[str, dict[str, Any]]:
    rows = result.json()
    assert isinstance(rows, list)
    return {row["serial"]: row for row in rows}


def untouched(device: SimDevice) -> bool:
    """The device loaded no key and its expired feature is still expired."""
    state = effective_state(device.licenses[expired_feature(device)])
    return device.applied_keys == [] and state is LicenseState.EXPIRED


def activated_once(fleet: ManagedFleet, device: SimDevice, record: dict[str, Any]) -> bool:
    """One key obtained, one key loaded (the one the record names), and the feature active."""
    state = effective_state(device.licenses[expired_feature(device)])
    return (
        len(issued_keys(fleet, device.serial)) == 1
        and len(device.applied_keys) == 1
        and key_ref(device.applied_keys[0]) == record["key_ref"]
        and state is LicenseState.ACTIVE
    )


async def confirmations(fleet: ManagedFleet) -> list[dict[str, Any]]:
    listed = await fleet.cli("confirmations", "list", "-o", "json")
    assert listed.code == 0, listed.stderr
    # the audit listing adds each record's signature; reactivate shows the PRODUCT.md keys
    records: list[dict[str, Any]] = [
        {k: v for k, v in r.items() if k != "signature"} for r in listed.json()
    ]
    return records


@contextmanager
def portal_issuing(fleet: ManagedFleet, then: Any) -> Iterator[None]:
    """Call `then(serial)` each time the licensing portal issues a key."""
    portal = fleet.running.portal
    issue = portal.issue

    def issue_then(serial: str, feature: str) -> IssuedKey:
        issued = issue(serial, feature)
        then(serial)
        return issued

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(portal, "issue", issue_then)
        yield


async def test_confirms_one_device_by_mac_and_a_repeat_returns_the_same_record(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    devices = make_devices(2, expired=2)
    camera = next(d for d in devices if d.family == "studiox")
    assert camera.mac is not None
    assert camera.mac.upper() != camera.serial
    mac = "-".join(camera.mac[i : i + 2] for i in range(0, 12, 2))  # 48-25-67-d7-e1-1b
    async with managed_fleet(
        tmp_path, db_url, devices, [d.serial for d in devices], target=db_target
    ) as fleet:
        done = await fleet.cli("reactivate", mac, "--yes", "-o", "json")
        assert done.code == 0, done.stderr
        [row] = done.json()
        assert set(row) == ROW_KEYS
        assert (row["serial"], row["feature"], row["status"]) == (
            camera.serial, expired_feature(camera), "confirmed",
        )  # fmt: skip
        record = row["confirmation"]
        assert set(record) == CONFIRMATION_KEYS
        assert NUMBER.match(record["number"])
        assert record["mac"] == camera.mac
        assert (record["state_before"], record["state_after"]) == ("expired", "active")
        assert (record["fee"], record["currency"], record["contract"]) == ("49.00", "USD", CONTRACT)
        assert record["driver"] == "poly-videoos"
        assert record["confirmed_at"].endswith(("Z", "+00:00"))
        assert activated_once(fleet, camera, record)
        assert "1 confirmed" in done.stderr

        # Asking again (no --feature: every feature on record) applies nothing and answers
        # with the existing confirmation; the camera's other features were active all along.
        again = await fleet.cli("reactivate", camera.serial, "--yes", "-o", "json")
        assert again.code == 0, again.stderr
        statuses = {r["feature"]: r["status"] for r in again.json()}
        assert statuses.pop(expired_feature(camera)) == "already_confirmed"
        assert set(statuses.values()) == {"already_active"}
        [repeat] = [r for r in again.json() if r["status"] == "already_confirmed"]
        assert repeat["confirmation"] == record
        assert activated_once(fleet, camera, record)
        assert await confirmations(fleet) == [record]
        [op] = await operations(db_target, camera.serial)
        assert op.state == "confirmed"


async def test_a_device_no_contract_covers_exits_4_and_nothing_is_applied(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    devices = make_devices(2, expired=1)
    bare = devices[0]
    async with managed_fleet(
        tmp_path, db_url, devices, [devices[1].serial], target=db_target
    ) as fleet:
        result = await fleet.cli("reactivate", bare.serial, "--yes", "-o", "json")
        assert result.code == 4, result.stderr
        [row] = result.json()
        assert (row["status"], row["confirmation"], row["fee"]) == ("ineligible", None, None)
        assert "contract" in row["reason"]
        assert untouched(bare)
        assert issued_keys(fleet, bare.serial) == []
        assert await confirmations(fleet) == []
        [op] = await operations(db_target, bare.serial)
        assert op.events == ["requested", "ineligible"]
        table = await fleet.cli("reactivate", bare.serial, "--yes")
        assert table.code == 4
        assert "ineligible" in table.stdout
        as_csv = await fleet.cli("reactivate", bare.serial, "--yes", "-o", "csv")
        assert as_csv.code == 4
        [header, line] = as_csv.stdout.splitlines()
        assert header == "serial,feature,status,confirmation,fee,contract,reason"
        assert line.startswith(f"{bare.serial},{expired_feature(bare)},ineligible,,,,")


async def test_no_key_then_a_refused_key_exit_1_and_a_rerun_with_the_portal_confirms(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    devices = make_devices(2, expired=1)
    phone, other = devices
    feature = expired_feature(phone)
    async with managed_fleet(
        tmp_path, db_url, devices, [d.serial for d in devices], target=db_target
    ) as fleet:
        # No portal configured and no key imported: failed, resumable, nothing applied.
        nokey = await fleet.cli("reactivate", phone.serial, "--yes", "-o", "json", portal=False)
        assert nokey.code == 1, nokey.stderr
        [row] = nokey.json()
        assert (row["status"], row["resumable"]) == ("failed", True)
        assert "polyfleet keys import" in row["reason"]
        assert f"rerun to resume {row['operation']}" in nokey.stderr

        # A key minted for another serial, imported as this device's: the device refuses it.
        wrong = issue_key(
            fleet.running.secrets.portal_secret, other.serial, feature, TODAY + timedelta(days=90)
        )
        keys = tmp_path / "keys.csv"
        keys.write_text(f"serial,feature,key\n{phone.serial},{feature},{wrong}\n")
        assert (await fleet.cli("keys", "import", str(keys))).code == 0
        refused = await fleet.cli("reactivate", phone.serial, "--yes", "-o", "json", portal=False)
        assert refused.code == 1, refused.stderr
        [row] = refused.json()
        assert (row["status"], row["resumable"], row["confirmation"]) == ("failed", False, None)
        assert "refused" in row["reason"]
        assert untouched(phone)
        assert await confirmations(fleet) == []

        # The failed operation is finished; with the portal a new one confirms.
        fixed = await fleet.cli("reactivate", phone.serial, "--yes", "-o", "json")
        assert fixed.code == 0, fixed.stderr
        [row] = fixed.json()
        assert row["status"] == "confirmed"
        assert activated_once(fleet, phone, row["confirmation"])
        failed, confirmed = await operations(db_target, phone.serial)
        assert (failed.state, confirmed.state) == ("failed", "confirmed")
        assert failed.events == [
            "requested", "eligible", "quoted", "approved", "key_obtained", "failed",
        ]  # fmt: skip


async def test_a_device_lost_mid_way_exits_1_and_a_rerun_resumes_the_same_operation(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    devices = make_devices(2, expired=1)
    phone = devices[0]

    def lose(serial: str) -> None:
        if serial == phone.serial:
            phone.faults.unreachable = True

    async with managed_fleet(
        tmp_path, db_url, devices, [d.serial for d in devices], target=db_target
    ) as fleet:
        with portal_issuing(fleet, lose):
            args = ("reactivate", phone.serial, "--yes", "--timeout", "0.5", "-o", "json")
            lost = await fleet.cli(*args)
        assert lost.code == 1, lost.stderr
        [row] = lost.json()
        assert (row["status"], row["resumable"]) == ("failed", True)
        assert f"rerun to resume {row['operation']}" in lost.stderr
        assert untouched(phone)

        phone.faults.unreachable = False
        resumed = await fleet.cli("reactivate", phone.serial, "--yes", "-o", "json")
        assert resumed.code == 0, resumed.stderr
        [again] = resumed.json()
        assert (again["status"], again["operation"]) == ("confirmed", row["operation"])
        assert activated_once(fleet, phone, again["confirmation"])  # the same key, once


async def test_all_expired_by_site_then_all_exit_0_and_a_repeat_does_nothing(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    devices = make_devices(6, expired=4)  # expired: 0 and 2 at SITES[0], 1 and 3 at SITES[1]
    expired = devices[:4]
    async with managed_fleet(
        tmp_path, db_url, devices, [d.serial for d in devices], target=db_target
    ) as fleet:
        first = await fleet.cli(
            "reactivate", "--all-expired", "--site", SITES[0], "--yes", "-o", "json"
        )
        assert first.code == 0, first.stderr
        rows = by_serial(first)
        assert set(rows) == {expired[0].serial, expired[2].serial}
        assert {r["status"] for r in rows.values()} == {"confirmed"}
        assert untouched(expired[1])
        assert untouched(expired[3])

        rest = await fleet.cli("reactivate", "--all-expired", "--yes", "-o", "json")
        assert rest.code == 0, rest.stderr
        rows |= by_serial(rest)
        assert set(by_serial(rest)) == {expired[1].serial, expired[3].serial}
        for device in expired:
            assert rows[device.serial]["status"] == "confirmed"
            assert activated_once(fleet, device, rows[device.serial]["confirmation"])
        assert devices[4].applied_keys == devices[5].applied_keys == []

        repeat = await fleet.cli("reactivate", "--all-expired", "--yes")
        assert repeat.code == 0, repeat.stderr
        assert "nothing to do" in repeat.stderr
        assert all(len(d.applied_keys) == 1 for d in expired)
        assert len(await confirmations(fleet)) == 4
        verify = await fleet.cli("confirmations", "verify")
        assert verify.code == 0, verify.stdout + verify.stderr


async def test_all_expired_keeps_what_the_devices_report_so_a_repeat_does_nothing(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch writes the licenses read after its confirmations several devices at a time:
    every device's (a phone with two expired features reported once, by its later read) is
    kept, including those that did not fill a last group, so a repeat finds nothing expired."""
    monkeypatch.setattr(reactivation_ledger, "OBSERVATIONS_PER_WRITE", 2)
    devices = make_devices(4, expired=4)  # 5 features: two full groups, then one left over
    phone = next(d for d in devices if d.family == "vvx")
    second = FEATURES_BY_FAMILY["vvx"][1]
    phone.licenses[second] = SimLicense(
        second, LicenseState.EXPIRED, end_of_day(TODAY - timedelta(days=7))
    )
    async with managed_fleet(
        tmp_path, db_url, devices, [d.serial for d in devices], target=db_target
    ) as fleet:
        done = await fleet.cli("reactivate", "--all-expired", "--yes", "-o", "json")
        assert done.code == 0, done.stderr
        rows = done.json()
        assert len(rows) == 5
        assert {r["status"] for r in rows} == {"confirmed"}
        repeat = await fleet.cli("reactivate", "--all-expired", "--yes")
        assert repeat.code == 0, repeat.stderr
        assert "nothing to do" in repeat.stderr
        assert len(await confirmations(fleet)) == 5


async def test_all_expired_exits_1_when_any_device_fails_and_still_does_the_rest(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    devices = make_devices(4, expired=3)
    good, down, bare, _ = devices
    async with managed_fleet(
        tmp_path, db_url, devices, [good.serial, down.serial], target=db_target
    ) as fleet:
        down.faults.unreachable = True
        result = await fleet.cli(
            "reactivate", "--all-expired", "--yes", "--timeout", "0.5", "-o", "json"
        )
        assert result.code == 1, result.stderr
        rows = by_serial(result)
        statuses = {serial: row["status"] for serial, row in rows.items()}
        assert statuses == {
            good.serial: "confirmed",
            down.serial: "failed",
            bare.serial: "ineligible",
        }
        assert activated_once(fleet, good, rows[good.serial]["confirmation"])
        assert untouched(down)
        assert untouched(bare)
        assert [r["serial"] for r in await confirmations(fleet)] == [good.serial]


async def test_dry_run_and_a_missing_terminal_change_nothing(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    devices = make_devices(3, expired=2)
    covered, bare = devices[0], devices[1]
    async with managed_fleet(
        tmp_path, db_url, devices, [covered.serial, devices[2].serial], target=db_target
    ) as fleet:
        # --dry-run needs no --yes and no terminal
        plan = await fleet.cli("reactivate", covered.serial, "--dry-run", "-o", "json")
        assert plan.code == 0, plan.stderr
        [row] = plan.json()
        assert row["status"] == "planned"
        steps = "\n".join(row["plan"])
        assert f"device reports {expired_feature(covered)} expired" in steps
        assert f"fee 49.00 USD (per-device), contract {CONTRACT}" in steps
        assert "would request a key from portal" in steps
        assert "would verify, then append a confirmation record" in steps
        batch = await fleet.cli("reactivate", "--all-expired", "--dry-run")
        assert batch.code == 1  # one of the two would be refused as ineligible
        assert covered.serial in batch.stdout
        assert bare.serial in batch.stdout
        assert "dry run, nothing changed" in batch.stderr

        for args in ((covered.serial,), ("--all-expired",)):
            asked = await fleet.cli("reactivate", *args)
            assert asked.code == 1
            assert "no terminal to confirm on: pass --yes" in asked.stderr
            assert asked.stdout == ""

        for device in (covered, bare):
            assert untouched(device)
            assert await operations(db_target, device.serial) == []
        assert fleet.running.portal.issued == []
        assert (await fleet.cli("keys", "list", "-o", "json")).json() == []
        assert await confirmations(fleet) == []


async def test_a_per_term_fee_is_charged_once_per_contract(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    devices = make_devices(3, expired=3)
    async with managed_fleet(
        tmp_path, db_url, devices, [d.serial for d in devices], target=db_target,
        pricing="per-term",
    ) as fleet:  # fmt: skip
        # A batch first: its devices are worked on concurrently, yet one of them pays the term.
        batch = await fleet.cli(
            "reactivate", "--all-expired", "--site", SITES[0], "--yes", "-o", "json"
        )
        assert batch.code == 0, batch.stderr
        assert sorted(r["confirmation"]["fee"] for r in batch.json()) == ["0.00", "990.00"]
        later = await fleet.cli("reactivate", devices[1].serial, "--yes", "-o", "json")
        assert later.code == 0, later.stderr
        [row] = later.json()
        assert row["confirmation"]["fee"] == "0.00"
        records = await confirmations(fleet)
        assert [r["fee"] for r in records] == ["990.00", "0.00", "0.00"]  # in chain order
        assert {r["contract"] for r in records} == {CONTRACT}


async def answer_prompt(fleet: ManagedFleet, serial: str, answer: str) -> Outcome:
    """`polyfleet reactivate SERIAL` on a terminal (a pty), typing `answer` at the prompt."""
    return await answer_on_terminal(fleet, answer, serial)


async def answer_on_terminal(fleet: ManagedFleet, answer: str, *args: str) -> Outcome:
    """`polyfleet reactivate ARGS` on a terminal (a pty), typing `answer` at the prompt."""
    controller, terminal = os.openpty()
    try:
        process = await fleet.spawn("reactivate", *args, "--actor", "tech", stdin=terminal)
        os.close(terminal)
        os.write(controller, f"{answer}\n".encode())
        return await finish(process)
    finally:
        os.close(controller)


async def test_on_a_terminal_the_technician_sees_the_fee_and_may_decline(tmp_path: Path) -> None:
    target = resolve_db(str(tmp_path / "polyfleet.db"))
    db = target.url.replace("sqlite+aiosqlite:///", "sqlite:///")
    devices = make_devices(2, expired=1)
    phone = devices[0]
    async with managed_fleet(tmp_path, db, devices, [phone.serial], target=target) as fleet:
        declined = await answer_prompt(fleet, phone.serial, "n")
        assert declined.code == 1, declined.stderr
        shown = declined.stderr
        assert f"device   {phone.serial} ({phone.model}, site {phone.site})" in shown
        assert f"feature  {expired_feature(phone)}" in shown
        assert "fee      49.00 USD (per-device)" in shown
        assert f"contract {CONTRACT}" in shown
        assert "Re-activate?" in shown
        assert "declined" in declined.stdout
        assert untouched(phone)
        assert issued_keys(fleet, phone.serial) == []  # declined before a key was requested
        [op] = await operations(target, phone.serial)
        assert op.events == ["requested", "eligible", "quoted", "failed"]
        assert op.details[-1] == "declined by tech"

        accepted = await answer_prompt(fleet, phone.serial, "y")
        assert accepted.code == 0, accepted.stderr
        assert "confirmed" in accepted.stdout
        [record] = await confirmations(fleet)
        assert record["actor"] == "tech"
        assert activated_once(fleet, phone, record)


async def test_on_a_terminal_all_expired_shows_the_plan_first_and_a_no_does_nothing(
    tmp_path: Path,
) -> None:
    target = resolve_db(str(tmp_path / "polyfleet.db"))
    db = target.url.replace("sqlite+aiosqlite:///", "sqlite:///")
    devices = make_devices(3, expired=2)
    expired = devices[:2]
    async with managed_fleet(
        tmp_path, db, devices, [d.serial for d in devices], target=target
    ) as fleet:
        declined = await answer_on_terminal(fleet, "n", "--all-expired")
        assert declined.code == 1, declined.stderr
        assert "plan" in declined.stderr
        for device in expired:
            assert device.serial in declined.stderr
        assert "Re-activate 2 feature(s)?" in declined.stderr
        assert "error: nothing done" in declined.stderr
        assert all(untouched(d) and issued_keys(fleet, d.serial) == [] for d in expired)

        accepted = await answer_on_terminal(fleet, "y", "--all-expired", "-o", "json")
        assert accepted.code == 0, accepted.stderr
        rows = by_serial(accepted)
        assert set(rows) == {d.serial for d in expired}
        for device in expired:
            assert rows[device.serial]["status"] == "confirmed"
            assert activated_once(fleet, device, rows[device.serial]["confirmation"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("SN-1", "--all-expired"), "give a device ID or --all-expired (not both)"),
        ((), "give a device ID or --all-expired (not both)"),
        (("SN-1", "--site", "hq-berlin"), "--site goes with --all-expired"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = polyfleet(str(tmp_path / "x.db"), "reactivate", *args, "--yes")
    assert result.code == 2
    assert message in result.stderr
    assert result.stdout == ""


async def test_a_device_busy_for_a_moment_is_retried_at_the_step_it_was_on(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    devices = make_devices(2, expired=2)
    phone = next(d for d in devices if d.family == "vvx")

    def busy_for_a_moment(serial: str) -> None:
        """Right after the key is issued the phone is in a call (UC 4001) for 0.4 s."""
        if serial == phone.serial:
            phone.faults.busy = True
            asyncio.get_running_loop().call_later(0.4, setattr, phone.faults, "busy", False)

    async with managed_fleet(
        tmp_path, db_url, devices, [d.serial for d in devices], target=db_target
    ) as fleet:
        with portal_issuing(fleet, busy_for_a_moment):
            done = await fleet.cli("reactivate", phone.serial, "--yes", "-o", "json")
        assert done.code == 0, done.stderr
        [row] = done.json()
        assert row["status"] == "confirmed"
        assert activated_once(fleet, phone, row["confirmation"])
        [op] = await operations(db_target, phone.serial)
        assert op.events == [
            "requested", "eligible", "quoted", "approved", "key_obtained", "applied",
            "verified", "confirmed",
        ]  # fmt: skip


async def test_a_phone_is_asked_each_thing_once_per_step_that_needs_it(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A UC phone's re-activation asks the phone only what a step needs: its identity twice (at
    the start and right before the key goes out), its licenses three times (the look that
    begins the operation, the look right before applying, the poll that sees the key loaded;
    the verification and the record kept afterwards use that read), its provisioning server
    once and one configuration update. A read repeated with nothing done between shows here."""
    asked: Counter[tuple[str, str, str]] = Counter()
    middleware = uc_phone._auth_and_busy

    @web.middleware
    async def counting(request: web.Request, handler: Any) -> web.StreamResponse:
        asked[current_device(request).serial, request.method, request.path] += 1
        return await middleware(request, handler)

    monkeypatch.setattr(uc_phone, "_auth_and_busy", counting)
    devices = make_devices(2, expired=2)
    phone = next(d for d in devices if d.family == "vvx")
    async with managed_fleet(
        tmp_path, db_url, devices, [d.serial for d in devices], target=db_target
    ) as fleet:
        asked.clear()  # the scan before
        done = await fleet.cli("reactivate", phone.serial, "--yes", "-o", "json")
        assert done.code == 0, done.stderr
        [row] = done.json()
        assert activated_once(fleet, phone, row["confirmation"])
    api = "/api/v1/mgmt"
    assert {(m, p): n for (serial, m, p), n in asked.items() if serial == phone.serial} == {
        ("GET", f"{api}/device/info"): 2,
        ("GET", f"{api}/license/info"): 3,
        ("GET", f"{api}/network/info"): 1,
        ("POST", f"{api}/updateConfiguration"): 1,
    }


async def test_all_expired_names_the_devices_it_could_not_judge(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    devices = make_devices(2, expired=1)
    async with managed_fleet(
        tmp_path, db_url, devices, [d.serial for d in devices], target=db_target
    ) as fleet:
        for serial in ("SN-NEVER-READ-1", "SN-NEVER-READ-2"):  # added after the last scan
            added = await fleet.cli("inventory", "add", serial, "--host", "127.0.0.1")
            assert added.code == 0, added.stderr
        assert (await fleet.cli("inventory", "add", "SN-ANALOG")).code == 0  # no address
        for args in (("--dry-run",), ("--yes",)):
            batch = await fleet.cli("reactivate", "--all-expired", *args, "-o", "json")
            assert batch.code == 0, batch.stderr
            assert [row["serial"] for row in batch.json()] == [devices[0].serial]
            assert (
                "2 device(s) not judged, their licenses were never read (run `polyfleet scan`, "
                "then again): SN-NEVER-READ-1, SN-NEVER-READ-2"
            ) in batch.stderr
            assert "SN-ANALOG" not in batch.stderr


async def test_a_device_dropping_every_other_request_is_read_through_retries(
    db_target: DatabaseTarget, db_url: str, tmp_path: Path
) -> None:
    devices = make_devices(2, expired=2)

    def steady(serial: str) -> None:
        """The flaky link settles before the key is applied (a key is never sent blindly)."""
        for device in devices:
            if device.serial == serial:
                device.faults.flapping = False

    async with managed_fleet(
        tmp_path, db_url, devices, [d.serial for d in devices], target=db_target
    ) as fleet:
        for device in devices:
            device.faults.flapping = True  # every second HTTPS request dropped unanswered
        plan = await fleet.cli("reactivate", "--all-expired", "--dry-run", "-o", "json")
        assert plan.code == 0, plan.stdout + plan.stderr
        assert {row["status"] for row in plan.json()} == {"planned"}
        with portal_issuing(fleet, steady):
            done = await fleet.cli("reactivate", "--all-expired", "--yes", "-o", "json")
        assert done.code == 0, done.stdout + done.stderr
        rows = by_serial(done)
        for device in devices:
            assert activated_once(fleet, device, rows[device.serial]["confirmation"])
