"""`polyfleet reactivate`: one device while the user waits, or every expired device at once."""

from __future__ import annotations

import asyncio
import getpass
import logging
import socket
import sys
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from controller.cli.console import styled
from controller.cli.context import CliContext, ExitCode, OutputFormat, fail, get_context, run
from controller.cli.output import emit_json, emit_rows
from controller.cli.quote_cmd import resolve_policy
from controller.cli.scan_cmd import load_profiles, progress_bar
from controller.confirmations import canonical_record
from controller.eligibility import Quote
from controller.entitlements import EntitlementUnavailable, provider_from_settings
from controller.reactivation import (
    HELD,
    Outcome,
    Reactivator,
    Status,
    features_to_reactivate,
)
from controller.scan import open_transports
from device_drivers.context import Timeouts
from device_drivers.registry import DriverRegistry
from inventory.credential_store import CredentialStore
from inventory.models import Device
from inventory.observation_store import DeviceStatus, ObservationStore
from inventory.secret_box import SecretBox
from inventory.store import InventoryStore

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
    who = actor or default_actor()
    timeouts = Timeouts(snmp=timeout, http=timeout, ssh=max(timeout, 10.0))

    unread: list[str] = []

    async def go() -> list[Outcome]:
        async with cli.store() as store:
            targets = await _targets(store, device_id, feature, all_expired, site, unread)
            creds = CredentialStore(store.engine, SecretBox.from_environment())
            profiles = await load_profiles(creds, [d for d, _ in targets], None)
            transports = open_transports(concurrency)
            try:
                flow = Reactivator(
                    store,
                    registry=DriverRegistry(),
                    transports=transports,
                    profiles=profiles,
                    policy=policy,
                    provider=provider,
                    actor=who,
                    approve=None if (yes or all_expired) else _ask(cli),
                    timeouts=timeouts,
                )
                if dry_run:
                    return [await flow.plan(d, f) for d, f in targets]
                if all_expired and not yes and targets:
                    plans = [await flow.plan(d, f) for d, f in targets]
                    _show_plans(cli, plans)
                    if not typer.confirm(f"Re-activate {len(targets)} feature(s)?", err=True):
                        fail("nothing done", ExitCode.FAILED)
                return await _run_all(cli, flow, targets, concurrency)
            finally:
                await transports.close()

    outcomes = run(go)
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


async def _targets(
    store: InventoryStore,
    device_id: str | None,
    feature: str | None,
    all_expired: bool,
    site: str | None,
    unread: list[str],
) -> list[tuple[Device, str]]:
    """(device, feature) pairs: the named feature, else those last seen expired/deactivated.

    With --all-expired, networked devices with no license state on record go to `unread`: the
    batch cannot tell whether they need a re-activation, so it names them instead of passing
    over them in silence."""
    observations = ObservationStore(store.engine)
    if device_id is not None:
        device = await store.get_device(device_id)
        if feature:
            return [(device, feature)]
        licenses = await observations.licenses_of(device.serial)
        # Nothing expired on record: ask about every known feature, so a repeated command
        # answers with the existing confirmations instead of doing anything twice.
        features = features_to_reactivate(licenses) or sorted(lic.feature for lic in licenses)
        if not features:
            fail(
                f"no license of device {device.serial} on record "
                "(run `polyfleet scan --id` first, or name the feature with --feature)"
            )
        return [(device, f) for f in features]
    devices = {d.serial: d for d in await store.list_devices(site=site)}
    statuses = await observations.statuses(list(devices))
    unread.extend(
        serial
        for serial, device in sorted(devices.items())
        if device.host and _license_state_unknown(statuses.get(serial))
    )
    return [
        (devices[serial], f)
        for serial, status in sorted(statuses.items())
        for f in features_to_reactivate(status.licenses)
        if feature is None or f == feature
    ]


def _license_state_unknown(status: DeviceStatus | None) -> bool:
    """Never observed, or observed without its license state read (issue 10's license_read;
    an observation from before it was recorded counts as unread when it lists nothing)."""
    if status is None:
        return True
    if status.license_read is not None:
        return not status.license_read.ok
    return not status.licenses


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


async def _run_all(
    cli: CliContext, flow: Reactivator, targets: Sequence[tuple[Device, str]], concurrency: int
) -> list[Outcome]:
    """Bounded concurrency over devices; one operation at a time per device. Whatever happens to
    one device is that device's result: it never stops the batch nor loses another's report."""
    by_device: dict[str, list[tuple[Device, str]]] = defaultdict(list)
    for device, feature in targets:
        by_device[device.serial].append((device, feature))
    limit = asyncio.Semaphore(concurrency)
    results: dict[tuple[str, str], Outcome] = {}
    with progress_bar(cli, len(targets)) as advance:

        async def one_device(items: list[tuple[Device, str]]) -> None:
            async with limit:
                for device, feature in items:
                    results[(device.serial, feature)] = await _one(flow, device, feature)
                    if advance is not None:
                        advance()

        async with asyncio.TaskGroup() as group:
            for items in by_device.values():
                group.create_task(one_device(items))
    return [results[(d.serial, f)] for d, f in targets]


async def _one(flow: Reactivator, device: Device, feature: str) -> Outcome:
    """One device feature's outcome; an unexpected error becomes a failed result in one line
    (its traceback only in debug logging), so the batch and the other devices' reports go on."""
    try:
        return await flow.reactivate(device, feature)
    except Exception as exc:
        log.debug("re-activating %s %s failed", device.serial, feature, exc_info=True)
        reason = f"unexpected error: {type(exc).__name__}: {exc}".splitlines()[0]
        return Outcome(device.serial, feature, Status.FAILED, reason, resumable=True)


def _row(outcome: Outcome) -> dict[str, Any]:
    record = outcome.confirmation
    quote = outcome.quote
    fee = record.fee if record else (quote.fee if quote else None)
    return {
        "serial": outcome.serial,
        "feature": outcome.feature,
        "status": outcome.status.value,
        "operation": outcome.operation,
        "confirmation": record.number if record else None,
        "fee": f"{fee} {record.currency if record else quote.currency if quote else ''}".strip()
        if fee is not None
        else None,
        "contract": record.contract if record else (quote.contract if quote else None),
        "reason": outcome.reason,
        "resumable": outcome.resumable,
        "plan": list(outcome.plan),
    }


def _show_plans(cli: CliContext, plans: Sequence[Outcome]) -> None:
    rows = [_row(p) for p in plans]
    emit_rows(rows, COLUMNS, OutputFormat.TABLE, console=cli.err, title="plan")


def _report(cli: CliContext, outcomes: Sequence[Outcome], output: OutputFormat, dry: bool) -> None:
    if output is OutputFormat.JSON:
        emit_json(
            [
                {
                    **_row(o),
                    "confirmation": canonical_record(o.confirmation) if o.confirmation else None,
                }
                for o in outcomes
            ]
        )
    elif dry and output is OutputFormat.TABLE:
        for outcome in outcomes:
            cli.out.print(styled(f"{outcome.serial} {outcome.feature}", "bold"))
            for step in outcome.plan or (outcome.reason or "",):
                cli.out.print(f"  - {step}")
    else:
        emit_rows([_row(o) for o in outcomes], COLUMNS, output, console=cli.out)
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
