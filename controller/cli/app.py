"""The root `polyfleet` command: global options, sub-command groups, and `main()`."""

from __future__ import annotations

import gc
import logging
import sys
from importlib import import_module
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from controller.cli import version_line, warning_routing
from controller.cli.context import CliContext

# name -> (module, attribute): a command function or a sub-command Typer. A command's module is
# imported only when that command runs (or when help lists every command), so `polyfleet X`
# does not pay for the imports of every other command (issue 5: one re-activation <= 1 s).
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("controller.cli.demo_cmd", "demo"),
    "scan": ("controller.cli.scan_cmd", "scan"),
    "quote": ("controller.cli.quote_cmd", "quote"),
    "reactivate": ("controller.cli.reactivate_cmd", "reactivate"),
    "health": ("controller.cli.health_cmd", "health"),
    "discover": ("controller.cli.discover_cmd", "discover"),
    "probe": ("controller.cli.probe_cmd", "probe"),
    "simulate": ("simulator.cli", "simulate"),
    "inventory": ("controller.cli.inventory_cmd", "app"),
    "credentials": ("controller.cli.credentials_cmd", "app"),
    "db": ("controller.cli.db_cmd", "app"),
    "drivers": ("controller.cli.drivers_cmd", "app"),
    "keys": ("controller.cli.keys_cmd", "app"),
    "confirmations": ("controller.cli.confirmations_cmd", "app"),
    "contracts": ("controller.cli.contracts_cmd", "app"),
    "tokens": ("controller.cli.tokens_cmd", "app"),
    "serve": ("controller.cli.serve_cmd", "serve"),
    "agent": ("controller.cli.agent_cmd", "app"),
}


SUMMARIES: dict[str, str] = {
    "demo": "Simulate a fleet, then import, scan, check, quote, re-activate and audit it.",
    "scan": "Read identity and license state of inventory devices; exit 1 if any failed.",
    "quote": "Eligibility rule by rule, the fee and the SLA due date for re-activating one device.",
    "reactivate": "Eligibility, fee, key, apply, verify and a confirmation record, in one command.",
    "health": "License health of the fleet; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    "discover": "Probe addresses; Poly devices are added or updated, the rest are listed only.",
    "probe": (
        "Run every read-only call of the device's driver (documented and modeled), apply "
        "nothing;\nexit 0 when every call the driver needs answered, 1 otherwise."
    ),
    "simulate": "Run a simulated Poly fleet on loopback addresses until Ctrl-C.",
    "inventory": "The device inventory: devices by serial number and MAC.",
    "credentials": "Device credential profiles (HTTP, SNMP, SSH).",
    "db": "The store (SQLite file or PostgreSQL database).",
    "drivers": "Device drivers (entry-point group polyfleet.drivers).",
    "keys": "Activation keys per serial and feature.",
    "confirmations": "Confirmation records of re-activations (append-only, hash-chained, signed).",
    "contracts": "Warranties and service agreements: the eligibility source of quotes.",
    "tokens": "Bearer tokens of the HTTP API (polyfleet serve).",
    "serve": "Serve the REST API (/api/v1), /healthz, /readyz and /metrics.",
    "agent": "Run a site agent.",
}
"""Each command's line in `polyfleet --help`: the first paragraph of its help, as typer shows
it. The root's help lists these instead of importing every command module (about 1 s of
start-up); a unit test holds each equal to the loaded command's own help."""


def load_command(name: str) -> Any:
    """The click command of `name`, built by typer exactly as an eager registration would."""
    module, attribute = COMMANDS[name]
    target = getattr(import_module(module), attribute)
    holder = typer.Typer()
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    holder.callback()(lambda: None)  # a group even with a single command
    return typer.main.get_group(holder).commands[name]


def _without_flag_metavar(param: Any) -> Any:
    """A flag (`--quiet`, `-v`) takes no value: typer's rich help would still print its type
    (`<bool>`, `<int>`), unless its metavar is "", which prints nothing."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        param.metavar = ""
    return param


def hide_flag_metavars(command: Any) -> Any:
    """`_without_flag_metavar` on every option of a command and of its sub-commands."""
    for param in getattr(command, "params", ()):
        _without_flag_metavar(param)
    make_help_option = command.get_help_option  # click builds `--help` per context
    command.get_help_option = lambda ctx: _without_flag_metavar(make_help_option(ctx))
    for sub in getattr(command, "commands", {}).values():
        hide_flag_metavars(sub)
    return command


def summary_command(name: str) -> Any:
    """A stand-in for command `name` that only carries its help line (see SUMMARIES)."""
    return TyperCommand(name=name, help=SUMMARIES[name])


class LazyGroup(TyperGroup):
    """The root group: sub-commands are loaded on first use (see COMMANDS); its own help lists
    them by their SUMMARIES without loading any."""

    _listing_help = False

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing_help = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing_help = False

    def get_params(self, ctx: Any) -> Any:
        return [_without_flag_metavar(param) for param in super().get_params(ctx)]

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in COMMANDS if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if self._listing_help and cmd_name not in self.commands and cmd_name in SUMMARIES:
            return summary_command(cmd_name)
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.commands[cmd_name] = hide_flag_metavars(load_command(cmd_name))
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in COMMANDS:  # a typo: load all, so "did you mean" can answer
            for name in COMMANDS:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="polyfleet",
    help="Inventory, license health and remote re-activation for a fleet of Poly devices.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=LazyGroup,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(version_line())
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
    if not gc.isenabled():  # main() paused the collector while the command was imported
        gc.freeze()  # what start-up built lives until exit: no collection need walk it again
        gc.enable()
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=logging.ERROR if quiet else level, format="%(levelname)s %(message)s")
    warning_routing.logging_configured()
    ctx.obj = CliContext(db=db, config=config, verbose=verbose, quiet=quiet)
    global _invoked
    _invoked = ctx.invoked_subcommand


_invoked: str | None = None
"""The sub-command being run, for `main()` to pick the exit code of an unexpected error."""

UNKNOWN_EXIT = {"health": 3}
"""Commands whose contract has its own code for "could not tell" (Nagios' UNKNOWN)."""


def main() -> None:
    """Console-script entry point: an unexpected error is one line on stderr and a log file."""
    # Importing the command's libraries allocates hundreds of thousands of objects and no
    # garbage; cyclic collections triggered meanwhile are pure cost. `root` resumes collection
    # (with the start-up heap frozen) before the command runs.
    gc.disable()
    warning_routing.route_warnings_to_logging()
    try:
        app()
    except Exception as exc:  # nothing may leave a command as a traceback
        from controller.cli.crash import report_internal_error

        report_internal_error(exc, _invoked)
        sys.exit(UNKNOWN_EXIT.get(_invoked or "", 1))
    finally:
        # Everything is closed by now; what is left is the heap the libraries built at import.
        # Freezing it spares the interpreter's exit a collection of every one of those objects
        # (about 0.3 s of CPU, a third of a one-device `reactivate`); the OS reclaims the memory.
        gc.freeze()
