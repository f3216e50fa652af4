"""`polyfleet confirmations …`: the audit record of re-activations, and its hash-chain check.

Exports and JSON listings spell every value exactly as the chain hashes it (see
`controller.confirmations`), so an auditor can recompute each hash from an export alone.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from controller.cli.context import ExitCode, OutputFormat, fail, get_context, run
from controller.cli.output import emit_json, emit_rows
from controller.confirmations import (
    CONFIRMATION_FIELDS,
    ChainReport,
    canonical_record,
    confirmation_store,
    verify_chain,
)
from inventory.errors import InvalidIdentifier
from inventory.identifiers import format_mac, normalize_mac, normalize_serial
from inventory.models import Confirmation

app = typer.Typer(
    help="Confirmation records of re-activations (append-only, hash-chained).",
    no_args_is_help=True,
)

TABLE_COLUMNS = (
    "number",
    "serial",
    "mac",
    "feature",
    "state_before",
    "state_after",
    "fee",
    "currency",
    "confirmed_at",
    "actor",
)
_NUMBER = re.compile(r"^RC-\d{4}-\d{6}$")
OutputOption = Annotated[
    OutputFormat, typer.Option("--output", "-o", help="table for people, json or csv for scripts")
]


class ExportFormat(StrEnum):
    """`export --format`."""

    JSON = "json"
    CSV = "csv"


def _for_people(record: dict[str, Any]) -> dict[str, Any]:
    shown = dict(record)
    if shown.get("mac"):
        shown["mac"] = format_mac(shown["mac"])
    return shown


async def _device_filter(cli: Any, device_id: str) -> tuple[str | None, str | None]:
    """(serial, mac) to match for a device ID: the inventory's device if known, else the ID
    read as a serial and, where it parses as one, as a MAC (records outlive devices)."""
    async with cli.store(read_only=True) as store:
        device = await store.find_device(device_id)
    if device is not None:
        return device.serial, device.mac
    try:
        mac: str | None = normalize_mac(device_id)
    except InvalidIdentifier:
        mac = None
    try:
        serial: str | None = normalize_serial(device_id)
    except InvalidIdentifier:
        serial = None
    return serial, mac


@app.command("list")
def list_(
    ctx: typer.Context,
    serial: Annotated[
        str | None, typer.Option("--serial", help="only this device (serial or MAC)")
    ] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Confirmations in chain order (oldest first)."""
    cli = get_context(ctx)

    async def fetch() -> list[Confirmation]:
        wanted_serial = wanted_mac = None
        if serial is not None:
            wanted_serial, wanted_mac = await _device_filter(cli, serial)
        async with cli.store(read_only=True) as store:
            return await confirmation_store(store.engine).list(serial=wanted_serial, mac=wanted_mac)

    records = [canonical_record(c) for c in run(fetch)]
    if output is OutputFormat.TABLE:
        emit_rows(
            [_for_people(r) for r in records],
            TABLE_COLUMNS,
            output,
            console=cli.out,
            title="confirmations",
        )
    else:
        emit_rows(records, CONFIRMATION_FIELDS, output, console=cli.out)


@app.command()
def show(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="confirmation number, like RC-2026-000123")],
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """One confirmation with every field."""
    cli = get_context(ctx)
    wanted = number.strip().upper()
    if not _NUMBER.match(wanted):
        fail(f"{number!r} is not a confirmation number (like RC-2026-000123)")

    async def fetch() -> Confirmation:
        async with cli.store(read_only=True) as store:
            return await confirmation_store(store.engine).get(wanted)

    record = canonical_record(run(fetch))
    if output is OutputFormat.TABLE:
        emit_rows(
            [{"field": k, "value": v} for k, v in _for_people(record).items()],
            ("field", "value"),
            output,
            console=cli.out,
            title=f"confirmation {wanted}",
        )
    else:
        emit_rows([record], CONFIRMATION_FIELDS, output, console=cli.out)


def _write(records: Sequence[dict[str, Any]], fmt: ExportFormat, out: TextIO) -> None:
    if fmt is ExportFormat.JSON:
        json.dump(list(records), out, indent=2, ensure_ascii=False)
        out.write("\n")
        return
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CONFIRMATION_FIELDS)
    for record in records:
        writer.writerow(["" if record[k] is None else record[k] for k in CONFIRMATION_FIELDS])


def _write_atomically(path: Path, records: Sequence[dict[str, Any]], fmt: ExportFormat) -> None:
    """Write beside the target and rename, so a reader never sees half an export."""
    directory = path.parent
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            _write(records, fmt, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


@app.command()
def export(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="output file (default: stdout)")] = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="json or csv")] = ExportFormat.JSON,
) -> None:
    """Every confirmation with the PRODUCT.md keys, in chain order."""
    cli = get_context(ctx)
    if file is not None and not file.parent.is_dir():
        fail(f"cannot write {file}: directory {file.parent} does not exist", ExitCode.FAILED)

    async def fetch() -> list[Confirmation]:
        async with cli.store(read_only=True) as store:
            return await confirmation_store(store.engine).list()

    records = [canonical_record(c) for c in run(fetch)]
    if file is None:
        _write(records, fmt, sys.stdout)
        return
    try:
        _write_atomically(file, records, fmt)
    except OSError as exc:
        fail(f"cannot write {file}: {exc.strerror or exc}")
    cli.info(f"exported {len(records)} confirmation(s) to {file}")


def _report_json(report: ChainReport) -> dict[str, Any]:
    problem = report.problem
    return {
        "intact": report.intact,
        "count": report.count,
        "head_hash": report.head_hash,
        "problem": None
        if problem is None
        else {
            "number": problem.number,
            "seq": problem.seq,
            "field": problem.field,
            "message": problem.message,
        },
    }


@app.command()
def verify(
    ctx: typer.Context,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json")] = "text",
) -> None:
    """Recompute every hash and link; exit 0 intact, 1 naming the first record that fails."""
    cli = get_context(ctx)
    if output not in ("text", "json"):
        fail(f"--output must be text or json, not {output!r}", ExitCode.UNUSABLE_INPUT)

    async def check() -> ChainReport:
        async with cli.store(read_only=True) as store:
            rows = await confirmation_store(store.engine).rows()
        return verify_chain(rows)

    report = run(check)
    if output == "json":
        emit_json(_report_json(report))
    if report.problem is not None:
        problem = report.problem
        cli.err.print(
            f"[red]TAMPERED:[/] confirmation {problem.number} (seq {problem.seq}), "
            f"{problem.field}: {problem.message}",
            highlight=False,
        )
        raise typer.Exit(ExitCode.FAILED)
    if output == "text":
        head = report.head_hash or "(none)"
        typer.echo(f"confirmation chain intact: {report.count} record(s), head hash {head}")
