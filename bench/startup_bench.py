"""Start-up benchmark (issue 11, item 6): whole `polyfleet` processes as cron and users run them.

Three commands, each the median of N runs of the `polyfleet` console script (run as pip's
script runs it, with the tree's own entry point), process start included: `--version`, `health`
on a 1,000-device SQLite store (built through the store APIs, as bench/health_bench.py builds
its store) and `quote ID` on that store with a contract imported by `polyfleet contracts
import`, so the quote evaluates every rule. A bare `python -c pass` in the same run is the floor.

The machine is shared, so the code before the change (`--baseline REV`, default: the merge base
with `main`) is measured in the same run, the two interleaved run by run: it is extracted with
`git archive` and put first on PYTHONPATH, ahead of the editable install's finder. Each
command's top import costs (`python -X importtime`, self time summed per top-level package) are
listed for both. Results go to bench/RESULTS.md.

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
What changed (issue 11, item 6), in two steps. First (059487e): `controller/cli/context.py`,
imported by the root command, imports settings, the store (SQLAlchemy), rich and asyncio where
they are first used, so a command pays only for what it uses; `polyfleet --version` on its own
is answered by the console-script entry point (`controller.cli:main`) before typer builds the
command line (any other argument list, `--version` among other options included, goes to click
as before); its run at 12:45, load 3-5, against 8e2a1f7: `--version` 824 -> 102 ms,
`health` 1106 -> 1056 ms, `quote` 1084 -> 1021 ms. Then (branch `startup`, the "after" column):
- Public holidays come from a cache (`controller/holiday_data.py`): one JSON file per country
  or subdivision and year, and the list of supported countries, in the user cache directory
  (`~/.cache/polyfleet/holidays-<release>/`, one directory per `holidays` release). `holidays`
  builds any calendar only after importing `holidays.countries`, whose package imports every
  country (150 ms, plus 60 ms for the library): the SLA of a quote and the policy's country
  check now read two small files (2 ms); the first run after a `holidays` upgrade pays the import
  once. `health` no longer imports `holidays` at all.
- Settings read the `POLYFLEET_*` variables themselves (`controller/settings.py`) instead of
  through pydantic-settings (its import and sources were about 0.1 s of every command).
- `quote` no longer imports `contracts_cmd`, and with it the import stack (importer, contract
  files, key store, cryptography), for its `--on` date parser (now in `context.py`).
- Inventory models build their validators when first used (`defer_build`), so a command builds
  only the models it validates.

Where the rest goes (CPU, in-process import steps in order, medians of 9 processes, measured
2026-12-06 14:24 at load 2.7, holiday cache filled): interpreter and site 25 ms; typer and the
root command 54 ms; typer's parameter adapters, which import pydantic, 84 ms; rich 27 ms;
asyncio and uvloop 22 ms; SQLAlchemy core 176 ms; `sqlalchemy.ext.asyncio` 74 ms more, because
its package `__init__` imports `AsyncSession` and with it the ORM; the SQLite dialect and
aiosqlite 12 ms; inventory store, models and schema 58 ms; the health modules 24 ms; the policy
(import and default) 25 ms; the quote modules 17 ms. The commands' own work is about 15 ms.

What bounds `health` and `quote` above 400 ms on this host: the interpreter, typer with
pydantic and SQLAlchemy core alone take 339 ms of CPU (25 + 54 + 84 + 176), asyncio 22 ms
more, before the asyncio engine's ORM import, rich and polyfleet's own modules. Not done, and
why:
- `AsyncEngine` without the ORM: no import path to it skips `sqlalchemy.ext.asyncio`'s package
  `__init__`. A sync Core engine run in a thread for SQLite would be a second code path beside
  PostgreSQL's asyncpg engine (or would need a sync PostgreSQL driver as well): rejected.
- Turning off pydantic's plugin look-up (`PYDANTIC_DISABLE_PLUGINS`): no measurable change
  (`health` 552 against 559 ms CPU, medians of 9).
- `health` still validates the whole policy for its `[licensing] no_licensed_features` (25 ms);
  validating only that section would save about 20 ms but let `health` accept a policy file
  that `quote` refuses. rich (27 ms) is what the text format renders with.

The editable install's meta-path finder (`__editable___polyfleet_0_1_0_finder`, loaded by
`site`) adds 24 ms to a bare `python -c pass` (50 ms against 24 ms with a plain path entry
instead, medians of 15), but nothing measurable to `polyfleet --version` (137 ms against
132 ms wall, 107 against 108 ms CPU): what it imports (pathlib, re, importlib.util) the command
imports anyway. So the Makefile keeps `pip install -e .`; the floor below includes the finder.
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
        verdict = "met" if after <= TARGETS[name] else "NOT met"
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
