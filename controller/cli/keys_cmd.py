"""`polyfleet keys …`: activation keys imported from a licensing portal's CSV export.

Keys are sealed with the SecretBox before they reach the store and no command prints one; they
are named by `key_ref`. A key whose serial is not (yet) in the inventory is imported and reported
with its line: keys are bought per serial, often before the device is registered here, and
dropping a paid key would be worse than keeping one that waits for its device. A key already
stored (same serial, feature and key_ref) is skipped and reported, so re-importing an export is
harmless. Exit codes as `inventory import`: 0 all rows usable, 1 some rejected, 2 unreadable file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from controller.cli.context import OutputFormat, get_context, run
from controller.cli.import_report import (
    MaxBytesOption,
    finish_import,
    import_limits,
    parse_or_exit,
)
from controller.cli.output import emit_rows
from controller.usecases.imports import ImportMode, import_keys
from inventory.key_files import parse_key_file
from inventory.key_store import KeyInfo, KeyStore
from inventory.secret_box import SecretBox

app = typer.Typer(help="Activation keys per serial and feature.", no_args_is_help=True)

LIST_COLUMNS = ("serial", "feature", "key_ref", "expires_at", "source", "used_at", "used_by")
OutputOption = Annotated[
    OutputFormat, typer.Option("--output", "-o", help="table for people, json or csv for scripts")
]


def key_record(info: KeyInfo) -> dict[str, Any]:
    """A stored key as listings show it (never the key itself)."""
    return {
        "serial": info.serial,
        "feature": info.feature,
        "key_ref": info.key_ref,
        "expires_at": info.expires_at,
        "source": info.source,
        "imported_at": info.imported_at,
        "used_at": info.used_at,
        "used_by": info.used_by,
    }


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV export of a licensing portal")],
    strict: Annotated[bool, typer.Option(help="import nothing if any row is rejected")] = False,
    dry_run: Annotated[bool, typer.Option(help="report what would change, write nothing")] = False,
    max_bytes: MaxBytesOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Import keys (serial,feature,key,expires_at); bad rows are reported with their line."""
    cli = get_context(ctx)
    limits = import_limits(cli, max_bytes)
    parsed = parse_or_exit(lambda: parse_key_file(file, limits=limits))
    mode = ImportMode(dry_run=dry_run, strict=strict)

    async def apply() -> dict[str, Any]:
        async with cli.store() as store:
            result = await import_keys(store, file, parsed, mode)
        return result.model_dump(mode="json")

    summary = run(apply)
    for item in summary["unknown_serials"]:
        cli.warn(
            f"{file}:{item['line']}: serial {item['serial']} is not in the inventory; "
            "key imported anyway (it waits for the device)"
        )
    for line in summary["already_stored_lines"]:
        cli.info(f"{file}:{line}: key already stored; skipped")
    finish_import(
        cli, file, summary, strict=strict, dry_run=dry_run, output=output,
        done=f"{summary['imported']} key(s); {summary['already_stored']} already stored",
    )  # fmt: skip


@app.command("list")
def list_(
    ctx: typer.Context,
    serial: Annotated[str | None, typer.Option(help="only keys of this serial")] = None,
    unused: Annotated[bool, typer.Option(help="only keys not used yet")] = False,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Stored keys by serial and feature, named by key_ref (the key itself is never shown)."""
    cli = get_context(ctx)

    async def fetch() -> list[KeyInfo]:
        async with cli.store(read_only=True) as store:
            keys = KeyStore(store.engine, SecretBox.from_environment())
            return await keys.list(serial=serial, unused_only=unused)

    infos = run(fetch)
    emit_rows(
        [key_record(info) for info in infos],
        LIST_COLUMNS,
        output,
        console=cli.out,
        title="activation keys",
    )
