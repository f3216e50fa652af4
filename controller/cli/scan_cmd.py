"""`polyfleet scan`: read identity and license state of inventory devices and record it."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from controller.cli.context import CliContext, ExitCode, OutputFormat, fail, get_context, run
from controller.cli.output import emit_json, emit_rows
from controller.scan import ScanOptions, ScanResult
from controller.usecases.scan import ScanRequest, run_scan, summarize
from device_drivers.context import Timeouts
from inventory.catalog import family_for_model, unknown_model_warning
from inventory.credential_store import ProfileNotFound

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

RESULT_COLUMNS = (
    "serial", "host", "site", "driver", "reachable", "firmware", "licenses", "license_read",
    "error",
)  # fmt: skip


class _Ticker:
    """Advances a progress bar; `set_total` for a count known only once devices are chosen."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress, self._task = progress, task

    def set_total(self, total: int) -> None:
        self._progress.update(self._task, total=total)

    def __call__(self, *_: object) -> None:
        self._progress.advance(self._task)


@contextmanager
def progress_bar(cli: CliContext, total: int | None = None) -> Iterator[_Ticker | None]:
    """A rich progress bar on a terminal; nothing at all when stderr is not a TTY (cron)."""
    if cli.quiet or not sys.stderr.isatty():
        yield None
        return
    # Imported here: a scan from cron or a pipe draws no bar and need not load rich (issue 11).
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=cli.err,
        transient=True,
    ) as progress:
        yield _Ticker(progress, progress.add_task("scan", total=total))


def scan(
    ctx: typer.Context,
    site: Annotated[str | None, typer.Option(help="only devices of this site")] = None,
    device_ids: Annotated[
        list[str] | None, typer.Option("--id", help="serial or MAC; repeatable")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=4096)] = 256,
    per_site: Annotated[int, typer.Option(min=1, max=4096, help="cap per site")] = 64,
    timeout: Annotated[float, typer.Option(min=0.1, max=600, help="per-request timeout (s)")] = 2.0,
    budget: Annotated[
        float, typer.Option(min=1, max=3600, help="time budget per device (s)")
    ] = 30.0,
    credentials: Annotated[
        str | None, typer.Option(help="profile for devices that name none")
    ] = None,
    ca_bundle: Annotated[str | None, typer.Option(help="verify TLS against this CA file")] = None,
    insecure: Annotated[bool, typer.Option(help="skip TLS verification and pinning")] = False,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.TABLE,
) -> None:
    """Read identity and license state of inventory devices; exit 1 if any failed."""
    cli = get_context(ctx)
    if insecure:
        cli.warn("--insecure: TLS certificates are neither verified nor pinned")
    options = ScanOptions(
        concurrency=concurrency,
        per_site=per_site,
        device_budget=budget,
        timeouts=Timeouts(snmp=timeout, http=timeout, ssh=max(timeout, 5.0)),
        ca_bundle=ca_bundle,
        insecure=insecure,
    )

    request = ScanRequest(site=site, ids=device_ids, credentials=credentials, options=options)

    async def go() -> list[ScanResult]:
        async with cli.store() as store:
            with progress_bar(cli) as ticker:
                return await run_scan(
                    store,
                    request,
                    on_selected=ticker.set_total if ticker else None,
                    on_result=ticker,
                )

    try:
        results = run(go, network=True)
    except ProfileNotFound as exc:
        fail(str(exc))
    report(cli, results, output)
    if any(r.failed for r in results):
        raise typer.Exit(ExitCode.FAILED)


def license_read_text(result: ScanResult) -> str | None:
    """`read` / `NOT READ: <call> (modeled) -> <detail>` for tables and CSV."""
    read = result.license_read
    if read is None:
        return None
    if read.ok:
        return "read"
    modeled = " (modeled)" if read.modeled else ""
    return f"NOT READ: {read.call}{modeled} -> {read.detail}"


def report(cli: CliContext, results: Sequence[ScanResult], output: OutputFormat) -> None:
    """JSON/CSV of every result on stdout; on a terminal a summary and the failures."""
    if output is OutputFormat.JSON:
        emit_json([r.model_dump(mode="json") for r in results])
    else:
        rows = []
        for r in results:
            record = r.model_dump(mode="json")
            record["licenses"] = [f"{x['feature']}={x['state']}" for x in record["licenses"]]
            record["license_read"] = license_read_text(r)
            rows.append(record)
        if output is OutputFormat.CSV:
            emit_rows(rows, RESULT_COLUMNS, output, console=cli.out)
        else:
            shown = [row for row, r in zip(rows, results, strict=True) if r.failed]
            if shown:
                emit_rows(shown, RESULT_COLUMNS, output, console=cli.out, title="not OK")
    counts = summarize(results)
    parts = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    cli.info(f"scanned {len(results)} device(s): {parts or 'nothing to scan'}")
    unknown = sorted(
        {m for r in results if r.facts and (m := r.facts.model) and family_for_model(m) is None}
    )
    for model in unknown:
        cli.warn(unknown_model_warning(model))
    unread = counts.get("license_unread", 0)
    if unread:
        cli.warn(
            f"{unread} device(s) answered but their license state could not be read (see"
            " license_read); `polyfleet probe ID` shows every call and what came back"
        )
