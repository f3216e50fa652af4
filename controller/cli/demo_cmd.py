"""`polyfleet demo`: the whole story so far, on a simulated fleet, in one command.

Each step runs the real `polyfleet` command line in a throw-away store and shows the command and
what it printed, so the demo doubles as a tutorial. Later steps (scan, health, re-activation)
join as those capabilities land.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.rule import Rule

from controller.cli.context import fail
from inventory.catalog import family_for_model, product_group_for_model
from inventory.models import Device

if TYPE_CHECKING:
    from simulator.state import SimDevice


def device_from_sim(sim: SimDevice) -> Device:
    """The inventory record an admin would hold for a simulated device."""
    family = family_for_model(sim.model)
    return Device(
        serial=sim.serial,
        mac=sim.mac,
        model=sim.model,
        product_group=product_group_for_model(sim.model),
        driver=family.driver.value if family else None,
        host=sim.host or None,
        site=sim.site,
        firmware=sim.firmware,
    )


def _polyfleet(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "controller.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _step(console: Console, env: dict[str, str], title: str, *args: str) -> None:
    """Show and run one command; any failure ends the demo with its exit code named."""
    console.print(Rule(title, style="cyan"))
    console.print(f"[bold]$ polyfleet {shlex.join(args)}[/]", highlight=False)
    result = _polyfleet(env, *args)
    sys.stdout.write(result.stdout)
    sys.stdout.write(result.stderr)
    if result.returncode != 0:
        fail(f"demo step {title!r} exited {result.returncode}")


def demo(
    devices: Annotated[int, typer.Option(min=5, max=2000, help="size of the simulated fleet")] = 50,
    seed: Annotated[int, typer.Option(help="same seed, same fleet")] = 7,
) -> None:
    """Run the end-to-end story on a simulated fleet in a temporary store; exits 0 on success."""
    from inventory.exporter import write_devices  # the simulator loads only for the demo
    from simulator.fleet import generate_fleet

    console = Console()
    with tempfile.TemporaryDirectory(prefix="polyfleet-demo-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "POLYFLEET_DB": str(work / "demo.db"), "NO_COLOR": "1"}
        env.pop("POLYFLEET_CONFIG", None)
        fleet = [device_from_sim(d) for d in generate_fleet(devices, seed=seed)]
        inventory = work / "fleet.csv"
        with inventory.open("w", encoding="utf-8", newline="") as handle:
            write_devices(fleet, "csv", handle)
        console.print(f"simulated fleet: {len(fleet)} devices written to fleet.csv (seed {seed})")

        _step(console, env, "import the inventory", "inventory", "import", str(inventory))
        site = fleet[0].site or ""
        _step(console, env, f"devices at site {site}", "inventory", "list", "--site", site)
        phone = next(d for d in fleet if d.mac)
        mac = phone.mac or ""
        dotted = f"{mac[0:4]}.{mac[4:8]}.{mac[8:12]}"
        _step(console, env, "look one up by MAC, Cisco spelling", "inventory", "show", dotted)
        exported = work / "export.json"
        _step(console, env, "export", "inventory", "export", str(exported), "--format", "json")
        copy_env = {**env, "POLYFLEET_DB": str(work / "copy.db")}
        _step(
            console, copy_env, "re-import into an empty store", "inventory", "import", str(exported)
        )
        original = _polyfleet(env, "inventory", "list", "-o", "json").stdout
        copied = _polyfleet(copy_env, "inventory", "list", "-o", "json").stdout
        if not original or original != copied:
            fail("the re-imported inventory differs from the original")
        console.print(Rule("done", style="green"))
        console.print("export → import reproduced the inventory exactly.")
