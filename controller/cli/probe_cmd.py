"""`polyfleet probe ID`: every read-only call the device's driver uses, and what came back."""

from __future__ import annotations

from typing import Annotated

import typer

from controller.cli.context import CliContext, ExitCode, OutputFormat, fail, get_context, run
from controller.cli.output import emit_json, emit_rows
from controller.probe import ProbeReport
from controller.usecases.probe import ProbeRequest
from controller.usecases.probe import probe as probe_usecase
from device_drivers.registry import DriverRegistryError
from inventory.credential_store import ProfileNotFound

COLUMNS = ("operation", "call", "kind", "answer", "conclusion")


def probe(
    ctx: typer.Context,
    device_id: Annotated[str, typer.Argument(metavar="ID", help="serial or MAC, any spelling")],
    timeout: Annotated[float, typer.Option(min=0.1, max=600, help="per-request timeout (s)")] = 5.0,
    credentials: Annotated[
        str | None, typer.Option(help="profile to use if the device names none")
    ] = None,
    ca_bundle: Annotated[str | None, typer.Option(help="verify TLS against this CA file")] = None,
    insecure: Annotated[bool, typer.Option(help="skip TLS verification and pinning")] = False,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.TABLE,
) -> None:
    """Run every read-only call of the device's driver (documented and modeled), apply nothing;
    exit 0 when every call the driver needs answered, 1 otherwise."""
    cli = get_context(ctx)
    if output is OutputFormat.CSV:
        fail("probe prints a table or json, not csv", ExitCode.UNUSABLE_INPUT)
    request = ProbeRequest(
        device_id=device_id,
        timeout=timeout,
        credentials=credentials,
        ca_bundle=ca_bundle,
        insecure=insecure,
    )

    async def go() -> ProbeReport:
        async with cli.store(read_only=True) as store:  # puts [drivers.<name>] values in force
            return await probe_usecase(store, request)

    try:
        report = run(go, network=True)
    except (ProfileNotFound, LookupError, DriverRegistryError) as exc:
        fail(str(exc))
    render(cli, report, output)
    if not report.ok:
        raise typer.Exit(ExitCode.FAILED)


def render(cli: CliContext, report: ProbeReport, output: OutputFormat) -> None:
    """JSON on stdout, or the table of calls and a verdict naming what failed."""
    if output is OutputFormat.JSON:
        emit_json(report.model_dump(mode="json"))
        return
    rows = [
        {
            "operation": c.operation,
            "call": c.call,
            "kind": "MODELED" if c.modeled else "documented",
            "answer": c.answer,
            "conclusion": c.conclusion,
        }
        for c in report.calls
    ]
    title = f"probe {report.serial} at {report.host or '?'} with {report.driver}"
    emit_rows(rows, COLUMNS, output, console=cli.out, title=title)
    if report.settings:
        in_force = ", ".join(f"{k} = {v!r}" for k, v in report.settings.items())
        cli.info(f"modeled parameters in force ([drivers.{report.driver}]): {in_force}")
    if report.ok:
        cli.info(f"{report.serial}: every call {report.driver} needs answered")
        return
    for call in report.failing_calls():
        kind = "modeled" if call.modeled else "documented"
        if call.answered:
            said = f"answered {call.answer!r}"
        else:
            said = f"could not be made: {call.conclusion.removeprefix('FAILED: ')}"
        cli.warn(f"{call.operation}: {call.call} ({kind}) {said}")
    if any(c.modeled and c.answered for c in report.failing_calls()):
        cli.warn(
            "a modeled call failed: polyfleet guessed this interface (no public source"
            f" documents it); set what your devices really answer under [drivers."
            f"{report.driver}] in the config file, or install a driver plugin (README:"
            " Bringing up real hardware)"
        )
