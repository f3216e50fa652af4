"""`polyfleet inventory …`: import, add, list, show, remove and export devices."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from pydantic import ValidationError

from controller.cli.context import OutputFormat, fail, get_context, run
from controller.cli.history_output import emit_history, observation_record
from controller.cli.import_report import (
    MaxBytesOption,
    check_format,
    finish_import,
    import_limits,
)
from controller.cli.output import emit_rows
from inventory.catalog import product_group_for_model
from inventory.identifiers import format_mac, mac_warning
from inventory.models import Device, DevicePorts
from inventory.observation_history import HistoryPage

app = typer.Typer(
    help="The device inventory: devices by serial number and MAC.", no_args_is_help=True
)

LIST_COLUMNS = ("serial", "mac", "model", "product_group", "site", "host", "driver", "firmware")
OutputOption = Annotated[
    OutputFormat, typer.Option("--output", "-o", help="table for people, json or csv for scripts")
]
FileFormat = Literal["csv", "json"]
T = TypeVar("T")
SHOW_OBSERVATIONS = 5
"""Observations `inventory show` prints (newest first; the API pages through all kept)."""


def device_record(device: Device, output: OutputFormat) -> dict[str, Any]:
    """A device as shown in listings: every stored field; the MAC in colon form in tables only,
    since JSON and CSV promise scripts 12 lower-case hex digits (PRODUCT.md)."""
    record = device.model_dump(mode="json")
    if device.mac and output is OutputFormat.TABLE:
        record["mac"] = format_mac(device.mac)
    return record


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV or JSON file of devices")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv or json (default: by file extension)")
    ] = None,
    site: Annotated[str | None, typer.Option(help="site for rows that name none")] = None,
    strict: Annotated[bool, typer.Option(help="import nothing if any row is rejected")] = False,
    dry_run: Annotated[bool, typer.Option(help="report what would change, write nothing")] = False,
    max_bytes: MaxBytesOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Upsert devices from a file; every rejected row is reported with its line and reason.

    The file is read as a stream, one batch of rows at a time, into one transaction that is
    committed at the end unless `--dry-run`, or `--strict` with a rejected row, says otherwise.
    """
    # here, not at the top: the import stack (importer, contracts, key store, cryptography) is
    # about 30 ms of start-up that `inventory list` and `show` never use
    from controller.usecases.imports import ImportMode, import_devices
    from inventory.importer import read_device_batches

    cli = get_context(ctx)
    file_format = check_format(fmt)
    limits = import_limits(cli, max_bytes)
    mode = ImportMode(dry_run=dry_run, strict=strict)

    def warn(line: int, message: str) -> None:
        cli.warn(f"{file}:{line}: {message}")

    async def apply() -> dict[str, Any]:
        batches = read_device_batches(file, fmt=file_format, default_site=site, limits=limits)
        async with cli.store() as store:
            result = await import_devices(store, file, batches, mode, on_warning=warn)
        return result.model_dump(mode="json")

    summary = run(apply)
    total = summary["inserted"] + summary["updated"] + summary["unchanged"]
    finish_import(
        cli, file, summary, strict=strict, dry_run=dry_run, output=output,
        done=f"{total} device(s): {summary['inserted']} new, {summary['updated']} updated, "
        f"{summary['unchanged']} unchanged",
    )  # fmt: skip


@app.command()
def add(
    ctx: typer.Context,
    serial: Annotated[str, typer.Argument(help="serial number")],
    mac: Annotated[str | None, typer.Option(help="MAC address, any spelling")] = None,
    model: Annotated[str | None, typer.Option()] = None,
    host: Annotated[str | None, typer.Option(help="IP address or DNS name")] = None,
    site: Annotated[str | None, typer.Option()] = None,
    driver: Annotated[str | None, typer.Option(help="driver name (default: detected)")] = None,
    credentials: Annotated[str | None, typer.Option(help="credential profile name")] = None,
    snmp_port: Annotated[int | None, typer.Option()] = None,
    https_port: Annotated[int | None, typer.Option()] = None,
    ssh_port: Annotated[int | None, typer.Option()] = None,
    tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable")] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Add one device, or update the one with that serial."""
    cli = get_context(ctx)
    tags: dict[str, str] = {}
    for item in tag or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--tag {item!r} is not KEY=VALUE")
        tags[key.strip()] = value.strip()
    try:
        device = Device(
            serial=serial,
            mac=mac,
            model=model,
            product_group=product_group_for_model(model) if model else None,
            host=host,
            site=site,
            driver=driver,
            credentials=credentials,
            ports=DevicePorts(snmp=snmp_port, https=https_port, ssh=ssh_port),
            tags=tags,
        )
    except ValidationError as exc:
        fail(_validation_message(exc))
    if device.mac and (warning := mac_warning(device.mac)):
        cli.warn(warning)

    async def save() -> Device:
        async with cli.store() as store:
            if credentials:
                await _require_profile(cli, credentials)
            return await store.add_device(device)

    stored = run(save)
    _show(stored, output, cli)


async def _require_profile(cli: Any, name: str) -> None:
    async with cli.credentials() as creds:
        if not await creds.exists(name):
            fail(
                f"no credential profile named {name!r} (create it with `polyfleet credentials set`)"
            )


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "value"
        parts.append(f"{where}: {error['msg']}")
    return "invalid device: " + "; ".join(parts)


def _show(
    device: Device, output: OutputFormat, cli: Any, history: HistoryPage | None = None
) -> None:
    """The device's record; with `history`, its newest observations too (JSON: the key
    `observations`; a table of their own; CSV stays one device row)."""
    record = device_record(device, output)
    if output is OutputFormat.TABLE:
        emit_rows(
            [{"field": k, "value": v} for k, v in record.items()],
            ("field", "value"),
            output,
            console=cli.out,
            title=f"device {device.serial}",
        )
        if history is not None and history.entries:
            emit_history(history, cli.out)
        return
    columns = list(record)
    if output is OutputFormat.JSON and history is not None:
        record["observations"] = [observation_record(e) for e in history.entries]
    emit_rows([record], columns, output, console=lambda: cli.out)


@app.command("list")
def list_(
    ctx: typer.Context,
    site: Annotated[str | None, typer.Option(help="only this site")] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """List devices, ordered by serial."""
    cli = get_context(ctx)

    async def fetch() -> list[Device]:
        async with cli.store(read_only=True) as store:
            return await store.list_devices(site=site)

    devices = run(fetch)
    emit_rows(
        (device_record(d, output) for d in devices),
        LIST_COLUMNS,
        output,
        console=lambda: cli.out,
        title=f"{len(devices)} device(s)",
    )


@app.command()
def show(
    ctx: typer.Context,
    device_id: Annotated[str, typer.Argument(metavar="ID", help="serial or MAC, any spelling")],
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Show one device by serial or MAC, with its newest observations (scan results)."""
    cli = get_context(ctx)

    async def fetch() -> tuple[Device, HistoryPage]:
        # here, not at the top: it loads the health rules, which the other commands never need
        from controller.usecases.devices import device_history

        async with cli.store(read_only=True) as store:
            return await device_history(store, device_id, limit=SHOW_OBSERVATIONS)

    device, history = run(fetch)
    _show(device, output, cli, history)


@app.command()
def remove(
    ctx: typer.Context,
    device_id: Annotated[str, typer.Argument(metavar="ID", help="serial or MAC, any spelling")],
) -> None:
    """Remove one device from the inventory."""
    cli = get_context(ctx)

    async def delete() -> Device:
        async with cli.store() as store:
            return await store.remove_device(device_id)

    removed = run(delete)
    cli.info(f"removed device {removed.serial}")


@app.command()
def export(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="output file (default: stdout)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    site: Annotated[str | None, typer.Option(help="only this site")] = None,
) -> None:
    """Export devices in the format `inventory import` reads back exactly."""
    from inventory.exporter import write_devices

    cli = get_context(ctx)
    file_format = check_format(fmt) or "csv"

    async def fetch() -> list[Device]:
        async with cli.store(read_only=True) as store:
            return await store.list_devices(site=site)

    devices = run(fetch)
    if file is None:
        write_devices(devices, file_format, sys.stdout)
    else:
        tmp = file.with_name(f".{file.name}.tmp")
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            write_devices(devices, file_format, handle)
        tmp.replace(file)
    cli.info(f"exported {len(devices)} device(s)")


@app.command()
def trust(
    ctx: typer.Context,
    device_id: Annotated[str, typer.Argument(metavar="ID", help="serial or MAC, any spelling")],
    yes: Annotated[bool, typer.Option("--yes", help="accept without asking")] = False,
) -> None:
    """Accept a device's changed TLS certificate or SSH host key, as seen by the last scan."""
    cli = get_context(ctx)

    async def pending() -> tuple[Device, dict[str, tuple[str | None, str]]]:
        async with cli.store() as store:
            device = await store.get_device(device_id)
            return device, await store.pending_pins(device.serial)

    device, changes = run(pending)
    if not changes:
        fail(f"device {device.serial} has no changed certificate or host key to accept")
    names = {"tls": "TLS certificate", "ssh": "SSH host key"}
    for kind, (old, new) in changes.items():
        cli.err.print(f"{names[kind]} of {device.serial}:\n  pinned: {old}\n  now:    {new}")
    if not yes:
        if not sys.stdin.isatty():
            fail("no terminal to confirm on: pass --yes after checking the device")
        typer.confirm("Trust the new identity?", abort=True, err=True)

    async def accept() -> None:
        async with cli.store() as store:
            await store.accept_pending_pins(device.serial, list(changes))

    run(accept)
    cli.info(f"device {device.serial}: new {', '.join(names[k] for k in changes)} trusted")
