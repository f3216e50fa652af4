"""`polyfleet discover CIDR…`: probe addresses, recognise Poly devices, add them to inventory."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer

from controller.cli.context import ExitCode, OutputFormat, fail, get_context, run
from controller.cli.output import emit_json, emit_rows
from controller.discovery import (
    DiscoveryError,
    expand_targets,
)
from controller.usecases.discover import DiscoveredAddress, DiscoverRequest, discovery_document
from controller.usecases.discover import discover as discover_usecase
from inventory.credential_store import ProfileNotFound
from inventory.models import DevicePorts

COLUMNS = ("address", "outcome", "action", "serial", "mac", "model", "driver", "detail")


def discover(
    ctx: typer.Context,
    targets: Annotated[list[str], typer.Argument(metavar="CIDR...", help="e.g. 10.1.0.0/24")],
    site: Annotated[str | None, typer.Option(help="site of the devices found")] = None,
    credentials: Annotated[
        list[str] | None,
        typer.Option(
            help="credential profile to probe with (repeatable); the one that works "
            "is remembered on the device"
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=4096)] = 256,
    timeout: Annotated[float, typer.Option(min=0.1, max=60, help="per probe (s)")] = 1.0,
    snmp_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="probe SNMP here instead of 161")
    ] = None,
    https_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="probe HTTPS here instead of 443 (8443 for DMA/RPRM)"),
    ] = None,
    ssh_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="probe SSH here instead of 22")
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.TABLE,
) -> None:
    """Probe addresses; Poly devices are added or updated, the rest are listed only.

    A device found on a non-standard port (--snmp-port, --https-port, --ssh-port) keeps that
    port in the inventory, so scans reach it there.
    """
    cli = get_context(ctx)
    try:
        addresses = expand_targets(targets)
    except DiscoveryError as exc:
        fail(str(exc), ExitCode.UNUSABLE_INPUT)

    request = DiscoverRequest(
        addresses=addresses,
        site=site,
        credentials=credentials or [],
        concurrency=concurrency,
        timeout=timeout,
        ports=DevicePorts(snmp=snmp_port, https=https_port, ssh=ssh_port),
    )

    async def go() -> list[DiscoveredAddress]:
        async with cli.store() as store:
            return await discover_usecase(store, request)

    try:
        results = run(go, network=True)
    except ProfileNotFound as exc:
        fail(str(exc))
    rows = discovery_document(results)
    warnings = [f"{r.address}: {r.warning}" for r in results if r.warning]
    if output is OutputFormat.JSON:
        emit_json(rows)
    else:
        emit_rows(rows, COLUMNS, output, console=cli.out, title=f"{len(rows)} address(es)")
    for warning in warnings:
        cli.warn(warning)
    counts = Counter(row["outcome"] for row in rows)
    cli.info("discovered: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
