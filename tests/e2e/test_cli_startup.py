"""What `polyfleet health`, `quote` and `scan` import on a SQLite store (issue 11, items 6, 9).

Each of these costs a cron run or a user's command 4-40 ms of start-up before it does anything,
and none of them is needed there: the PostgreSQL dialect and asyncpg (the store is SQLite), the
ORM, rich (the output goes to a pipe), uvloop (no device is contacted), alembic (the store is
current), the device transports. A module-level import added on this path shows up here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.cli import polyfleet

NOT_ON_THE_PATH = (
    "aiohttp",
    "alembic",
    "asyncpg",
    "asyncssh",
    "cryptography",
    "pysnmp",
    "rich",
    "sqlalchemy.dialects.postgresql",
    "sqlalchemy.orm",
    "uvloop",
)
INVENTORY = "serial,mac,model,site\n0004F2AABB01,00:04:f2:aa:bb:01,VVX 450,hq-berlin\n"
CONTRACTS = (
    "number,kind,serial,start,end\nC-1,extended-reactivation,0004F2AABB01,2026-01-01,2026-12-31\n"
)
EXIT = (
    "import atexit, sys\n"
    "out = sys.argv.pop(1)\n"
    "atexit.register(lambda: open(out, 'w').write('\\n'.join(sys.modules)))\n"
    "from controller.cli import main\n"
    "sys.argv[0] = 'polyfleet'\n"
    "sys.exit(main())\n"
)


@pytest.fixture
def sqlite_fleet(tmp_path: Path) -> str:
    db = f"sqlite:///{tmp_path / 'fleet.db'}"
    for kind, text in (("inventory", INVENTORY), ("contracts", CONTRACTS)):
        path = tmp_path / f"{kind}.csv"
        path.write_text(text, encoding="utf-8")
        assert polyfleet(db, kind, "import", str(path)).code == 0
    return db


@pytest.mark.parametrize(
    "args", [("health",), ("quote", "0004F2AABB01", "--on", "2026-11-25")], ids=["health", "quote"]
)
def test_a_store_command_imports_only_what_it_uses(
    sqlite_fleet: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    done, imported = _run(sqlite_fleet, tmp_path, args)
    assert done.returncode in (0, 3), done.stderr  # health: UNKNOWN, the device never scanned
    assert "0004F2AABB01" in done.stdout
    unwanted = sorted(
        {
            heavy
            for name in imported
            for heavy in NOT_ON_THE_PATH
            if name == heavy or name.startswith(heavy + ".")
        }
    )
    assert unwanted == []


def test_a_scan_to_a_pipe_draws_no_progress_bar_and_imports_none(
    sqlite_fleet: str, tmp_path: Path
) -> None:
    """A scan from cron or into a pipe has no bar to draw, so rich's progress module (and what
    it alone pulls in) stays unloaded: start-up every scan paid for (bench/RESULTS.md, Scan)."""
    done, imported = _run(sqlite_fleet, tmp_path, ("scan", "-o", "json"))
    assert done.returncode == 0, done.stderr  # the one device has no address: skipped
    assert '"serial": "0004F2AABB01"' in done.stdout
    assert "rich.progress" not in imported


def _run(
    db: str, tmp_path: Path, args: tuple[str, ...]
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`polyfleet --db DB ARGS` with stdout and stderr to pipes; its result and every module
    it had imported at exit."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("TTY_COMPATIBLE", "FORCE_COLOR", "POLYFLEET_CONFIG")
    }
    env |= {"XDG_DATA_HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    modules = tmp_path / "modules.txt"
    done = subprocess.run(
        [sys.executable, "-c", EXIT, str(modules), "--db", db, *args],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    return done, set(modules.read_text().splitlines())
