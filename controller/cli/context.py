"""What every command shares: resolved settings, the store, consoles and exit handling.

Messages go to stderr and data to stdout, so `polyfleet … -o json | jq` always works. Both
consoles show what they print as data (`controller.cli.console`).

The root command imports this module, so it imports only what every run needs: settings, the
store (SQLAlchemy), rich and asyncio are imported where first used (issue 11: `--version` in
<= 150 ms, and a command pays only for what it uses).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar

import typer

if TYPE_CHECKING:
    import asyncio

    from rich.console import Console

    from controller.settings import PolyfleetSettings
    from inventory.credential_store import CredentialStore
    from inventory.store import InventoryStore

T = TypeVar("T")


class ExitCode:
    """Exit codes of PRODUCT.md's CLI contract."""

    OK = 0
    FAILED = 1  # some rows rejected, not found, invalid, unreachable
    UNUSABLE_INPUT = 2  # unreadable file, bad usage
    UNKNOWN = 3
    INELIGIBLE = 4


class OutputFormat(StrEnum):
    """`-o/--output` of every listing command."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


@dataclass(slots=True)
class CliContext:
    """Global options after resolution, handed to commands through typer's context object."""

    db: str | None = None
    config: Path | None = None
    verbose: int = 0
    quiet: bool = False
    _settings: PolyfleetSettings | None = None
    _out: Console | None = None
    _err: Console | None = None

    @property
    def out(self) -> Console:
        """The data console on stdout, built (and rich imported) when first printed to."""
        if self._out is None:
            self._out = _data_console(sys.stdout)
        return self._out

    @property
    def err(self) -> Console:
        """The data console on stderr, built when first printed to."""
        if self._err is None:
            self._err = _data_console(sys.stderr)
        return self._err

    @property
    def settings(self) -> PolyfleetSettings:
        if self._settings is None:
            from controller.settings import ConfigError, load_settings

            try:
                self._settings = load_settings(self.config)
            except ConfigError as exc:
                fail(str(exc), ExitCode.UNUSABLE_INPUT)
            _configure_drivers(self._settings.drivers)
        return self._settings

    def db_url(self) -> str | None:
        """--db wins over POLYFLEET_DB and the config file (which is read, and checked, anyway)."""
        settings = self.settings
        return self.db or settings.db

    def info(self, message: str) -> None:
        """A progress or summary message for people (stderr; silenced by -q)."""
        if not self.quiet:
            self.err.print(message)

    def warn(self, message: str) -> None:
        from controller.cli.console import labelled

        self.err.print(labelled("warning:", "yellow", message))

    @asynccontextmanager
    async def store(self, *, read_only: bool = False) -> AsyncIterator[InventoryStore]:
        """The inventory store, opened (and migrated) for the duration of a command.

        A `read_only` command refuses a PostgreSQL store without tables instead of creating them
        (see InventoryStore.open).
        """
        from inventory.database import resolve_db
        from inventory.store import InventoryStore

        store = await InventoryStore.open(
            resolve_db(self.db_url()),
            read_only=read_only,
            observation_history=self.settings.observation_history,
        )
        try:
            yield store
        finally:
            await store.close()

    @asynccontextmanager
    async def credentials(self, *, read_only: bool = False) -> AsyncIterator[CredentialStore]:
        """The credential profiles; loads the cryptography stack only for commands that need it."""
        from inventory.credential_store import CredentialStore
        from inventory.secret_box import SecretBox

        async with self.store(read_only=read_only) as store:
            yield CredentialStore(store.engine, SecretBox.from_environment())


def _configure_drivers(sections: dict[str, dict[str, Any]]) -> None:
    """Put the config file's `[drivers.<name>]` modeled parameters in force, or exit 2 naming
    the driver and key that are wrong."""
    # An earlier command in this process (tests, the API) must not leave its values; if the
    # module was never imported, nothing was configured, and a command without [drivers]
    # sections does not import it (nor the drivers' error tree) at all.
    earlier = sys.modules.get("device_drivers.modeled_settings")
    if earlier is not None:
        earlier.reset()
    if not sections:
        return
    from device_drivers.modeled_settings import ModeledSettingsError, configure
    from device_drivers.registry import DriverRegistry, DriverRegistryError

    try:
        models = {d.name: d.params_model for d in DriverRegistry().all()}
        configure(sections, models)
    except (ModeledSettingsError, DriverRegistryError) as exc:
        fail(f"invalid config file: {exc}", ExitCode.UNUSABLE_INPUT)


def _data_console(stream: TextIO) -> Console:
    """`console.data_console`, imported when the root command runs a sub-command: rich is not
    loaded by merely importing the command line (`--version` exits while options are parsed)."""
    from controller.cli.console import data_console

    return data_console(stream)


def plain_stream(stream: TextIO) -> bool:
    """Whether rich would write `stream` without escape codes: not a terminal, and no
    TTY_COMPATIBLE=1 or FORCE_COLOR saying otherwise (rich's own test, `Console.is_terminal`).
    A command may then write its plain text itself and not import rich at all (issue 11)."""
    tty_compatible = os.environ.get("TTY_COMPATIBLE", "")
    if tty_compatible in ("0", "1"):
        return tty_compatible == "0"
    force_color = os.environ.get("FORCE_COLOR")
    if force_color is not None:
        return force_color == ""
    isatty = getattr(stream, "isatty", None)
    try:
        return isatty is None or not isatty()
    except ValueError:  # a closed stream, as rich treats it
        return True


def get_context(ctx: typer.Context) -> CliContext:
    """The CliContext set up by the root callback."""
    obj = ctx.find_root().obj
    if not isinstance(obj, CliContext):  # a subcommand invoked without the root app
        obj = CliContext()
        ctx.find_root().obj = obj
    return obj


def fail(message: str, code: int = ExitCode.FAILED) -> NoReturn:
    """Print an error naming what was wrong and exit with `code`."""
    from controller.cli.console import labelled

    _data_console(sys.stderr).print(labelled("error:", "red", message))
    raise typer.Exit(code)


def parse_date_option(value: str | None, option: str) -> date | None:
    """An ISO date given on the command line; a wrong one is a usage error (exit 2)."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        fail(f"{option} {value!r} is not a date (YYYY-MM-DD)", ExitCode.UNUSABLE_INPUT)


def _loop_factory(network: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop for a `network` command where installed, unless POLYFLEET_ASYNCIO=1; asyncio's
    own loop otherwise.

    On a 1,000-device scan uvloop used about 7 % less CPU and 60 MB less peak RSS than asyncio's
    loop (bench/scan_bench.py, "asyncio loop" rows): its TLS and socket paths are C, and it does
    not hold asyncio's 256 KiB zero-filled read buffer per TLS connection. A command that only
    reads or writes the store gains nothing from it and would pay its import (4-5 ms of start-up,
    issue 11).
    """
    if not network or os.environ.get("POLYFLEET_ASYNCIO") == "1":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(coro_fn: Callable[[], Coroutine[Any, Any, T]], *, network: bool = False) -> T:
    """Run a command's coroutine; inventory errors become a clear message and exit code 1.
    `network`: the command talks to many devices or serves HTTP (uvloop, see `_loop_factory`)."""
    import asyncio

    from inventory.errors import ImportRefused, InventoryError

    try:
        with asyncio.Runner(loop_factory=_loop_factory(network)) as runner:
            return runner.run(coro_fn())
    except ImportRefused as exc:  # a file that cannot be used at all, found out while writing
        fail(str(exc), ExitCode.UNUSABLE_INPUT)
    except InventoryError as exc:
        logging.getLogger("polyfleet").debug("command failed", exc_info=True)
        fail(str(exc), ExitCode.FAILED)
    except KeyboardInterrupt:
        fail("interrupted", 130)
