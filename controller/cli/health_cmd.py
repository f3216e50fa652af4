"""`polyfleet health`: classify the fleet's license health for cron and monitoring.

Built to run unattended: no prompts and no colour without a TTY; a lock file keeps two runs from
overlapping; `--timeout` bounds the run. Every way the check itself can fail (bad option value,
unreadable config, store down, lock held, timeout) exits 3, UNKNOWN, because in Nagios' scheme
exit 2 would claim the fleet is CRITICAL. Unknown option *names* are still click usage errors
(exit 2): click rejects them before this command runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from controller.cli.context import CliContext, get_context, plain_stream
from controller.errors import ControllerError
from controller.health import STATUS_ORDER, FleetHealth, Health, HealthPolicy
from controller.health_render import (
    nagios_line,
    render_json,
    render_nagios,
    render_prometheus,
    render_text,
    render_text_lines,
)
from controller.run_lock import LockHeld, LockUnavailable, RunLock, default_lock_path
from controller.settings import ConfigError, load_settings
from controller.usecases.health import check_fleet
from inventory.database import resolve_db
from inventory.errors import InventoryError
from inventory.gc_pause import gc_paused
from inventory.store import InventoryStore

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 300.0
_BATCH = 5000
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_MAX_DURATION = 520 * 604800


class HealthFormat(StrEnum):
    """`--format` of `polyfleet health`."""

    TEXT = "text"
    JSON = "json"
    NAGIOS = "nagios"
    PROMETHEUS = "prometheus"


class InvalidOption(ControllerError, ValueError):
    """An option value that cannot be used; the message names the option and what it expects."""


def parse_duration(option: str, text: str) -> timedelta:
    """`90m`, `26h`, `2d`, `1w` (or `45s`) as a positive timedelta."""
    match = _DURATION.match(text)
    if match is None:
        raise InvalidOption(
            f"invalid {option} {text!r}: expected a number and a unit s, m, h, d or w "
            "(e.g. 90m, 26h, 2d, 1w)"
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if seconds <= 0:
        raise InvalidOption(f"invalid {option} {text!r}: must be greater than zero")
    if seconds > _MAX_DURATION:
        raise InvalidOption(f"invalid {option} {text!r}: at most 520w (10 years)")
    return timedelta(seconds=seconds)


def parse_int(option: str, text: str, *, low: int, high: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise InvalidOption(f"invalid {option} {text!r}: expected a whole number") from None
    if not low <= value <= high:
        raise InvalidOption(f"invalid {option} {text!r}: expected {low} to {high}")
    return value


def parse_seconds(option: str, text: str, *, high: float) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise InvalidOption(f"invalid {option} {text!r}: expected seconds, e.g. 300") from None
    if not 0 < value <= high:
        raise InvalidOption(f"invalid {option} {text!r}: expected more than 0 and at most {high:g}")
    return value


def parse_format(text: str) -> HealthFormat:
    try:
        return HealthFormat(text.strip().lower())
    except ValueError:
        names = ", ".join(f.value for f in HealthFormat)
        raise InvalidOption(f"invalid --format {text!r}: expected one of {names}") from None


# -- output --------------------------------------------------------------------------------------


def write_atomically(path: Path, text: str) -> None:
    """Write via a temp file in the same directory and rename it over `path`, so a reader (the
    textfile collector) sees the old file or the new one, never half of one. The temp name does
    not end in .prom, so the collector ignores it."""
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o644  # readable by node_exporter's user
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _unknown(cli: CliContext, fmt: HealthFormat | None, message: str) -> NoReturn:
    """The check could not be done: say why, in the chosen format where it has a place, exit 3."""
    from controller.cli.console import labelled  # rich: only when there is an error to show

    cli.err.print(labelled("error:", "red", message))
    if fmt is HealthFormat.NAGIOS:
        sys.stdout.write(nagios_line(Health.UNKNOWN, message) + "\n")
    elif fmt is HealthFormat.JSON:
        counts = ", ".join(f'"{s.value}": 0' for s in STATUS_ORDER)
        error = json.dumps(message, ensure_ascii=False)
        sys.stdout.write(
            f'{{"status": "UNKNOWN", "error": {error}, "counts": {{{counts}}}, "devices": []}}\n'
        )
    raise typer.Exit(Health.UNKNOWN.exit_code)


def health(
    ctx: typer.Context,
    scan: Annotated[bool, typer.Option("--scan", help="scan the devices first")] = False,
    site: Annotated[str | None, typer.Option(help="only devices of this site")] = None,
    max_age: Annotated[
        str,
        typer.Option(
            metavar="DUR", help="observations older than this are WARNING (90m, 26h, 2d, 1w)"
        ),
    ] = "26h",
    warn_days: Annotated[
        str, typer.Option(metavar="N", help="WARNING when a license expires within N days")
    ] = "30",
    fmt: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="text, json, nagios or prometheus")
    ] = HealthFormat.TEXT.value,
    require: Annotated[
        list[str] | None,
        typer.Option(
            "--require",
            metavar="FEATURE",
            help="a feature every networked device must have (repeatable)",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            metavar="FILE",
            help="write to FILE atomically instead of stdout (textfile collector)",
        ),
    ] = None,
    lock_file: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="lock file (default: one per store in the data dir)"),
    ] = None,
    timeout: Annotated[
        str, typer.Option(metavar="SEC", help="give up (UNKNOWN) after SEC seconds")
    ] = f"{DEFAULT_TIMEOUT:g}",
) -> None:
    """License health of the fleet; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""
    cli = get_context(ctx)
    started = time.perf_counter()
    try:
        chosen = parse_format(fmt)
    except InvalidOption as exc:
        _unknown(cli, None, str(exc))
    try:
        settings = load_settings(cli.config)
        target = resolve_db(cli.db or settings.db)
        declared = _no_licensed_features(settings.policy)
    except (ConfigError, InventoryError, ValueError) as exc:
        _unknown(cli, chosen, str(exc))
    try:
        policy = HealthPolicy(
            warn_days=parse_int("--warn-days", warn_days, low=0, high=36500),
            max_age=parse_duration("--max-age", max_age),
            required_features=frozenset(f.strip() for f in require or () if f.strip()),
            no_licensed_features=declared,
        )
        limit = parse_seconds("--timeout", timeout, high=86400)
    except InvalidOption as exc:
        _unknown(cli, chosen, str(exc))
    if output is not None and not output.parent.is_dir():
        _unknown(cli, chosen, f"invalid --output {output}: directory {output.parent} not found")
    key = target.url + (f"#{target.schema}" if target.schema else "")
    lock_path = lock_file or default_lock_path("health", key)

    async def go() -> FleetHealth:
        if scan:
            await _scan_first(cli, site)
        async with await InventoryStore.open(target, read_only=True) as store:
            return await check_fleet(
                store.engine,
                site,
                datetime.now(UTC),
                policy,
                all_licenses=chosen is HealthFormat.PROMETHEUS,
            )

    done: list[FleetHealth] = []

    async def bounded() -> None:
        # The result is handed over in `done`, not returned: on the way out asyncio.run's
        # SIGINT handling reprs the main task, result included (seconds for 100,000 devices).
        async with asyncio.timeout(limit):
            done.append(await go())

    try:
        with RunLock(lock_path, job="health run"), gc_paused():
            asyncio.run(bounded())
            fleet = done[0]
            _emit(cli, fleet, chosen, output, time.perf_counter() - started)
    except typer.Exit:
        raise
    except LockHeld as exc:
        _unknown(cli, chosen, str(exc))
    except LockUnavailable as exc:
        _unknown(cli, chosen, str(exc))
    except TimeoutError:
        _unknown(cli, chosen, f"health run did not finish within {limit:g} s (--timeout)")
    except KeyboardInterrupt:
        _unknown(cli, chosen, "interrupted")
    except Exception as exc:  # a monitoring check must answer UNKNOWN, never a traceback
        log.debug("health check failed", exc_info=True)
        _unknown(cli, chosen, f"health check failed: {type(exc).__name__}: {exc}")
    raise typer.Exit(fleet.status.exit_code)


def _no_licensed_features(path: Path | None) -> Callable[[str | None], str | None] | None:
    """The policy's `[licensing] no_licensed_features` as a model look-up (None: none declared).
    A policy file that cannot be read is a ValueError, so the run ends UNKNOWN saying why.

    Without a policy file the built-in default applies, which declares none (test_policy.py
    holds it to that): the policy module is not even imported then (start-up, issue 11)."""
    if path is None:
        return None
    from controller.policy import PolicyError, load_policy  # pydantic models: only for a file

    try:
        policy = load_policy(path)
    except PolicyError as exc:
        raise ValueError(str(exc)) from None
    return policy.no_licensed_features if policy.licensing.no_licensed_features else None


async def _scan_first(cli: CliContext, site: str | None) -> None:
    from controller.usecases import scan  # scan stack: only for --scan

    cli.info("scanning before the health check …")
    async with cli.store() as store:
        results = await scan.run_scan(store, scan.ScanRequest(site=site))
    failed = sum(1 for r in results if not r.ok and r.error_kind not in scan.SKIPPED_KINDS)
    cli.info(f"scanned {len(results)} device(s), {failed} failed")


def _emit(
    cli: CliContext, fleet: FleetHealth, fmt: HealthFormat, output: Path | None, duration: float
) -> None:
    if fmt is HealthFormat.TEXT and output is None and not plain_stream(sys.stdout):
        for line in render_text_lines(fleet):  # colour for a terminal
            cli.out.print(line)
        return
    if fmt is HealthFormat.TEXT:
        text = render_text(fleet)
    elif fmt is HealthFormat.JSON:
        text = render_json(fleet)
    elif fmt is HealthFormat.NAGIOS:
        text = render_nagios(fleet)
    else:
        text = render_prometheus(fleet, duration=duration)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        write_atomically(output, text)
    except OSError as exc:
        _unknown(cli, fmt, f"cannot write {output}: {exc.strerror or exc}")
    cli.info(f"fleet health {fleet.status.value} ({fleet.summary()}) written to {output}")
