"""Start-up benchmark (issue 11, item 6): whole `polyfleet` processes as cron and users run them.

Three commands, each the median of N runs of the `polyfleet` console script (run as pip's
script runs it, with the tree's own entry point), process start included: `--version`, `health`
on a 1,000-device SQLite store (built through the store APIs, as bench/health_bench.py builds
its store) and `quote ID` on that store with a contract imported by `polyfleet contracts
import`, so the quote evaluates every rule. A bare `python -c pass` in the same run is the floor.

The machine is shared, so the code before the change (`--baseline REV`, default: the merge base
with `main`) is measured in the same run, the two interleaved run by run: it is extracted with
`git archive` and put first on PYTHONPATH, ahead of the editable install's finder. Each
command's top import costs (`python -X importtime`, self time summed per top-level package,
medians of 5 runs) are listed for both. Results go to bench/RESULTS.md.

    .venv/bin/python bench/startup_bench.py [--runs 11] [--baseline REV | --baseline ''] [--out F]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from health_bench import build_store  # bench/ is sys.path[0] when run
from inventory_bench import machine, replace_section

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("inventory", "device_drivers", "controller", "agent", "simulator", "pyproject.toml")
DEVICES = 1_000
QUOTED = "HB00000226"  # a Group Series whose base license has expired (see build_store)
CONTRACT = (
    f"number,kind,serial,start,end\nC-BENCH,extended-reactivation,{QUOTED},2026-01-01,2027-12-31\n"
)
NOTES = """\
Earlier steps (branch `startup`, merged): lazy imports in `controller/cli/context.py`,
`--version` answered before typer builds the command line, public holidays from a cache file,
`quote` without the contract import stack, `defer_build` on the inventory models
(`health` 836 -> 641 ms, `quote` 918 -> 584 ms at 16:10, load 0.7-1.3). The floor includes the
editable install's meta-path finder, loaded by `site` (about 24 ms of a bare `python -c pass`,
nothing measurable of a command, which imports what it imports anyway).

What changed in this step (issue 11, item 6; branch `startup2`, the "after" column):
- `sqlalchemy.ext.asyncio` without the ORM. Its package `__init__` imports `AsyncSession` and
  with it all of `sqlalchemy.orm` (68-87 ms of CPU here, measured as the extra cost of importing
  `sqlalchemy.ext.asyncio.session` after everything else), though polyfleet uses only the Core
  engine. `inventory/async_engine.py` registers the package without running its `__init__`,
  imports its engine and result modules, and runs the real `__init__` the first time anything
  asks for another name (`AsyncSession` still works in the same process; a test holds both).
  ruff's TID251 makes every other module import `AsyncEngine` and `AsyncConnection` from it.
- `health` imports no rich. Its renderers moved to `controller/health_render.py`; to a file or
  a pipe the text report is written by `render_text` (the same bytes rich wrote: `cmp` of both
  on this store; styled `Text` only for a terminal, as rich decides it, `TTY_COMPATIBLE` and
  `FORCE_COLOR` included), and the CLI's consoles are built when first printed to.
- `health` without a policy file does not import the policy module: the built-in default
  declares no `[licensing] no_licensed_features` (a test holds the default to that).
- Smaller: settings import the driver parameter module only when `[drivers]` sections exist;
  `idna` only for a non-ASCII host name; `quote -o json` (and output.py) import rich only when
  a table is built.

Second round (session 5, branch `startup2`; figures in the dated block below the table):
- SQLite commands import neither the PostgreSQL dialect nor asyncpg. The partial indexes'
  `postgresql_where=`/`sqlite_where=` made SQLAlchemy import both dialect packages when
  `inventory.schema` was imported (20-37 ms): they are declared in `inventory/partial_indexes.py`,
  whose `metadata` the migration environment, the grants and the migration test use (TID251).
  asyncpg (12-17 ms) and the ARRAY type are imported where PostgreSQL is in use.
- `quote` to a pipe without rich: `controller/cli/plain_table.py` writes rich's bytes for a table
  of single-line ASCII cells that fits (tests compare both on generated tables), else rich draws.
- uvloop (4-5 ms) only for commands that talk to devices or serve HTTP (`run(..., network=True)`).
- the holidays release (the cache key, read from package metadata) read once per process.
Tried and dropped, no gain in instructions: `defer_build` on the policy and quote models (+25M
instructions), the default policy read without `importlib.resources` (within noise).

Checked and left as they were: alembic is imported only when a migration is due (a current
store costs one `has_table` and one `SELECT version_num`, about 2 ms); neither `health` nor
`quote` imports alembic, cryptography, aiohttp, asyncssh, pysnmp, holidays or the ORM (their
`sys.modules` at exit). typer (0.29) validates each parameter through a pydantic TypeAdapter:
building them is 0.1 ms each, and pydantic itself is needed by the settings and models anyway.
`defer_build` on the policy's models: no change (the policy is validated on every quote; 16.7
against 17.4 ms for import and load). pydantic's plugin look-up (`PYDANTIC_DISABLE_PLUGINS`):
its entry-point scan is 5 ms, but the import of `importlib.metadata` (10 ms, with email and
zipfile) comes with the loader module either way. pydantic-settings, kept (issue 12 asks for
it): importing it costs 12-15 ms of import self time (its sources import every provider: the
CLI one with argparse, dotenv, the cloud secret stores), the settings class 2.6 ms, reading
the settings 1.1 ms (medians of 9, in-process).

What bounds `health` and `quote` at 400 ms on this machine: the libraries every store command
needs. Marginal CPU of each step, each a process importing the steps before it (gc off, as
`main()` has it), minimum and median of 15 at 18:06, load 4.7: interpreter and site 21-22 ms;
typer and the root command 39-44 ms; pydantic, which typer's parameter adapters import first,
61-63 ms; asyncio 19 ms; SQLAlchemy core 121-143 ms; its asyncio engine without the ORM 2-9 ms;
pydantic-settings and the settings module 24-29 ms; `health`'s own modules 26-32 ms;
rich for `quote`'s table 26-32 ms. That is 290-325 ms of CPU before any polyfleet work, about
310-350 ms with it: the targets are met in CPU with 44-65 ms to spare (the table above), and
in wall time only while the two cores are not also busy with other work. The same code at
18:16, load 3.5-4.2 while other test suites ran: `health` 736 ms wall for 355 ms CPU, `quote`
867 ms for 398 ms, the floor 50 ms for 23 ms (before: 727/429 and 981/429 ms). Going further
would mean a command line without typer and pydantic, or store reads without SQLAlchemy,
neither of which this issue asks for.
"""

TARGETS = {"--version": 0.150, "health": 0.400, "quote": 0.400}
TOP = 8
IMPORT_RUNS = 5


def extract(rev: str, into: Path) -> None:
    """The packages of `rev` under `into` (no git worktree: nothing of the repository changes)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, *PACKAGES],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def polyfleet(tree: Path) -> list[str]:
    """The `polyfleet` console script of `tree` (its own entry point, from its pyproject.toml),
    run as pip's generated script runs it."""
    entry = tomllib.loads((tree / "pyproject.toml").read_text())["project"]["scripts"]["polyfleet"]
    module, function = entry.split(":")
    code = f"import sys; from {module} import {function}; sys.argv[0] = 'polyfleet'; "
    return [sys.executable, "-c", code + f"sys.exit({function}())"]


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU (user + sys) seconds of one whole process; it must exit 0-4."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1, 2, 3, 4):
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {err.decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def import_costs(
    argv: list[str], env: dict[str, str], cwd: Path, runs: int = IMPORT_RUNS
) -> tuple[float, list[tuple[str, float]]]:
    """Total import time (ms) of `argv` and its top packages by self time, each the median of
    `runs` runs (one run alone moves by tens of ms on a shared machine)."""
    totals: list[float] = []
    per_run: list[dict[str, float]] = []
    for _ in range(runs):
        result = subprocess.run(
            [argv[0], "-X", "importtime", *argv[1:]],
            env=env,
            cwd=cwd,
            capture_output=True,
            check=False,
        )
        per_package: dict[str, float] = defaultdict(float)
        for line in result.stderr.decode().splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            _, self_us, _, name = (part.strip() for part in line.replace(":", "|", 1).split("|"))
            per_package[name.split(".")[0]] += int(self_us) / 1000
        per_run.append(per_package)
        totals.append(sum(per_package.values()))
    packages = {name for run in per_run for name in run}
    medians = {name: statistics.median(run.get(name, 0.0) for run in per_run) for name in packages}
    ranked = sorted(medians.items(), key=lambda item: -item[1])
    return statistics.median(totals), ranked[:TOP]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--baseline", default="", help="git revision to compare with")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args()
    baseline = (
        args.baseline
        or subprocess.run(
            ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="polyfleet-startup-bench-") as tmp_name:
        tmp = Path(tmp_name)
        db = str(tmp / "fleet.db")
        asyncio.run(build_store(db, DEVICES, datetime.now(UTC)))
        base_tree = tmp / "baseline"
        extract(baseline, base_tree)
        common = {
            **os.environ,
            "NO_COLOR": "1",
            "POLYFLEET_DB": db,
            "XDG_DATA_HOME": str(tmp),
            "POLYFLEET_LOG_DIR": str(tmp / "logs"),
            # A bytecode cache, as an installed package has (the warm-up runs fill it); with
            # PYTHONDONTWRITEBYTECODE=1 an editable install compiles our modules every run.
            "PYTHONPYCACHEPREFIX": str(tmp / "pycache"),
            # The holiday cache (controller.holiday_data), which the warm-up runs fill too, as
            # a user's first quote does.
            "XDG_CACHE_HOME": str(tmp / "cache"),
        }
        common.pop("PYTHONDONTWRITEBYTECODE", None)
        trees = {"before": base_tree, "after": ROOT}
        envs = {label: {**common, "PYTHONPATH": str(tree)} for label, tree in trees.items()}
        contracts = tmp / "contracts.csv"
        contracts.write_text(CONTRACT, encoding="utf-8")
        entries = {label: polyfleet(tree) for label, tree in trees.items()}
        for label, tree in trees.items():  # each side runs its own code, nothing shadows it
            where = subprocess.run(
                [sys.executable, "-c", "import controller.cli; print(controller.cli.__file__)"],
                env=envs[label],
                cwd=tmp,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            assert Path(where).is_relative_to(tree), (label, where)
        subprocess.run(
            [*entries["after"], "contracts", "import", str(contracts)],
            env=envs["after"],
            cwd=tmp,
            check=True,
        )
        commands = {"--version": ["--version"], "health": ["health"], "quote": ["quote", QUOTED]}
        # Run in the scratch directory: `python -c` puts the working directory first on
        # sys.path, where this repository's packages would shadow the baseline's.
        floor_argv = [sys.executable, "-c", "pass"]
        walls: dict[tuple[str, str], list[float]] = defaultdict(list)
        cpus: dict[tuple[str, str], list[float]] = defaultdict(list)
        for label in trees:  # warm-up: bytecode of the extracted tree is written here
            for cmd_args in commands.values():
                timed([*entries[label], *cmd_args], envs[label], tmp)
        for _ in range(args.runs):  # interleaved, so load changes hit both alike
            wall, cpu = timed(floor_argv, common, tmp)
            walls["floor", ""].append(wall)
            cpus["floor", ""].append(cpu)
            for name, cmd_args in commands.items():
                for label in trees:
                    wall, cpu = timed([*entries[label], *cmd_args], envs[label], tmp)
                    walls[name, label].append(wall)
                    cpus[name, label].append(cpu)
        costs = {
            (name, label): import_costs([*entries[label], *cmd_args], envs[label], tmp)
            for name, cmd_args in commands.items()
            for label in trees
        }
    load_after = os.getloadavg()[0]

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.0f} ms"

    floor = ms(walls["floor", ""])
    rows = []
    for name, cmd_args in commands.items():
        after = statistics.median(walls[name, "after"])
        after_cpu = statistics.median(cpus[name, "after"])
        verdict = "met" if after <= TARGETS[name] else "NOT met"
        verdict += " (CPU: met)" if after_cpu <= TARGETS[name] else " (CPU: NOT met)"
        shown = " ".join(["polyfleet", *cmd_args])
        rows.append(
            f"| `{shown}` | {ms(walls[name, 'before'])} | {ms(cpus[name, 'before'])} "
            f"| **{ms(walls[name, 'after'])}** | {ms(cpus[name, 'after'])} "
            f"| <= {TARGETS[name] * 1000:.0f} ms {verdict} |"
        )
    cost_rows = []
    for name in commands:
        cells = []
        for label in trees:
            total, top = costs[name, label]
            listed = ", ".join(f"{pkg} {value:.0f}" for pkg, value in top)
            cells.append(f"{total:.0f} ms: {listed}")
        cost_rows.append(f"| `{name}` | {cells[0]} | {cells[1]} |")
    samples = "; ".join(
        f"{name} {label} {[round(v * 1000) for v in walls[name, label]]}"
        for name in commands
        for label in trees
    )
    section = "\n".join(
        [
            "## Start-up (issue 11): `bench/startup_bench.py`",
            "",
            f"Machine: {machine()}. Measured {time.strftime('%Y-%m-%d %H:%M')}, load average "
            f"{load_before:.1f} at the start and {load_after:.1f} at the end (2 shared cores: "
            "compare with the floor and with CPU).",
            f"Medians of {args.runs} whole processes of the console script `polyfleet`, before "
            f"({baseline[:7]}) and after ({head}) interleaved in the same run. Floor, "
            f"`python -c pass` in the same venv: {floor} "
            f"(CPU {ms(cpus['floor', ''])}). Store: SQLite, {DEVICES:,} devices with one scan "
            f"(bench/health_bench.py's `build_store`); the quoted device {QUOTED} has a contract.",
            "",
            "| command | before wall | before CPU | after wall | after CPU | target |",
            "|---|---:|---:|---:|---:|---|",
            *rows,
            "",
            NOTES,
            "Where the start-up goes, `python -X importtime`, medians of "
            f"{IMPORT_RUNS} runs: total import time, then the top {TOP} top-level packages by "
            "their modules' self time (ms).",
            "",
            "| command | before | after |",
            "|---|---|---|",
            *cost_rows,
            "",
            f"Samples, wall (ms): floor {[round(v * 1000) for v in walls['floor', '']]}; {samples}",
            "",
        ]
    )
    replace_section(args.out, "## Start-up (issue 11)", section, after="## Health (issue 5)")
    print(section)


if __name__ == "__main__":
    main()
