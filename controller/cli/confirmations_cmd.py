"""`polyfleet confirmations …`: the audit record of re-activations, and its hash-chain check.

Exports and JSON listings spell every value exactly as the chain hashes it (see
`controller.confirmations`), so an auditor can recompute each hash from an export alone. In CSV
a value a spreadsheet would run as a formula (an `--actor` of `=HYPERLINK(…)`) is written with a
leading `'` (`inventory.safe_text.csv_cell`); the hash is of the value, so take that quote off
(`csv_value`) before recomputing.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO, TypeVar

import typer

from controller.cli.console import labelled
from controller.cli.context import ExitCode, OutputFormat, fail, get_context, run
from controller.cli.output import emit_json, emit_rows
from controller.confirmation_export import write_export
from controller.confirmations import (
    RECORD_FIELDS,
    ChainReport,
    Checkpoint,
    CheckpointError,
    CheckpointForged,
    confirmation_store,
    rows_from_export,
    signed_record,
    verify_chain,
)
from controller.usecases.confirmations import audit_store
from inventory.errors import InvalidIdentifier, InventoryError
from inventory.identifiers import format_mac, normalize_mac, normalize_serial
from inventory.models import Confirmation
from inventory.safe_text import csv_value
from inventory.signing_key import SigningKey, VerifyKey, signing_key_file

T = TypeVar("T")

app = typer.Typer(
    help="Confirmation records of re-activations (append-only, hash-chained, signed).",
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

    records = [signed_record(c) for c in run(fetch)]
    if output is OutputFormat.TABLE:
        emit_rows(
            [_for_people(r) for r in records],
            TABLE_COLUMNS,
            output,
            console=cli.out,
            title="confirmations",
        )
    else:
        emit_rows(records, RECORD_FIELDS, output, console=cli.out)


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

    record = signed_record(run(fetch))
    if output is OutputFormat.TABLE:
        emit_rows(
            [{"field": k, "value": v} for k, v in _for_people(record).items()],
            ("field", "value"),
            output,
            console=cli.out,
            title=f"confirmation {wanted}",
        )
    else:
        emit_rows([record], RECORD_FIELDS, output, console=cli.out)


def _write(records: Sequence[dict[str, Any]], fmt: ExportFormat, out: TextIO) -> None:
    write_export(records, "json" if fmt is ExportFormat.JSON else "csv", out)


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
    """Every confirmation with the PRODUCT.md keys and its signature, in chain order."""
    cli = get_context(ctx)
    if file is not None and not file.parent.is_dir():
        fail(f"cannot write {file}: directory {file.parent} does not exist", ExitCode.FAILED)

    async def fetch() -> list[Confirmation]:
        async with cli.store(read_only=True) as store:
            return await confirmation_store(store.engine).list()

    records = [signed_record(c) for c in run(fetch)]
    if file is None:
        _write(records, fmt, sys.stdout)
        return
    try:
        _write_atomically(file, records, fmt)
    except OSError as exc:
        fail(f"cannot write {file}: {exc.strerror or exc}")
    cli.info(f"exported {len(records)} confirmation(s) to {file}")


def _report_json(report: ChainReport, key: VerifyKey | None) -> dict[str, Any]:
    problem = report.problem
    return {
        "intact": report.intact,
        "count": report.count,
        "head_hash": report.head_hash,
        "key_id": None if key is None else key.key_id,
        "problem": None
        if problem is None
        else {
            "number": problem.number,
            "seq": problem.seq,
            "field": problem.field,
            "message": problem.message,
        },
    }


def _key_or_exit(load: Callable[[], T]) -> T:
    """`load()` a key; an unreadable or malformed key file is one line and exit 2."""
    try:
        return load()
    except InventoryError as exc:
        fail(str(exc), ExitCode.UNUSABLE_INPUT)


def _trusted_key(public_key: Path | None) -> VerifyKey | None:
    """The key signatures must verify with: `--public-key`, else this user's signing key (None
    if neither exists; never made here, a check must not mint the key it checks against)."""
    if public_key is None:
        key = _key_or_exit(SigningKey.load)
        return None if key is None else key.public
    try:
        data = public_key.read_bytes()
    except OSError as exc:
        fail(f"cannot read {public_key}: {exc.strerror or exc}", ExitCode.UNUSABLE_INPUT)
    return _key_or_exit(lambda: VerifyKey.from_pem(data, source=str(public_key)))


def _audit(
    cli: Any, key: VerifyKey | None, *, unsigned_until: int = 0, trusted: Checkpoint | None = None
) -> tuple[ChainReport, list[dict[str, Any]]]:
    """`audit_store` on the store of this command."""

    async def audit() -> tuple[ChainReport, list[dict[str, Any]]]:
        async with cli.store(read_only=True) as store:
            return await audit_store(
                store.engine, key, unsigned_until=unsigned_until, trusted=trusted
            )

    return run(audit)


def _read_checkpoint(path: Path, key: VerifyKey) -> Checkpoint:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read the checkpoint {path}: {exc}", ExitCode.UNUSABLE_INPUT)
    try:
        return Checkpoint.parse(text, key)
    except CheckpointForged as exc:
        fail(f"checkpoint {path}: {exc}", ExitCode.FAILED)
    except CheckpointError as exc:
        fail(f"checkpoint {path}: {exc}", ExitCode.UNUSABLE_INPUT)


@app.command()
def verify(
    ctx: typer.Context,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json")] = "text",
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="a file `confirmations checkpoint` wrote earlier"),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="check signatures with this exported public key"),
    ] = None,
    unsigned_until: Annotated[
        str | None,
        typer.Option(
            "--unsigned-until",
            help="accept records up to this number unsigned (written before signing existed)",
        ),
    ] = None,
    export: Annotated[
        Path | None,
        typer.Option(
            "--export",
            metavar="FILE",
            help="check a file `confirmations export` wrote (csv or json) instead of the store",
        ),
    ] = None,
) -> None:
    """Check the record; exit 0 intact, 1 naming the first record that fails.

    Recomputes every hash, link and signature, checks that every confirmation the
    re-activations name exists, and with --checkpoint that nothing it covers changed since.
    With --export, the same checks (but the cross-check with re-activations) run on an export
    file, so an auditor can verify a copy without the database.
    """
    cli = get_context(ctx)
    if output not in ("text", "json"):
        fail(f"--output must be text or json, not {output!r}", ExitCode.UNUSABLE_INPUT)
    legacy = 0
    if unsigned_until is not None:
        if not _NUMBER.match(unsigned_until.strip().upper()):
            fail(
                f"--unsigned-until {unsigned_until!r} is not a confirmation number",
                ExitCode.UNUSABLE_INPUT,
            )
        legacy = int(unsigned_until.strip()[-6:])
    key = _trusted_key(public_key)
    trusted = None
    if checkpoint is not None and key is not None:
        trusted = _read_checkpoint(checkpoint, key)
    if export is None:
        report, rows = _audit(cli, key, unsigned_until=legacy, trusted=trusted)
    else:
        report, rows = _audit_export(export, key, unsigned_until=legacy, trusted=trusted)
    if key is None and (len(rows) > legacy or checkpoint is not None):
        fail(
            f"cannot check signatures: no signing key at {signing_key_file()}; pass "
            "--public-key FILE (from `polyfleet confirmations public-key`)",
            ExitCode.UNUSABLE_INPUT,
        )
    if output == "json":
        emit_json(_report_json(report, key))
    if report.problem is not None:
        problem = report.problem
        cli.err.print(
            labelled(
                "TAMPERED:",
                "red",
                f"confirmation {problem.number} (seq {problem.seq}), "
                f"{problem.field}: {problem.message}",
            )
        )
        raise typer.Exit(ExitCode.FAILED)
    if output == "text":
        head = report.head_hash or "(none)"
        signed = "" if key is None else f", signed with key {key.key_id}"
        since = "" if trusted is None else f"; matches the checkpoint of {trusted.count} record(s)"
        typer.echo(
            f"confirmation chain intact: {report.count} record(s), head hash {head}{signed}{since}"
        )


def _audit_export(
    file: Path, key: VerifyKey | None, *, unsigned_until: int, trusted: Checkpoint | None
) -> tuple[ChainReport, list[dict[str, Any]]]:
    """`_audit` on an export file: CSV cells have their neutralising quote taken off, so the
    hashes are recomputed over the stored values, exactly as in the store."""
    try:
        with file.open(encoding="utf-8", newline="") as stream:
            if file.suffix.lower() == ".json":
                records = json.load(stream)
                if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                    fail(f"{file}: not a confirmations export (a JSON list of records)", 2)
            else:
                records = [
                    {k: csv_value(v) for k, v in row.items()} for row in csv.DictReader(stream)
                ]
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        fail(f"cannot read export {file}: {exc}", ExitCode.UNUSABLE_INPUT)
    rows = rows_from_export(records)
    report = verify_chain(rows, key=key, unsigned_until=unsigned_until)
    if report.intact and trusted is not None:
        problem = trusted.check(rows)
        if problem:
            report = ChainReport(report.count, report.head_hash, problem)
    return report, rows


@app.command()
def checkpoint(ctx: typer.Context) -> None:
    """Print a signed head of the record (one JSON line) to keep outside the store.

    Refused when the record does not verify: signing it would vouch for the tampering.
    """
    cli = get_context(ctx)
    key = _key_or_exit(SigningKey.load_or_create)
    report, rows = _audit(cli, key.public)
    try:
        made = Checkpoint.sign(report, rows[-1]["number"] if rows else None, key)
    except CheckpointError as exc:
        fail(f"no checkpoint made: {exc}")
    typer.echo(made.to_json())
    cli.info(
        f"checkpoint of {made.count} record(s) signed with key {made.key_id}: keep it outside "
        "the store (ticket, mail, syslog) and check with `confirmations verify --checkpoint FILE`"
    )


@app.command("public-key")
def public_key_(ctx: typer.Context) -> None:
    """Print the public key that checks signatures (PEM), for auditors and `--public-key`."""
    cli = get_context(ctx)
    key = _key_or_exit(SigningKey.load_or_create)
    typer.echo(key.public.pem(), nl=False)
    cli.info(f"key id {key.public.key_id}")
