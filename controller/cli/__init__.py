"""The `polyfleet` command line (typer): the only place that calls asyncio.run."""

from __future__ import annotations

import sys


def version_line() -> str:
    """What `polyfleet --version` prints: the installed distribution's version."""
    from importlib.metadata import version

    return f"polyfleet {version('polyfleet')}"


def main() -> None:
    """Console-script entry point: `polyfleet --version` alone is answered here, anything else
    goes to `controller.cli.app.main`.

    Resolving an eager flag before the command line is built is common practice: packaging
    checks, wrappers and monitoring ask for the version, and importing typer and building the
    root command would add about half again to it (issue 11: <= 150 ms; bench/startup_bench.py).
    Any other argument list, `--version` among other options included, is parsed by click as
    before.
    """
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(version_line() + "\n")
        return
    from controller.cli.app import main as run_app

    run_app()
