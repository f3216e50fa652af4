"""`polyfleet agent run`: a site agent that does the device work next to the devices.

It calls out to the controller(s) over HTTP(S) only, pulls its site's jobs, runs them with the
same use cases and drivers as the CLI, and posts the results. The token may come from
POLYFLEET_AGENT_TOKEN so that it does not show in `ps`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import typer
from platformdirs import user_data_dir

from controller.cli.context import ExitCode, fail, get_context, run
from controller.cli.credentials_cmd import load_profiles_file

app = typer.Typer(help="Run a site agent.", no_args_is_help=True)


def default_spool() -> Path:
    return Path(user_data_dir("polyfleet", appauthor=False)) / "agent-spool.db"


@app.command("run")
def run_agent(
    ctx: typer.Context,
    controller: Annotated[
        list[str],
        typer.Option(
            "--controller", help="controller URL (repeat for each controller; tried in turn)"
        ),
    ],
    token: Annotated[
        str,
        typer.Option(
            envvar="POLYFLEET_AGENT_TOKEN",
            show_envvar=True,
            help="agent token (prefer the environment variable: it stays out of `ps`)",
        ),
    ],
    credentials: Annotated[
        Path | None,
        typer.Option(help="device credential profiles (the TOML `credentials import` reads)"),
    ] = None,
    spool: Annotated[
        Path | None,
        typer.Option(help="SQLite file of undelivered results (and the agent's local state)"),
    ] = None,
    ca_bundle: Annotated[
        Path | None,
        typer.Option(
            help="verify the controller's TLS certificate against this CA file "
            "(default: pin it on first use)"
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="agent name (default: host name)")] = None,
    poll_wait: Annotated[
        int | None, typer.Option(min=1, max=60, help="long-poll wait (s; default: controller's)")
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(min=1, max=64, help="jobs run at once (a re-activation beside a long scan)"),
    ] = 4,
) -> None:
    """Enrol, pull this site's jobs, run them and post the results until SIGTERM/Ctrl-C (the jobs
    in hand are finished first; undelivered results wait in the spool)."""
    from agent.client import AgentRefused, ControllerClient
    from agent.runner import JobRunner
    from agent.service import Agent
    from agent.spool import ResultSpool
    from agent.trust import ControllerTrust
    from inventory.database import resolve_db
    from inventory.store import InventoryStore

    cli = get_context(ctx)
    bad = [u for u in controller if not u.startswith(("http://", "https://"))]
    if bad:
        fail(f"--controller {bad[0]!r} is not an http:// or https:// URL", ExitCode.UNUSABLE_INPUT)
    if not token.strip():
        fail("an agent token is needed (--token or POLYFLEET_AGENT_TOKEN)", ExitCode.UNUSABLE_INPUT)
    if any(u.startswith("http://") for u in controller):
        cli.warn("a controller URL is plain http: the token and results travel unencrypted")
    profiles = {p.name: p for p in load_profiles_file(credentials)} if credentials else {}
    spool_path = (spool or default_spool()).expanduser().resolve()
    if not cli.quiet:
        logging.getLogger("polyfleet.agent").setLevel(logging.INFO)

    async def go() -> None:
        try:
            trust = ControllerTrust(
                ca_bundle=str(ca_bundle) if ca_bundle else None,
                pin_file=spool_path.with_name(spool_path.stem + "-controller-pins.json"),
            )
        except OSError as exc:
            fail(f"cannot load the CA bundle {ca_bundle}: {exc}", ExitCode.UNUSABLE_INPUT)
        local = resolve_db(str(spool_path.with_name(spool_path.stem + "-inventory.db")))
        results = ResultSpool(spool_path)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            async with (
                await InventoryStore.open(
                    local, observation_history=cli.settings.observation_history
                ) as store,
                ControllerClient(controller, token.strip(), trust=trust) as client,
            ):
                agent = Agent(
                    client,
                    JobRunner(store, profiles),
                    results,
                    name=name or socket.gethostname(),
                    version=version("polyfleet"),
                    poll_wait=poll_wait,
                    jobs=jobs,
                )
                await agent.run(stop)
        except AgentRefused as exc:
            fail(str(exc))
        finally:
            left = len(results)
            results.close()
        if left:
            cli.warn(f"{left} result(s) not yet delivered stay in {spool_path}")
        cli.info("agent stopped")

    run(go, network=True)
