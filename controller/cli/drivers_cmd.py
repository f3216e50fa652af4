"""`polyfleet drivers list`: the installed drivers (entry points) and what each can do."""

from __future__ import annotations

from typing import Annotated

import typer

from controller.cli.context import OutputFormat, fail, get_context
from controller.cli.output import emit_rows
from device_drivers.registry import DriverRegistry, DriverRegistryError

app = typer.Typer(
    help="Device drivers (entry-point group polyfleet.drivers).", no_args_is_help=True
)


@app.command("list")
def list_(
    ctx: typer.Context,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.TABLE,
) -> None:
    """Name, families, capabilities, modeled calls and the modeled parameters in force (the
    config file's [drivers.<name>] over the defaults) of every installed driver."""
    cli = get_context(ctx)
    cli.settings  # noqa: B018 - puts the config file's [drivers.<name>] parameters in force
    registry = DriverRegistry()
    try:
        drivers = registry.all()
    except DriverRegistryError as exc:
        fail(str(exc))
    rows = [
        {
            "name": driver.name,
            "families": sorted(driver.families),
            "capabilities": sorted(c.value for c in driver.capabilities),
            "modeled_calls": dict(driver.modeled_calls),
            "modeled_params": driver.params_in_force(),
            "origin": registry.origin(driver.name),
        }
        for driver in drivers
    ]
    emit_rows(
        rows,
        ("name", "families", "capabilities", "modeled_calls", "modeled_params", "origin"),
        output,
        console=cli.out,
    )
