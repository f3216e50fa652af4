"""`polyfleet demo`: the whole story on a simulated fleet, in one command, exit 0 when it holds.

It starts `polyfleet simulate` the way an admin would in a second terminal, then runs the real
commands against it in a throw-away store (import, scan, health, quote, re-activate, the audit
record) and shows each command before its output, so the demo doubles as a tutorial.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.rule import Rule

from controller.cli.console import data_console, styled
from controller.cli.context import fail

START_TIMEOUT_S = 120.0
DEMO_BASE_ADDRESS = "127.77.0.1"


def _polyfleet(*args: str) -> list[str]:
    return [sys.executable, "-m", "controller.cli", *args]


@contextmanager
def simulated_fleet(work: Path, env: dict[str, str], devices: int, seed: int) -> Iterator[Path]:
    """Run `polyfleet simulate` until the block ends; yields the inventory file it wrote."""
    inventory = work / "fleet.csv"
    log = (work / "simulate.log").open("w")
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        _polyfleet(
            "simulate", "--devices", str(devices), "--seed", str(seed),
            "--base-address", DEMO_BASE_ADDRESS, "--inventory-out", str(inventory),
        ),
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        portal = work / "fleet.portal.toml"
        while not portal.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                fail("the simulated fleet did not start:\n" + (work / "simulate.log").read_text())
            time.sleep(0.1)
        time.sleep(0.2)  # the portal file is written last; let it land
        yield inventory
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


class Demo:
    """Runs and shows one command after another; any unexpected exit code ends the demo."""

    def __init__(self, console: Console, env: dict[str, str]) -> None:
        self.console = console
        self.env = env

    def step(self, title: str, *args: str, ok: Sequence[int] = (0,)) -> int:
        self.console.print(Rule(title, style="cyan"))
        self.console.print(styled(f"$ polyfleet {shlex.join(args)}", "bold"))
        sys.stdout.flush()
        code = subprocess.run(_polyfleet(*args), env=self.env, check=False, timeout=600).returncode  # noqa: S603
        if code not in ok:
            fail(f"demo step {title!r} exited {code}, expected {' or '.join(map(str, ok))}")
        return code

    def capture(self, *args: str) -> str:
        """stdout of a command whose exit code tells a status (health), not a failure."""
        return subprocess.run(  # noqa: S603 - our own interpreter and arguments
            _polyfleet(*args),
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        ).stdout


def demo(
    devices: Annotated[
        int, typer.Option(min=10, max=2000, help="size of the simulated fleet")
    ] = 50,
    seed: Annotated[int, typer.Option(help="same seed, same fleet")] = 7,
) -> None:
    """Simulate a fleet, then import, scan, check, quote, re-activate and audit it."""
    console = data_console(sys.stdout)
    with tempfile.TemporaryDirectory(prefix="polyfleet-demo-") as tmp:
        work = Path(tmp)
        env = {
            **os.environ,
            "POLYFLEET_DB": str(work / "demo.db"),
            "POLYFLEET_SECRET_KEY_FILE": str(work / "secret.key"),
            "POLYFLEET_CONFIG": str(work / "fleet.portal.toml"),
        }
        env.pop("POLYFLEET_SECRET_KEY", None)
        console.print(Rule(f"starting a simulated fleet of {devices} devices", style="cyan"))
        with simulated_fleet(work, env, devices, seed) as inventory:
            console.print((work / "simulate.log").read_text().rstrip())
            run = Demo(console, env)
            run.step("credentials the fleet uses (secrets stay encrypted)",
                     "credentials", "import", str(work / "fleet.credentials.toml"))  # fmt: skip
            run.step("import the inventory", "inventory", "import", str(inventory))
            run.step(
                "import the contracts", "contracts", "import", str(work / "fleet.contracts.csv")
            )
            run.step("scan the fleet: identity and license state", "scan", ok=(0, 1))
            run.step("license health (nagios format, as cron would run it)",
                     "health", "--format", "nagios", ok=(0, 1, 2))  # fmt: skip
            health = json.loads(run.capture("health", "--format", "json"))
            expired = [d["serial"] for d in health["devices"] if d["status"] == "CRITICAL"]
            if expired:
                run.step("what re-activating one device costs", "quote", expired[0], ok=(0, 4))
            run.step("what --all-expired would do", "reactivate", "--all-expired", "--dry-run",
                     ok=(0, 1, 4))  # fmt: skip
            run.step("re-activate every expired device", "reactivate", "--all-expired", "--yes",
                     ok=(0, 1))  # fmt: skip
            run.step("health afterwards", "health", ok=(0, 1, 2))
            run.step("the audit record", "confirmations", "list")
            run.step("verify the hash chain", "confirmations", "verify")
            if expired:
                run.step("asking again is safe: the existing confirmation comes back",
                         "reactivate", expired[0], "--yes", ok=(0, 4))  # fmt: skip
        console.print(Rule("done: fleet stopped, demo store removed", style="green"))
