"""`polyfleet serve` as a process: it listens, answers, refuses a second instance on one SQLite
store, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import pg_url

POLYFLEET = str(Path(sys.executable).with_name("polyfleet"))
START_TIMEOUT = 60.0  # a bound for a loaded CI machine, not a performance claim


class Server:
    def __init__(self, db: str, *args: str, verbose: bool = False) -> None:
        self.process = subprocess.Popen(
            [POLYFLEET, *(["-v"] if verbose else []), "--db", db, "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.url = self._wait_listening()

    def _wait_listening(self) -> str:
        assert self.process.stderr is not None
        os.set_blocking(self.process.stderr.fileno(), True)
        seen = []
        for line in self.process.stderr:  # ends when the process does
            if "listening on" in line:
                return line.split("listening on ", 1)[1].split()[0]
            seen.append(line)
        self.process.wait(timeout=START_TIMEOUT)
        pytest.fail(f"serve did not start: {''.join(seen)}")

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        _, err = self.process.communicate(timeout=START_TIMEOUT)
        return self.process.returncode, err


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.communicate()


async def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.text()


def test_serve_answers_refuses_a_second_one_on_sqlite_and_stops_on_sigterm(
    tmp_path: Path, servers: list[Server]
) -> None:
    db = str(tmp_path / "polyfleet.db")
    first = Server(db)
    servers.append(first)
    assert asyncio.run(_get(f"{first.url}/readyz")) == (200, '{"status":"ok"}')
    status, _ = asyncio.run(_get(f"{first.url}/api/v1/devices"))
    assert status == 401

    second = subprocess.run(
        [POLYFLEET, "--db", db, "serve", "--port", "0"],
        capture_output=True, text=True, timeout=START_TIMEOUT, check=False,
    )  # fmt: skip
    assert second.returncode == 1
    assert "another `polyfleet serve`" in second.stderr
    assert f"pid {first.process.pid}" in second.stderr
    assert "only one controller" in second.stderr
    assert "Traceback" not in second.stderr

    code, err = first.stop()
    assert code == 0, err
    assert "stopped" in err
    # the lock went with the process: a new serve starts
    servers.append(Server(db))


@pytest.mark.postgres
def test_two_serves_share_a_postgresql_store(pg_schema: str, servers: list[Server]) -> None:
    db = f"{pg_url()}?schema={pg_schema}"
    servers.append(Server(db))
    servers.append(Server(db))
    for server in servers:
        assert asyncio.run(_get(f"{server.url}/readyz"))[0] == 200
    for server in servers:
        assert server.stop()[0] == 0


def test_json_logs_show_requests_and_never_the_token(tmp_path: Path, servers: list[Server]) -> None:
    server = Server(str(tmp_path / "polyfleet.db"), "--log-format", "json", verbose=True)
    servers.append(server)
    token = "pfk_0123456789ab_" + "S" * 43
    status, _ = asyncio.run(_get(f"{server.url}/api/v1/me", {"Authorization": f"Bearer {token}"}))
    assert status == 401
    code, err = server.stop()
    assert code == 0
    entries = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(e["logger"] == "aiohttp.access" and "/api/v1/me" in e["message"] for e in entries), (
        err
    )
    assert "S" * 43 not in err
