"""`polyfleet quote ID`: may this device be re-activated, at what fee, under what contract, by when?

The answer is `controller.eligibility.evaluate()`'s, the same the re-activation workflow acts on;
this command only gathers its inputs (device, contracts, site, policy) and prints it. Exit 0
eligible, 4 ineligible, 1 device not found, 2 unusable policy file or option.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from controller.cli import plain_table
from controller.cli.context import (
    CliContext,
    ExitCode,
    OutputFormat,
    fail,
    get_context,
    parse_date_option,
    plain_stream,
    run,
)
from controller.cli.output import data_table, emit_json
from controller.eligibility import Quote
from controller.policy import Policy, PolicyError, load_policy
from controller.usecases.quote import QuoteRequest
from controller.usecases.quote import quote as quote_usecase
from inventory.identifiers import format_mac
from inventory.safe_text import printable

if TYPE_CHECKING:
    from rich.console import Console


def resolve_policy(cli: CliContext, option: Path | None) -> Policy:
    """`--policy` over the config file's `policy` over the shipped default; errors exit 2."""
    path = option or cli.settings.policy
    try:
        return load_policy(path)
    except PolicyError as exc:
        fail(str(exc), ExitCode.UNUSABLE_INPUT)


def quote(
    ctx: typer.Context,
    device_id: Annotated[str, typer.Argument(metavar="ID", help="serial or MAC, any spelling")],
    feature: Annotated[
        str | None, typer.Option("--feature", help="license feature to re-activate")
    ] = None,
    on: Annotated[
        str | None, typer.Option("--on", help="quote date YYYY-MM-DD (default: today)")
    ] = None,
    policy_file: Annotated[
        Path | None,
        typer.Option("--policy", help="policy TOML file (default: config `policy`, else built-in)"),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="table for people, json for scripts")
    ] = OutputFormat.TABLE,
) -> None:
    """Eligibility rule by rule, the fee and the SLA due date for re-activating one device."""
    cli = get_context(ctx)
    if output is OutputFormat.CSV:
        fail("quote prints table or json, not csv", ExitCode.UNUSABLE_INPUT)
    day = parse_date_option(on, "--on") or date.today()
    policy = resolve_policy(cli, policy_file)

    request = QuoteRequest(device_id=device_id, feature=feature, on=day)

    async def build() -> Quote:
        async with cli.store(read_only=True) as store:
            return await quote_usecase(store, request, policy)

    result = run(build)
    if output is OutputFormat.JSON:
        emit_json(result.model_dump(mode="json"))
    else:
        show_quote(cli, result)
    if not result.eligible:
        raise typer.Exit(ExitCode.INELIGIBLE)


def show_quote(cli: CliContext, result: Quote) -> None:
    """The quote for people: the rules table, then contract, fee and due date. To a pipe or
    file it is written as plain text when `plain_table` can (the bytes rich would write, without
    importing rich: about 20 ms of the command's start-up), else through rich."""
    title, rows, lines = _quote_parts(result)
    # Not a terminal either: under TTY_COMPATIBLE=0 a terminal gets no escape codes, but rich
    # lays the table out at the terminal's width, not PIPE_WIDTH.
    if plain_stream(sys.stdout) and not sys.stdout.isatty():
        table = plain_table.render(
            QUOTE_COLUMNS,
            [[cell for cell, _ in row] for row in rows],
            title=title,
            width=plain_table.PIPE_WIDTH,
            encoding=sys.stdout.encoding or "",
        )
        if table is not None:
            text = "".join(
                f"{label}{' ' if label and rest else ''}{rest}\n" for label, _, rest in lines
            )
            sys.stdout.write(table + text)
            return
    _show_rich(cli.out, title, rows, lines)


QUOTE_COLUMNS = ("rule", "result", "reason")


def _quote_parts(
    result: Quote,
) -> tuple[str, list[list[tuple[str, str]]], list[tuple[str, str, str]]]:
    """The table's title, its rows of (cell, style) and the lines below it as (styled label,
    its style, literal rest): every value already `printable`, as the consoles show it."""
    mac = f", MAC {format_mac(result.mac)}" if result.mac else ""
    title = printable(f"re-activation quote for {result.serial}{mac} on {result.on}")
    rows = [
        [
            (printable(rule.name), ""),
            ("pass", "green") if rule.passed else ("FAIL", "red"),
            (printable(rule.reason), ""),
        ]
        for rule in result.rules
    ]
    lines: list[tuple[str, str, str]] = []
    if result.eligible:
        lines.append(("ELIGIBLE", "green bold", ""))
        lines.append(
            (
                "",
                "",
                f"contract:  {result.contract} ({result.contract_kind}, ends "
                f"{result.contract_end})",
            )
        )
        lines.append(("", "", f"fee:       {result.fee} {result.currency} ({result.pricing})"))
    else:
        failed = ", ".join(rule.name for rule in result.failed)
        lines.append(("INELIGIBLE", "red bold", f"(failed: {failed})"))
    holidays = ", ".join(f"{h.name} {h.date}" for h in result.sla_holidays)
    skipped = f"; skips {holidays}" if holidays else ""
    lines.append(
        (
            "",
            "",
            f"SLA due:   {result.sla_due} ({result.sla_business_days} business day(s) in "
            f"{result.sla_country}{skipped})",
        )
    )
    if result.ppi_fee is not None:
        lines.append(
            (
                "",
                "",
                f"PPI fee:   {result.ppi_fee} {result.currency} pay-per-incident "
                f"(in force since {result.ppi_fee_effective})",
            )
        )
    lines.append(("", "", f"policy:    {result.policy}"))
    for note in result.notes:
        lines.append(("", "", f"note:      {note}"))
    return (
        title,
        rows,
        [(label, style, printable(rest, keep_newlines=True)) for label, style, rest in lines],
    )


def _show_rich(
    out: Console,
    title: str,
    rows: list[list[tuple[str, str]]],
    lines: list[tuple[str, str, str]],
) -> None:
    """The quote through rich: a terminal (styled), or a table plain_table leaves to rich."""
    from rich.text import Text  # rich only here: not for `-o json` or a plain pipe

    table = data_table(QUOTE_COLUMNS, title=title)
    for row in rows:
        table.add_row(*(Text(cell, style=style) for cell, style in row))
    out.print(table)
    for label, style, rest in lines:
        if not label:
            out.print(Text(rest))
        elif rest:
            out.print(Text.assemble(Text(label, style=style), " ", rest))
        else:
            out.print(Text(label, style=style))
