"""`polyfleet reactivate`: one device while the user waits, or every expired device at once."""

from __future__ import annotations

import asyncio
import getpass
import logging
import socket
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from controller.cli.console import styled
from controller.cli.context import CliContext, ExitCode, OutputFormat, fail, get_context, run
from controller.cli.output import emit_json, emit_rows
from controller.cli.quote_cmd import resolve_policy
from controller.cli.scan_cmd import progress_bar
from controller.eligibility import Quote
from controller.entitlements import EntitlementUnavailable, provider_from_settings
from controller.reactivation import HELD, Outcome, Status
from controller.usecases.reactivate import (
    NoLicenseOnRecord,
    PlanReview,
    ReactivationRequest,
    ReactivationRun,
    SessionSettings,
    TargetQuery,
    outcome_row,
    outcomes_json,
)
from controller.usecases.reactivate import reactivate as reactivate_usecase
from inventory.credential_store import ProfileNotFound
from inventory.models import Device

log = logging.getLogger("polyfleet.reactivate")
MAX_LISTED = 20
"""Serials a summary names before it says "and N more"."""
COLUMNS = ("serial", "feature", "status", "confirmation", "fee", "contract", "reason")


def default_actor() -> str:
    """Who is re-activating, for the audit record: user@host."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def reactivate(
    ctx: typer.Context,
    device_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="serial or MAC, any spelling")
    ] = None,
    feature: Annotated[str | None, typer.Option(help="feature (default: expired ones)")] = None,
    all_expired: Annotated[
        bool, typer.Option("--all-expired", help="every device with an expired feature")
    ] = False,
    site: Annotated[str | None, typer.Option(help="with --all-expired: only this site")] = None,
    dry_run: Annotated[bool, typer.Option(help="show what would happen, change nothing")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    concurrency: Annotated[int, typer.Option(min=1, max=256)] = 16,
    timeout: Annotated[float, typer.Option(min=0.5, max=120, help="per request (s)")] = 5.0,
    policy_file: Annotated[Path | None, typer.Option("--policy")] = None,
    credentials: Annotated[
        str | None, typer.Option(help="profile for devices that name none")
    ] = None,
    ca_bundle: Annotated[str | None, typer.Option(help="verify TLS against this CA file")] = None,
    insecure: Annotated[bool, typer.Option(help="skip TLS verification and pinning")] = False,
    actor: Annotated[str | None, typer.Option(help="who to record (default: user@host)")] = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.TABLE,
) -> None:
    """Eligibility, fee, key, apply, verify and a confirmation record, in one command."""
    cli = get_context(ctx)
    if (device_id is None) == (not all_expired):
        fail("give a device ID or --all-expired (not both)", ExitCode.UNUSABLE_INPUT)
    if site and not all_expired:
        fail("--site goes with --all-expired", ExitCode.UNUSABLE_INPUT)
    if not (yes or dry_run) and not sys.stdin.isatty():
        fail("no terminal to confirm on: pass --yes (or --dry-run to only look)")
    policy = resolve_policy(cli, policy_file)
    try:
        provider = provider_from_settings(cli.settings.portal)
    except EntitlementUnavailable as exc:
        fail(str(exc), ExitCode.UNUSABLE_INPUT)
    if insecure:
        cli.warn("--insecure: TLS certificates are neither verified nor pinned")
    session = SessionSettings(
        concurrency=concurrency,
        timeout=timeout,
        credentials=credentials,
        ca_bundle=ca_bundle,
        insecure=insecure,
    )

    request = ReactivationRequest(
        query=TargetQuery(device_id=device_id, feature=feature, site=site),
        session=session,
        dry_run=dry_run,
    )
    with ExitStack() as bar:
        ticker: list[Callable[[], None] | None] = []

        def start(total: int) -> None:  # a progress bar over the batch, on a terminal
            ticker.append(bar.enter_context(progress_bar(cli, total)))

        async def step(_: Outcome) -> None:
            if ticker and (advance := ticker[0]) is not None:
                advance()

        async def go() -> ReactivationRun:
            async with cli.store() as store:
                return await reactivate_usecase(
                    store,
                    request,
                    policy=policy,
                    provider=provider,
                    actor=actor or default_actor(),
                    approve=None if (yes or all_expired) else _ask(cli),
                    review=_review(cli) if all_expired and not yes else None,
                    on_start=start,
                    on_outcome=step,
                )

        try:
            result = run(go, network=True)
        except (NoLicenseOnRecord, ProfileNotFound) as exc:
            fail(str(exc))
    if result.declined:
        fail("nothing done", ExitCode.FAILED)
    outcomes, unread = result.outcomes, result.unread
    _report(cli, outcomes, output, dry_run)
    if unread:
        shown = ", ".join(unread[:MAX_LISTED]) + (
            f" and {len(unread) - MAX_LISTED} more" if len(unread) > MAX_LISTED else ""
        )
        cli.warn(
            f"{len(unread)} device(s) not judged, their licenses were never read "
            f"(run `polyfleet scan`, then again): {shown}"
        )
    raise typer.Exit(_exit_code(outcomes, batch=all_expired))


def _ask(cli: CliContext) -> Any:
    async def approve(device: Device, feature: str, quote: Quote, fee: Decimal) -> bool:
        cli.err.print(
            f"device   {device.serial} ({device.model or 'unknown model'}, site {device.site})\n"
            f"feature  {feature}\n"
            f"fee      {fee} {quote.currency} ({quote.pricing})\n"
            f"contract {quote.contract} (until {quote.contract_end})\n"
            f"due by   {quote.sla_due} (SLA {quote.sla_business_days} business days)",
            highlight=False,
        )
        return await asyncio.to_thread(typer.confirm, "Re-activate?", err=True)

    return approve


def _review(cli: CliContext) -> PlanReview:
    async def review(plans: Sequence[Outcome]) -> bool:
        _show_plans(cli, plans)
        return typer.confirm(f"Re-activate {len(plans)} feature(s)?", err=True)

    return review


def _show_plans(cli: CliContext, plans: Sequence[Outcome]) -> None:
    rows = [outcome_row(p) for p in plans]
    emit_rows(rows, COLUMNS, OutputFormat.TABLE, console=cli.err, title="plan")


def _report(cli: CliContext, outcomes: Sequence[Outcome], output: OutputFormat, dry: bool) -> None:
    if output is OutputFormat.JSON:
        emit_json(outcomes_json(outcomes))
    elif dry and output is OutputFormat.TABLE:
        for outcome in outcomes:
            cli.out.print(styled(f"{outcome.serial} {outcome.feature}", "bold"))
            for step in outcome.plan or (outcome.reason or "",):
                cli.out.print(f"  - {step}")
    else:
        emit_rows([outcome_row(o) for o in outcomes], COLUMNS, output, console=cli.out)
    counts: dict[str, int] = defaultdict(int)
    for outcome in outcomes:
        counts[outcome.status.value] += 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    cli.info(("dry run, nothing changed: " if dry else "") + (summary or "nothing to do"))
    for outcome in outcomes:
        if outcome.status is Status.HELD:
            cli.info(
                f"{outcome.serial} {outcome.feature}: {HELD} (operation {outcome.operation}); "
                "rerun when it has finished"
            )
        elif outcome.resumable and outcome.operation:
            cli.info(f"{outcome.serial} {outcome.feature}: rerun to resume {outcome.operation}")


def _exit_code(outcomes: Sequence[Outcome], *, batch: bool) -> int:
    """0 all done; 1 any failed or held by another run; 4 ineligible (single device only: a
    batch says 1)."""
    if any(o.status in (Status.FAILED, Status.DECLINED, Status.HELD) for o in outcomes):
        return ExitCode.FAILED
    if any(o.status is Status.INELIGIBLE for o in outcomes):
        return ExitCode.FAILED if batch else ExitCode.INELIGIBLE
    return ExitCode.OK
