"""Interop peers nobody here wrote (net-snmp snmpd, OpenSSH sshd, nginx), started per module.

A missing binary skips the test on a workstation but fails it in CI (CI=true), so the interop
suite can never pass there by silently not running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "interop"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
POLL_S = 0.05


def require_binary(name: str, *candidates: str) -> str:
    """Path of the binary; skip without it, except in CI where its absence is a failure."""
    for candidate in (name, *candidates):
        found = shutil.which(candidate) or (candidate if os.access(candidate, os.X_OK) else None)
        if found:
            return found
    message = f"{name} is not installed (.ci/run installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; interop tests must run in CI")
    pytest.skip(message)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that was free a moment ago on 127.0.0.1 (the peer binds it right after)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Peer:
    """A started peer process and where its output goes."""

    process: subprocess.Popen[bytes]
    log: Path
    port: int

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def wait_until(ready: Callable[[], bool], peer: Peer, what: str) -> None:
    """Poll `ready` until true; fail with the peer's log if it exits or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if peer.process.poll() is not None:
            pytest.fail(f"{what} exited with {peer.process.returncode}:\n{peer.output()}")
        if ready():
            return
        time.sleep(POLL_S)
    pytest.fail(f"{what} not ready within {START_TIMEOUT_S} s:\n{peer.output()}")


def tcp_ready(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    return check


@contextlib.contextmanager
def run_peer(
    argv: Sequence[str], log: Path, port: int, env: dict[str, str] | None = None
) -> Iterator[Peer]:
    """Start a peer in its own process group and always stop it (TERM, then KILL)."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    peer = Peer(process, log, port)
    try:
        yield peer
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT_S)
