"""`polyfleet scan`: read identity and license state of inventory devices and record it."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from controller.cli.context import CliContext, ExitCode, OutputFormat, fail, get_context, run
from controller.cli.output import emit_json, emit_rows
from controller.device_session import open_transports
from controller.scan import ScanEngine, ScanOptions, ScanResult
from controller.scan_recorder import ScanRecorder
from device_drivers.context import Timeouts
from device_drivers.registry import DriverRegistry
from inventory.catalog import family_for_model, unknown_model_warning
from inventory.credential_store import CredentialStore, ProfileNotFound
from inventory.models import CredentialProfile, Device
from inventory.observation_store import ObservationStore
from inventory.secret_box import SecretBox
from inventory.store import InventoryStore

SKIPPED_KINDS = frozenset({"not_supported"})
RESULT_COLUMNS = (
    "serial", "host", "site", "driver", "reachable", "firmware", "licenses", "license_read",
    "error",
)  # fmt: skip


@contextmanager
def progress_bar(cli: CliContext, total: int) -> Iterator[Any]:
    """A rich progress bar on a terminal; nothing at all when stderr is not a TTY (cron)."""
    if cli.quiet or not sys.stderr.isatty():
        yield None
        return
    with Progress(
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=cli.err,
        transient=True,
    ) as progress:
        task = progress.add_task("scan", total=total)
        yield lambda: progress.advance(task)


async def select_devices(
    store: InventoryStore, site: str | None, ids: Sequence[str] | None
) -> list[Device]:
    """Devices by --id (any spelling, each must exist) or by --site, else the whole inventory."""
    if ids:
        chosen = [await store.get_device(device_id) for device_id in ids]
        return [d for d in chosen if site is None or d.site == site]
    return await store.list_devices(site=site)


async def load_profiles(
    creds: CredentialStore, devices: Sequence[Device], default: str | None
) -> dict[str, CredentialProfile]:
    """Every credential profile the devices (or --credentials) name, decrypted once."""
    names = {d.credentials for d in devices if d.credentials}
    if default:
        names.add(default)
    profiles = {}
    for name in sorted(names):
        try:
            profiles[name] = await creds.get(name)
        except ProfileNotFound:
            if name == default:
                raise
    return profiles


async def run_scan(
    cli: CliContext,
    *,
    site: str | None,
    ids: Sequence[str] | None,
    options: ScanOptions,
    credentials: str | None,
    progress: bool = False,
) -> list[ScanResult]:
    """Select, scan and record; shared by `scan` and `health --scan`."""
    async with cli.store() as store:
        devices = await select_devices(store, site, ids)
        with progress_bar(cli, len(devices)) if progress else nullcontext() as advance:
            return await _scan_selected(cli, store, devices, options, credentials, advance)


async def _scan_selected(
    cli: CliContext,
    store: InventoryStore,
    devices: Sequence[Device],
    options: ScanOptions,
    credentials: str | None,
    advance: Any,
) -> list[ScanResult]:
    """Scan already selected devices, recording results and pins as they arrive."""
    creds = CredentialStore(store.engine, SecretBox.from_environment())
    profiles = await load_profiles(creds, devices, credentials)
    observations = ObservationStore(store.engine)
    transports = open_transports(options.concurrency)
    try:
        async with ScanRecorder(
            observations,
            pin_writer=store.pin_first_use_many,
            pending_writer=store.set_pending_pin,
        ) as recorder:
            engine = ScanEngine(
                DriverRegistry(),
                transports,
                profiles,
                options=options,
                default_credentials=credentials,
                pin_store=recorder.pin,  # batched with the results, not a commit per pin
                on_trust_mismatch=recorder.pending_pin,
            )

            async def on_result(result: ScanResult) -> None:
                await recorder.add(result)
                if advance is not None:
                    advance()

            return await engine.scan(devices, on_result)
    finally:
        await transports.close()


def outcome(result: ScanResult) -> str:
    """`ok`, `license_unread` (reached, license state not read), `skipped` or the error kind."""
    if result.ok:
        return "license_unread" if result.license_unread else "ok"
    return "skipped" if result.error_kind in SKIPPED_KINDS else result.error_kind or "error"


def not_ok(result: ScanResult) -> bool:
    """Failed, or reached without its license state read: either makes `scan` exit 1."""
    return outcome(result) not in ("ok", "skipped")


def summarize(results: Sequence[ScanResult]) -> dict[str, int]:
    return dict(sorted(Counter(outcome(r) for r in results).items()))


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

    async def go() -> list[ScanResult]:
        return await run_scan(
            cli,
            site=site,
            ids=device_ids,
            options=options,
            credentials=credentials,
            progress=True,
        )

    try:
        results = run(go)
    except ProfileNotFound as exc:
        fail(str(exc))
    report(cli, results, output)
    if any(not_ok(r) for r in results):
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
        emit_json([r.to_json() for r in results])
    else:
        rows = []
        for r in results:
            record = r.to_json()
            record["licenses"] = [f"{x['feature']}={x['state']}" for x in record["licenses"]]
            record["license_read"] = license_read_text(r)
            rows.append(record)
        if output is OutputFormat.CSV:
            emit_rows(rows, RESULT_COLUMNS, output, console=cli.out)
        else:
            shown = [row for row, r in zip(rows, results, strict=True) if not_ok(r)]
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
