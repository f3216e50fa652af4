"""The root `polyfleet` command: global options, sub-command groups, and `main()`."""

from __future__ import annotations

import logging
from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import typer

from controller.cli import (
    confirmations_cmd,
    contracts_cmd,
    credentials_cmd,
    db_cmd,
    demo_cmd,
    discover_cmd,
    drivers_cmd,
    health_cmd,
    inventory_cmd,
    keys_cmd,
    quote_cmd,
    reactivate_cmd,
    scan_cmd,
)
from controller.cli.context import CliContext
from simulator.cli import simulate

app = typer.Typer(
    name="polyfleet",
    help="Inventory, license health and remote re-activation for a fleet of Poly devices.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(inventory_cmd.app, name="inventory")
app.add_typer(credentials_cmd.app, name="credentials")
app.add_typer(db_cmd.app, name="db")
app.add_typer(drivers_cmd.app, name="drivers")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(confirmations_cmd.app, name="confirmations")
app.add_typer(contracts_cmd.app, name="contracts")
app.command("demo")(demo_cmd.demo)
app.command("scan")(scan_cmd.scan)
app.command("quote")(quote_cmd.quote)
app.command("reactivate")(reactivate_cmd.reactivate)
app.command("health")(health_cmd.health)
app.command("discover")(discover_cmd.discover)
app.command("simulate")(simulate)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"polyfleet {version('polyfleet')}")
        raise typer.Exit


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(envvar="POLYFLEET_DB", help="database URL or SQLite file", show_envvar=True),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(envvar="POLYFLEET_CONFIG", help="TOML config file", show_envvar=True),
    ] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True)] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="only errors on stderr")] = False,
    _version_flag: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print the version"),
    ] = False,
) -> None:
    """polyfleet: keep a fleet of Poly phones, video systems and infrastructure in line."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=logging.ERROR if quiet else level, format="%(levelname)s %(message)s")
    ctx.obj = CliContext(db=db, config=config, verbose=verbose, quiet=quiet)


def main() -> None:
    """Console-script entry point."""
    app()
