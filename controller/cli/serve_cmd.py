"""`polyfleet serve`: the controller's HTTP API (see controller.api) until SIGTERM or Ctrl-C.

Options override the config file's `[serve]` section and `POLYFLEET_SERVE__*` variables. On a
SQLite store only one `serve` may run (a second one is refused, naming the first); several
controllers share a PostgreSQL store.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from controller.cli.context import ExitCode, fail, get_context, run


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="address to listen on [default: 127.0.0.1]")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port (0: any free one) [default: 8080]")] = None,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="PEM certificate chain: serve HTTPS")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="its PEM private key")] = None,
    log_format: Annotated[
        LogFormat | None, typer.Option("--log-format", help="text or json lines [default: text]")
    ] = None,
) -> None:
    """Serve the REST API (/api/v1), /healthz, /readyz and /metrics."""
    from controller.api.server import ServeError, serve_api, single_instance_lock, tls_context
    from controller.run_lock import LockHeld, LockUnavailable
    from inventory.database import resolve_db
    from inventory.store import InventoryStore

    cli = get_context(ctx)
    overrides: dict[str, Any] = {
        name: value
        for name, value in (
            ("host", host), ("port", port), ("tls_cert", tls_cert), ("tls_key", tls_key),
            ("log_format", log_format.value if log_format else None),
        )
        if value is not None
    }  # fmt: skip
    if port is not None and not 0 <= port <= 65535:
        fail(f"--port {port} is not a port (0-65535)", ExitCode.UNUSABLE_INPUT)
    settings = cli.settings
    settings = settings.model_copy(update={"serve": settings.serve.model_copy(update=overrides)})
    options = settings.serve
    if (options.tls_cert is None) != (options.tls_key is None):
        fail("--tls-cert and --tls-key go together", ExitCode.UNUSABLE_INPUT)
    if options.log_format == "json":
        from controller.json_logs import use_json_logs

        use_json_logs()
    try:
        tls = (
            tls_context(options.tls_cert, options.tls_key)
            if options.tls_cert and options.tls_key
            else None
        )
    except ServeError as exc:
        fail(str(exc), ExitCode.UNUSABLE_INPUT)
    target = resolve_db(cli.db_url())
    lock = single_instance_lock(target)
    if lock is not None:
        try:
            lock.acquire()
        except LockHeld as exc:
            holder = f" ({exc.holder})" if exc.holder else ""
            fail(
                f"another `polyfleet serve`{holder} already serves the SQLite store "
                f"{target.url.partition(':///')[2]}: on SQLite only one controller may run "
                "(stop it, or move the store to PostgreSQL to run several)"
            )
        except LockUnavailable as exc:
            fail(str(exc))

    def listening(urls: list[str]) -> None:
        for url in urls:
            cli.info(f"polyfleet serve: listening on {url} (API at {url}/api/v1)")

    async def main() -> None:
        store = await InventoryStore.open(target, observation_history=settings.observation_history)
        try:
            await serve_api(store, settings, tls=tls, on_listening=listening)
        finally:
            await store.close()

    try:
        run(main, network=True)
    except ServeError as exc:
        fail(str(exc))
    finally:
        if lock is not None:
            lock.release()
    cli.info("polyfleet serve: stopped")
