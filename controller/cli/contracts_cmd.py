"""`polyfleet contracts …`: import and list warranties and service agreements.

Contracts are where eligibility comes from, so `import` follows `inventory import`'s rules: every
rejected row is reported with its line and reason, the rest is written in one transaction (or,
with `--strict`, nothing), and an unreadable file is exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from controller.cli.context import OutputFormat, get_context, parse_date_option, run
from controller.cli.import_report import (
    MaxBytesOption,
    check_format,
    finish_import,
    import_limits,
    parse_or_exit,
)
from controller.cli.output import emit_rows
from controller.usecases.imports import ImportMode, import_contracts
from inventory.contract_files import parse_contract_file
from inventory.contract_store import ContractStore
from inventory.models import Contract

app = typer.Typer(
    help="Warranties and service agreements: the eligibility source of quotes.",
    no_args_is_help=True,
)

LIST_COLUMNS = (
    "number",
    "kind",
    "start",
    "end",
    "pricing",
    "region",
    "product_groups",
    "serials",
)
_TABLE_SERIALS = 1
OutputOption = Annotated[
    OutputFormat, typer.Option("--output", "-o", help="table for people, json or csv for scripts")
]


def contract_record(contract: Contract) -> dict[str, Any]:
    """A contract as listings show it: lists sorted, so CSV output imports back unchanged."""
    return {
        "number": contract.number,
        "kind": contract.kind.value,
        "start": contract.start,
        "end": contract.end,
        "pricing": contract.pricing.value,
        "region": contract.region,
        "product_groups": sorted(group.value for group in contract.product_groups),
        "serials": sorted(contract.serials),
    }


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV or JSON file of contracts")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv or json (default: by file extension)")
    ] = None,
    strict: Annotated[bool, typer.Option(help="import nothing if any row is rejected")] = False,
    dry_run: Annotated[bool, typer.Option(help="report what would change, write nothing")] = False,
    max_bytes: MaxBytesOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Import contracts; a contract in the file replaces the stored one of the same number."""
    cli = get_context(ctx)
    file_format = check_format(fmt)
    limits = import_limits(cli, max_bytes)
    parsed = parse_or_exit(lambda: parse_contract_file(file, fmt=file_format, limits=limits))
    for warning in parsed.warnings:
        cli.warn(f"{file}:{warning.line}: {warning.message}")
    mode = ImportMode(dry_run=dry_run, strict=strict)

    async def apply() -> dict[str, Any]:
        async with cli.store() as store:
            result = await import_contracts(store, file, parsed, mode)
        return result.model_dump(mode="json")

    summary = run(apply)
    unknown = summary["serials_not_in_inventory"]
    if unknown:
        shown = ", ".join(unknown[:5]) + (
            f" (+{len(unknown) - 5} more)" if len(unknown) > 5 else ""
        )
        cli.warn(f"{len(unknown)} covered serial(s) are not in the inventory: {shown}")
    total = summary["inserted"] + summary["updated"] + summary["unchanged"]
    finish_import(
        cli, file, summary, strict=strict, dry_run=dry_run, output=output,
        done=f"{total} contract(s): {summary['inserted']} new, {summary['updated']} replaced, "
        f"{summary['unchanged']} unchanged",
    )  # fmt: skip


@app.command("list")
def list_(
    ctx: typer.Context,
    active_on: Annotated[
        str | None, typer.Option("--active-on", help="only contracts in force on DATE (YYYY-MM-DD)")
    ] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """List contracts, ordered by number."""
    cli = get_context(ctx)
    day = parse_date_option(active_on, "--active-on")

    async def fetch() -> list[Contract]:
        async with cli.store(read_only=True) as store:
            return await ContractStore(store.engine).list_contracts(active_on=day)

    contracts = run(fetch)
    records = [contract_record(c) for c in contracts]
    if output is OutputFormat.TABLE:
        for record in records:
            serials: list[str] = record["serials"]
            if len(serials) > _TABLE_SERIALS:
                more = len(serials) - _TABLE_SERIALS
                record["serials"] = [*serials[:_TABLE_SERIALS], f"(+{more})"]
    emit_rows(records, LIST_COLUMNS, output, console=cli.out, title=f"{len(records)} contract(s)")
