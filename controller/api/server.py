"""Running the API: listen (HTTP or HTTPS), serve until SIGTERM or SIGINT, then drain.

On the signal the listening sockets close first, requests in flight get `shutdown_timeout`
seconds to finish, and only then is the store closed by the caller.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from aiohttp import web
from sqlalchemy.engine import make_url

from controller.api.app import create_app
from controller.api.auth import FailedAuthThrottle
from controller.api.routes.agents import JOB_LEASE
from controller.errors import ControllerError
from controller.job_worker import attach_job_worker, controller_worker
from controller.run_lock import RunLock
from controller.settings import PolyfleetSettings
from inventory.database import DatabaseTarget
from inventory.store import InventoryStore


class ServeError(ControllerError):
    """The server cannot start (address in use, unreadable certificate)."""


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context (TLS 1.2+) from a PEM chain and its key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ServeError(f"cannot load the TLS certificate {cert} / key {key}: {exc}") from exc
    return context


async def serve_api(
    store: InventoryStore,
    settings: PolyfleetSettings,
    *,
    tls: ssl.SSLContext | None = None,
    on_listening: Callable[[list[str]], None] = lambda urls: None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve `create_app(store)` on settings.serve's host and port until SIGTERM/SIGINT (or
    `stop` is set)."""
    options = settings.serve
    throttle = FailedAuthThrottle(limit=options.auth_failures, window=options.auth_window)
    app = create_app(store, settings=settings, throttle=throttle)
    app[JOB_LEASE] = timedelta(seconds=options.job_lease)
    try:  # the controller runs the jobs no agent will (sites without one, re-activations)
        attach_job_worker(app, controller_worker(store, settings))
    except ControllerError as exc:
        raise ServeError(f"cannot run jobs: {exc}") from exc
    runner = web.AppRunner(app, shutdown_timeout=options.shutdown_timeout, handle_signals=False)
    await runner.setup()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        site = web.TCPSite(runner, options.host, options.port, ssl_context=tls)
        try:
            await site.start()
        except OSError as exc:
            raise ServeError(
                f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}"
            ) from exc
        scheme = "https" if tls else "http"
        on_listening([_url(scheme, address) for address in runner.addresses])
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await runner.cleanup()


def _url(scheme: str, address: object) -> str:
    if isinstance(address, tuple):
        host, port = address[0], address[1]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        return f"{scheme}://{shown}:{port}"
    return f"{scheme}://{address}"


def single_instance_lock(target: DatabaseTarget) -> RunLock | None:
    """On SQLite, the lock only one `serve` of a store may hold (a file next to the store, so
    it holds whoever's user runs it); None on PostgreSQL, where several controllers share the
    store."""
    if target.dialect != "sqlite":
        return None
    database = make_url(target.url).database
    if not database or database == ":memory:":
        return None
    path = Path(database)
    return RunLock(path.with_name(path.name + ".serve.lock"), job="`polyfleet serve`")
