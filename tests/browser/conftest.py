"""The dashboard in Debian's Chromium: one simulated fleet, one `polyfleet serve` and one browser
for this package's tests (they are slow to start), a fresh browser context per test. Package
scope, not session: Playwright's sync API holds an event loop on the main thread while it runs,
so it must be gone before the asynchronous tests of other packages start.

The fleet runs in this process on a thread of its own (its event loop must keep serving while
the tests drive the browser synchronously); `serve` is a real subprocess on loopback, as a user
starts it. Every test fails on a browser console error or an uncaught page exception.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from inventory.database import resolve_db
from inventory.store import InventoryStore
from inventory.token_store import Role, TokenStore
from simulator.licensing import end_of_day
from simulator.state import LicenseState as SimLicenseState
from simulator.state import SimDevice, SimLicense
from tests.e2e.reactivation_fleet import (
    TODAY,
    ManagedFleet,
    expired_feature,
    make_devices,
    managed_fleet,
)

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
START_TIMEOUT_S = 60.0
DEVICES = 12
EXPIRED = 3
"""The first EXPIRED devices have an expired license; all are under contract."""
EXPIRING = {EXPIRED + 3: 20, EXPIRED + 4: 75}
"""Device index -> days until its first feature's license expires (the overview's windows)."""
UNREADABLE = EXPIRED + 5
"""The device whose firmware lacks the license route: rescanned with it, so its license state
could not be read (the overview says why)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.browser)


@dataclass(slots=True)
class Dashboard:
    """The running `serve`, the fleet behind it and a token of each role."""

    url: str
    fleet: ManagedFleet
    devices: list[SimDevice]
    tokens: dict[Role, str]
    env: dict[str, str]
    """The environment `serve` runs with (its secret and signing key files)."""

    def polyfleet(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`polyfleet --db DB ARGS` as a user on the controller's host runs it."""
        return subprocess.run(
            [sys.executable, "-m", "controller.cli", "--db", self.fleet.db, *args],
            env={**os.environ, **self.env}, capture_output=True, text=True,
            timeout=START_TIMEOUT_S, check=False,
        )  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"polyfleet serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):  # noqa: S310 (loopback)
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"polyfleet serve did not answer {url}/healthz in {START_TIMEOUT_S}s")


@pytest.fixture(scope="package")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """A scanned simulated fleet behind `polyfleet serve` on 127.0.0.1."""
    work = tmp_path_factory.mktemp("dashboard")
    env = {
        "POLYFLEET_SECRET_KEY": Fernet.generate_key().decode(),
        "POLYFLEET_SECRET_KEY_FILE": str(work / "secret.key"),
        "XDG_DATA_HOME": str(work / "data"),
        "XDG_CONFIG_HOME": str(work / "config"),
    }
    db = str(work / "polyfleet.db")
    target = resolve_db(db)
    devices = make_devices(DEVICES, expired=EXPIRED)
    for index, days in EXPIRING.items():
        feature = expired_feature(devices[index])
        devices[index].licenses[feature] = SimLicense(
            feature, SimLicenseState.ACTIVE, end_of_day(TODAY + timedelta(days=days))
        )
    loop = asyncio.new_event_loop()
    ready: Future[tuple[ManagedFleet, dict[Role, str]]] = Future()
    stop = asyncio.Event()

    async def hold() -> None:
        try:
            async with managed_fleet(
                work, db, devices, [d.serial for d in devices], target=target
            ) as fleet:
                unreadable = fleet.device(devices[UNREADABLE].serial)
                unreadable.faults.license_api_absent = True
                rescan = await fleet.cli("scan", "--id", unreadable.serial)
                assert rescan.code == 1, rescan  # 1: a license state could not be read
                async with await InventoryStore.open(target) as store:
                    tokens = TokenStore(store.engine)
                    made = {
                        role: (await tokens.create(role, name=f"{role.value} in tests"))[1]
                        for role in (Role.VIEWER, Role.TECHNICIAN, Role.ADMIN)
                    }
                ready.set_result((fleet, made))
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    def serve_fleet() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(hold())

    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        for name in ("POLYFLEET_DB", "POLYFLEET_CONFIG"):
            patch.delenv(name, raising=False)
        thread = threading.Thread(target=serve_fleet, name="simulated-fleet", daemon=True)
        thread.start()
        fleet, tokens = ready.result(timeout=START_TIMEOUT_S * 2)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = (work / "serve.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "--db", db, "--config", str(fleet.config),
             "serve", "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )  # fmt: skip
        try:
            _wait_ready(url, server)
            yield Dashboard(url, fleet, devices, tokens, env)
        except RuntimeError:
            log.flush()
            raise RuntimeError((work / "serve.log").read_text(errors="replace")) from None
        finally:
            server.terminate()
            server.wait(START_TIMEOUT_S)
            log.close()
            loop.call_soon_threadsafe(stop.set)
            thread.join(START_TIMEOUT_S)


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless. Missing in CI is a failure, never a skip."""
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        message = f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    yield launched
    launched.close()


@dataclass(slots=True)
class ConsoleWatch:
    """Console errors and uncaught exceptions of the page; `expect` admits ones a test causes
    on purpose (a 401 when it types a wrong token)."""

    errors: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)

    def expect(self, fragment: str) -> None:
        self.expected.append(fragment)

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(f in e for f in self.expected)]


@pytest.fixture
def console() -> ConsoleWatch:
    return ConsoleWatch()


@pytest.fixture
def page(browser: Browser, dashboard: Dashboard, console: ConsoleWatch) -> Iterator[Page]:
    context = browser.new_context(base_url=dashboard.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    opened = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console.errors.append(f"console: {message.text} ({message.location.get('url')})")

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: console.errors.append(f"uncaught: {error}"))
    yield opened
    context.close()
    assert console.unexpected() == [], "the browser console reported errors"


SignIn = Callable[[Role], None]


@pytest.fixture
def sign_in(page: Page, dashboard: Dashboard) -> SignIn:
    """Open the dashboard and sign in with a token of `role`, as a user pastes one."""

    def go(role: Role) -> None:
        page.goto("/")
        page.get_by_label("API token").fill(dashboard.tokens[role])
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Fleet overview").wait_for()

    return go


NUMBER = re.compile(r"^RC-\d{4}-\d{6}$")


def reactivate(page: Page, serial: str) -> str:
    """On a device's page as a technician: the quote (verdict, fee, SLA due date) first, then
    confirm, then the confirmation number shown."""
    page.goto(f"/#/devices/{serial}")
    page.get_by_role("button", name="Get a quote").click()
    expect(page.locator("#quote-verdict")).to_have_text("Eligible")
    expect(page.get_by_text("SLA due")).to_be_visible()
    page.get_by_role("button", name=re.compile(r"^Re-activate for \d+\.\d\d USD$")).click()
    number = page.locator("#confirmation-number")
    expect(number).to_have_text(NUMBER, timeout=60_000)
    return number.inner_text()


def page_range(last: int, total: int, first: int = 1) -> str:
    """What the pager says, e.g. `1 to 50 of 120` with an en dash for "to"."""
    return f"{first}\N{EN DASH}{last} of {total}"


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.x A/AA violations on the page as shown (axe is evaluated through the
    DevTools protocol, which the page's Content-Security-Policy does not restrict)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = page.evaluate(
        """async () => await axe.run(document, {runOnly: {type: "tag", values: [
            "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}})"""
    )
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
    ]
