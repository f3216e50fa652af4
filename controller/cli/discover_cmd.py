"""`polyfleet discover CIDR…`: probe addresses, recognise Poly devices, add them to inventory."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import typer

from controller.cli.context import ExitCode, OutputFormat, fail, get_context, run
from controller.cli.output import emit_json, emit_rows
from controller.device_session import open_transports
from controller.discovery import (
    Discovered,
    Discoverer,
    DiscoveryError,
    Outcome,
    device_from_discovery,
    expand_targets,
)
from device_drivers.context import Timeouts
from device_drivers.registry import DriverRegistry
from inventory.credential_store import CredentialStore, ProfileNotFound
from inventory.models import DevicePorts
from inventory.secret_box import SecretBox

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

    warnings: list[str] = []

    async def go() -> list[dict[str, Any]]:
        async with cli.store() as store:
            creds = CredentialStore(store.engine, SecretBox.from_environment())
            profiles = [await creds.get(name) for name in credentials or []]
            transports = open_transports(concurrency)
            try:
                discoverer = Discoverer(
                    DriverRegistry(),
                    transports,
                    profiles,
                    timeouts=Timeouts(snmp=timeout, snmp_retries=0, http=timeout * 3, ssh=5.0),
                    concurrency=concurrency,
                    ports=DevicePorts(snmp=snmp_port, https=https_port, ssh=ssh_port),
                )
                results = await discoverer.discover(addresses)
            finally:
                await transports.close()
            found = [r for r in results if r.outcome is Outcome.FOUND]
            devices = [device_from_discovery(r, site=site) for r in found]
            known = {d.serial for d in devices if await store.find_device(d.serial) is not None}
            report = await store.upsert_devices(devices)
            actions = {
                id(r): "updated" if d.serial in known else "added"
                for r, d in zip(found, devices, strict=True)
            }
            for conflict in report.conflicts:
                actions[id(found[conflict.index])] = f"conflict: {conflict.error}"
            warnings.extend(f"{r.address}: {r.warning}" for r in results if r.warning)
            return [_row(r, actions.get(id(r), "")) for r in results]

    try:
        rows = run(go)
    except ProfileNotFound as exc:
        fail(str(exc))
    if output is OutputFormat.JSON:
        emit_json(rows)
    else:
        emit_rows(rows, COLUMNS, output, console=cli.out, title=f"{len(rows)} address(es)")
    for warning in warnings:
        cli.warn(warning)
    counts = Counter(row["outcome"] for row in rows)
    cli.info("discovered: " + ", ".join(f"{n} {k}" for k, n in counts.items()))


def _row(result: Discovered, action: str) -> dict[str, Any]:
    facts = result.facts
    return {
        "address": result.address,
        "outcome": result.outcome.value,
        "action": action or None,
        "serial": facts.serial if facts else None,
        "mac": facts.mac if facts else None,
        "model": facts.model if facts else None,
        "driver": result.driver,
        "detail": result.detail,
    }
