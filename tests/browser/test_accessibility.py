"""Every main page passes axe-core (WCAG 2.1 A/AA: labels, contrast, landmarks, names) and the
main flow works from the keyboard alone; the screenshots in docs/ come from the same pages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from inventory.token_store import Role
from tests.browser.conftest import (
    EXPIRED,
    Dashboard,
    SignIn,
    axe_violations,
    page_range,
    reactivate,
)

SCREENSHOTS = "POLYFLEET_SCREENSHOTS"
"""Set to a directory (`make screenshots` sets docs/) to keep the pages' screenshots there."""


def pages(dashboard: Dashboard) -> list[tuple[str, str, str]]:
    """(name, hash, heading) of the main pages; the device is one with an expired license
    that the re-activation test leaves alone, so its quote is worth showing."""
    device = dashboard.devices[1]
    return [
        ("overview", "#/overview", "Fleet overview"),
        ("devices", "#/devices", "Devices"),
        ("device", f"#/devices/{device.serial}", f"Device {device.serial}"),
        ("confirmations", "#/confirmations", "Confirmations"),
        ("jobs", "#/jobs", "Jobs"),
    ]


def test_sign_in_page_has_no_axe_violations(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_label("API token")).to_be_focused()
    assert axe_violations(page) == []


def test_the_skip_link_leads_past_the_navigation(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_label("API token")).to_be_focused()
    page.keyboard.press("Shift+Tab")  # from the token field back to the first stop
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.TECHNICIAN])
def test_main_pages_have_no_axe_violations(
    page: Page, sign_in: SignIn, dashboard: Dashboard, role: Role
) -> None:
    sign_in(role)
    found = {}
    for name, where, heading in pages(dashboard):
        page.goto(f"/{where}")
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        found[name] = axe_violations(page)
    assert found == {name: [] for name, _, _ in pages(dashboard)}


def test_quote_has_no_axe_violations(page: Page, sign_in: SignIn, dashboard: Dashboard) -> None:
    sign_in(Role.TECHNICIAN)
    page.goto(f"/#/devices/{dashboard.devices[1].serial}")
    page.get_by_role("button", name="Get a quote").click()
    expect(page.locator("#quote-verdict")).to_be_visible()
    assert axe_violations(page) == []


def test_the_keyboard_alone_signs_in_searches_and_opens_a_device(
    page: Page, dashboard: Dashboard
) -> None:
    device = dashboard.devices[EXPIRED + 1]
    page.goto("/")
    expect(page.get_by_label("API token")).to_be_focused()
    page.keyboard.type(dashboard.tokens[Role.VIEWER])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Fleet overview")).to_be_visible()

    expect(page.locator("main")).to_be_focused()  # a screen reader starts at the new page
    for _ in range(4):  # back over Sign out, Jobs, Confirmations to Devices
        page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("link", name="Devices")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Devices", exact=True)).to_be_visible()
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")  # from the page's start to its first control
    expect(page.get_by_label("Serial or MAC")).to_be_focused()
    page.keyboard.type(device.serial)
    page.keyboard.press("Enter")
    expect(page.locator("#page-range")).to_have_text(page_range(1, 1))
    link = page.get_by_role("link", name=device.serial)
    link.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=f"Device {device.serial}")).to_be_visible()


def test_screenshots_of_the_main_pages(
    page: Page, sign_in: SignIn, dashboard: Dashboard, tmp_path: Path
) -> None:
    """Written to $POLYFLEET_SCREENSHOTS (docs/ via `make screenshots`), else a temporary dir."""
    folder = Path(os.environ.get(SCREENSHOTS) or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.goto("/")
    page.screenshot(path=folder / "dashboard-sign-in.png")
    sign_in(Role.TECHNICIAN)
    reactivate(page, dashboard.devices[2].serial)  # so the audit record and jobs show one
    for name, where, heading in pages(dashboard):
        page.goto(f"/{where}")
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        if name == "device":
            page.get_by_role("button", name="Get a quote").click()
            expect(page.locator("#quote-verdict")).to_be_visible()
        page.screenshot(path=folder / f"dashboard-{name}.png", full_page=True)
    written = sorted(p.name for p in folder.glob("dashboard-*.png"))
    assert len(written) == len(pages(dashboard)) + 1
