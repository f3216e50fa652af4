"""What an IT admin and a technician do in the dashboard, in headless Chromium against
`polyfleet serve` and a simulated fleet: sign in, filter, open a device, re-activate it and see
the confirmation; what a viewer is not offered; live job progress; the audit record."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from inventory.token_store import Role
from simulator.fleet import SITES
from tests.browser.conftest import (
    EXPIRED,
    UNREADABLE,
    ConsoleWatch,
    Dashboard,
    SignIn,
    page_range,
    reactivate,
)
from tests.e2e.reactivation_fleet import expired_feature


def dashed(mac: str) -> str:
    """A MAC the way a label on the device spells it: `00-04-F2-AA-BB-CC`."""
    return "-".join(mac[i : i + 2] for i in range(0, 12, 2)).upper()


def test_a_wrong_token_is_refused(page: Page, console: ConsoleWatch) -> None:
    console.expect("401")
    page.goto("/")
    page.get_by_label("API token").fill("pfk_000000000000_" + "x" * 43)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That token was not accepted.")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()


def test_technician_filters_opens_reactivates_and_sees_the_confirmation(
    page: Page, sign_in: SignIn, dashboard: Dashboard, tmp_path: Path
) -> None:
    sign_in(Role.TECHNICIAN)
    expect(page.locator("#last-scan")).not_to_have_text("—")

    page.get_by_role("link", name="Devices").click()
    everything = len(dashboard.devices)
    expect(page.locator("#page-range")).to_have_text(page_range(everything, everything))
    page.get_by_label("Site", exact=True).select_option(SITES[0])
    page.get_by_role("button", name="Apply").click()
    at_site = [d for d in dashboard.devices if d.site == SITES[0]]
    expect(page.locator("#page-range")).to_have_text(page_range(len(at_site), len(at_site)))

    device = dashboard.devices[0]  # expired, at SITES[0]
    assert device.mac is not None
    page.get_by_label("Serial or MAC").fill(dashed(device.mac))
    page.get_by_label("Serial or MAC").press("Enter")
    expect(page.locator("#page-range")).to_have_text(page_range(1, 1))
    expect(page.get_by_role("row")).to_have_count(2)
    page.get_by_role("link", name=device.serial).click()

    expect(page.get_by_role("heading", name=f"Device {device.serial}")).to_be_visible()
    expect(page.locator("#no-confirmations")).to_be_visible()
    confirmation = reactivate(page, device.serial)

    sim = dashboard.fleet.device(device.serial)
    assert len(sim.applied_keys) == 1, "the device loaded exactly one key"
    page.reload()
    expect(page.get_by_role("cell", name=confirmation)).to_be_visible()
    assert expired_feature(device) in page.locator("table").first.inner_text()

    page.get_by_role("link", name="Confirmations").click()
    expect(page.locator("#chain-status")).to_contain_text("Hash chain intact")
    expect(page.get_by_role("cell", name=confirmation)).to_be_visible()

    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert confirmation in saved.read_text(encoding="utf-8")
    verified = dashboard.polyfleet("confirmations", "verify", "--export", str(saved))
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_the_overview_counts_expiring_licenses_and_names_the_unread_device(
    page: Page, sign_in: SignIn, dashboard: Dashboard
) -> None:
    """One license runs out in 20 days and one in 75, so the 30/60/90-day windows count 1, 1
    and 2; one device's firmware has no license route: the overview names it and why."""
    sign_in(Role.VIEWER)
    windows = page.get_by_role("list", name="Licenses expiring").get_by_role("listitem")
    expect(windows).to_have_text(
        [
            re.compile(rf"^{count}\s*within {days} days \({count} devices?\)$")
            for count, days in ((1, 30), (1, 60), (2, 90))
        ]
    )
    unread = page.get_by_role("table", name=re.compile("whose license state could not be read"))
    rows = unread.locator("tbody tr")
    expect(rows).to_have_count(1)
    device = dashboard.devices[UNREADABLE]
    expect(rows.get_by_role("cell").nth(0)).to_have_text(device.serial)
    expect(rows.get_by_role("cell").nth(3)).to_contain_text("HTTP 404")


def test_viewer_is_not_offered_what_a_viewer_may_not_do(
    page: Page, sign_in: SignIn, dashboard: Dashboard
) -> None:
    sign_in(Role.VIEWER)
    expect(page.get_by_text("viewer", exact=False).first).to_be_visible()
    expect(page.get_by_role("button", name="Scan now")).to_have_count(0)
    device = dashboard.devices[EXPIRED]
    page.goto(f"/#/devices/{device.serial}")
    expect(page.get_by_role("heading", name=f"Device {device.serial}")).to_be_visible()
    expect(page.get_by_role("button", name="Get a quote")).to_have_count(0)
    expect(page.get_by_role("button", name="Probe the device")).to_have_count(0)


def test_a_scan_shows_its_progress_live(page: Page, sign_in: SignIn, dashboard: Dashboard) -> None:
    sign_in(Role.TECHNICIAN)
    page.get_by_role("link", name="Jobs").click()
    page.get_by_role("button", name="Scan now").click()
    status = page.locator("#scan-status")
    expect(status).to_contain_text("done", timeout=60_000)
    job = re.search(r"Scan job (\S+):", status.inner_text())
    assert job is not None
    row = page.locator(f'tr[data-job="{job.group(1)}"]')
    expect(row).to_contain_text("scan")
    expect(row).to_contain_text("done")


def test_a_probe_shows_what_each_call_answered(
    page: Page, sign_in: SignIn, dashboard: Dashboard
) -> None:
    sign_in(Role.TECHNICIAN)
    device = dashboard.devices[EXPIRED + 2]
    page.goto(f"/#/devices/{device.serial}")
    page.get_by_role("button", name="Probe the device").click()
    calls = page.get_by_role("table", name="Calls made by the probe")
    expect(calls).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Every needed call answered.")).to_be_visible()
    assert calls.get_by_role("row").count() > 1


def test_the_device_page_lists_every_scan_of_the_device(
    page: Page, sign_in: SignIn, dashboard: Dashboard
) -> None:
    """The fleet was scanned when it started; one more scan of this device makes (at least, if
    another test scanned too) two rows in its history, each with the license states read."""
    device = dashboard.devices[-1]
    scanned = dashboard.polyfleet("scan", "--id", device.serial)
    assert scanned.returncode == 0, scanned.stdout + scanned.stderr
    sign_in(Role.VIEWER)
    page.goto(f"/#/devices/{device.serial}")
    rows = page.get_by_role("table", name="Scans of this device, newest first").locator("tbody tr")
    expect(rows.nth(1)).to_be_visible()
    features = sorted(device.licenses)
    for row in (rows.nth(0), rows.nth(1)):
        expect(row.get_by_role("cell").nth(1)).to_have_text("yes")
        for feature in features:
            expect(row.get_by_role("cell").nth(2)).to_contain_text(f"{feature} ")


def test_sign_out_forgets_the_token(page: Page, sign_in: SignIn) -> None:
    sign_in(Role.VIEWER)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0
    page.reload()
    expect(page.get_by_label("API token")).to_be_visible()


def test_stored_values_are_shown_as_text(page: Page, sign_in: SignIn, dashboard: Dashboard) -> None:
    """A site name made of markup is displayed, never run or parsed."""
    sign_in(Role.VIEWER)
    page.goto("/#/devices?q=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    expect(page.get_by_label("Serial or MAC")).to_have_value("<img src=x onerror=alert(1)>")
    assert page.locator("img").count() == 0


def test_the_device_page_shows_its_tags(page: Page, sign_in: SignIn, dashboard: Dashboard) -> None:
    """Tags are name=value pairs, shown as text (a value made of markup stays text). Runs last:
    it adds a device the other tests' counts do not expect."""
    added = dashboard.polyfleet(
        "inventory", "add", "TAGGED0001", "--site", "lab",
        "--tag", "room=4.12", "--tag", "owner=<b>IT</b>",
    )  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr
    sign_in(Role.VIEWER)
    page.goto("/#/devices/TAGGED0001")
    expect(page.get_by_text("room=4.12, owner=<b>IT</b>")).to_be_visible()
    assert page.locator("main b").count() == 0
