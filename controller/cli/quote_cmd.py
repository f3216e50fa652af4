"""`polyfleet quote ID`: may this device be re-activated, at what fee, under what contract, by when?

The answer is `controller.eligibility.evaluate()`'s, the same the re-activation workflow acts on;
this command only gathers its inputs (device, contracts, site, policy) and prints it. Exit 0
eligible, 4 ineligible, 1 device not found, 2 unusable policy file or option.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from controller.cli.context import (
    CliContext,
    ExitCode,
    OutputFormat,
    fail,
    get_context,
    parse_date_option,
    run,
)
from controller.cli.output import data_table, emit_json, shown
from controller.eligibility import Quote
from controller.policy import Policy, PolicyError, load_policy
from controller.usecases.quote import QuoteRequest
from controller.usecases.quote import quote as quote_usecase
from inventory.identifiers import format_mac

if TYPE_CHECKING:
    from rich.text import Text


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
    """The quote for people: the rules table, then contract, fee and due date."""
    from controller.cli.console import labelled, styled  # rich: not for `-o json`

    mac = f", MAC {format_mac(result.mac)}" if result.mac else ""
    title = f"re-activation quote for {result.serial}{mac} on {result.on}"
    table = data_table(("rule", "result", "reason"), title=title)
    for rule in result.rules:
        verdict = styled("pass", "green") if rule.passed else styled("FAIL", "red")
        table.add_row(shown(rule.name), verdict, shown(rule.reason))
    cli.out.print(table)
    lines: list[str | Text] = []
    if result.eligible:
        lines.append(styled("ELIGIBLE", "green bold"))
        lines.append(
            f"contract:  {result.contract} ({result.contract_kind}, ends {result.contract_end})"
        )
        lines.append(f"fee:       {result.fee} {result.currency} ({result.pricing})")
    else:
        failed = ", ".join(rule.name for rule in result.failed)
        lines.append(labelled("INELIGIBLE", "red bold", f"(failed: {failed})"))
    holidays = ", ".join(f"{h.name} {h.date}" for h in result.sla_holidays)
    skipped = f"; skips {holidays}" if holidays else ""
    lines.append(
        f"SLA due:   {result.sla_due} ({result.sla_business_days} business day(s) in "
        f"{result.sla_country}{skipped})"
    )
    if result.ppi_fee is not None:
        lines.append(
            f"PPI fee:   {result.ppi_fee} {result.currency} pay-per-incident "
            f"(in force since {result.ppi_fee_effective})"
        )
    lines.append(f"policy:    {result.policy}")
    for note in result.notes:
        lines.append(f"note:      {note}")
    for line in lines:
        cli.out.print(line)
