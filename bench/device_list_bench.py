"""The dashboard's device table and overview over HTTP on a 100,000-device store (issues 12 and
13): the first page of `GET /api/v1/devices` without a filter, by health status
(`status=CRITICAL`, `OK`, ...) and in status order (`sort=status&order=asc|desc`), and
`GET /api/v1/overview`, on SQLite and PostgreSQL.

Each backend gets a store of `health_bench.build_store`'s mix (mostly OK; expiring, expired,
stale, unreachable, never scanned, analog devices), built by the code under test (`--before`
DIR: a checkout of the code to compare with, which builds the store and is measured first; the
current code then opens the same store, migrating it). `polyfleet serve` runs on loopback with a
viewer token; each URL gets one warm-up request, then `--runs` sequential requests, each on a
new connection as `curl` would: the median wall time, and the server process's CPU time per
request (user + sys over all runs; PostgreSQL's own work is in its processes, not in this).

    .venv/bin/python bench/device_list_bench.py [--devices 100000] [--runs 11] \\
        [--pg postgresql://postgres@127.0.0.1:5432/DB] [--before DIR] [--no-record]

On PostgreSQL the store goes in a schema of its own, dropped at the end; use a database of
your own (not `test`). Its tables are ANALYZEd once built, as autovacuum does after a bulk load
(the planner needs their statistics; autovacuum may be off on a test server).
Results go to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from inventory_bench import machine, replace_section  # bench/ is sys.path[0] when run

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 300
URLS = {
    "no filter": "/api/v1/devices?sort=serial&order=asc&limit=50&offset=0",
    "status=CRITICAL": "/api/v1/devices?status=CRITICAL&sort=serial&order=asc&limit=50&offset=0",
    "status=WARNING": "/api/v1/devices?status=WARNING&sort=serial&order=asc&limit=50&offset=0",
    "status=UNKNOWN": "/api/v1/devices?status=UNKNOWN&sort=serial&order=asc&limit=50&offset=0",
    "status=OK": "/api/v1/devices?status=OK&sort=serial&order=asc&limit=50&offset=0",
    "sort=status&order=asc": "/api/v1/devices?sort=status&order=asc&limit=50&offset=0",
    "sort=status&order=desc": "/api/v1/devices?sort=status&order=desc&limit=50&offset=0",
    "overview": "/api/v1/overview",
}
TICK = os.sysconf("SC_CLK_TCK")
ANALYZED = ("devices", "device_status", "licenses")


def build(code: Path, db: str, devices: int) -> float:
    """Fill the store with `code`'s own store APIs (so its own schema revision); seconds."""
    script = (
        "import asyncio, sys; from datetime import UTC, datetime; "
        f"sys.path.insert(0, {str(code / 'bench')!r}); from health_bench import build_store; "
        f"asyncio.run(build_store({db!r}, {devices}, datetime.now(UTC)))"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", script], cwd=code, env=environment(code), check=True)
    return time.perf_counter() - started


def environment(code: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(code), "NO_COLOR": "1"}
    env.pop("POLYFLEET_DB", None)
    return env


def polyfleet(db: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "controller.cli", "--db", db, *args]


def cpu_seconds(pid: int) -> float:
    """User + system time of a process (its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


@dataclass
class Measured:
    """One URL on one server: wall times of the runs, CPU per request, what it answered."""

    walls: list[float] = field(default_factory=list)
    cpu: float = 0.0
    answer: str = ""


def get(address: tuple[str, int], path: str, token: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection(*address, timeout=60)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise SystemExit(f"GET {path}: HTTP {response.status} {body[:500]!r}")
    return elapsed, body


def summary(body: bytes) -> str:
    """What the answer said, to show that both versions answered alike."""
    data = json.loads(body)
    if "items" in data:
        first = data["items"][0]["serial"] if data["items"] else "-"
        return f"total {data['total']}, first {first}"
    return f"counts {data['counts']}, unreadable {data['unreadable_total']}"


def measure(code: Path, db: str, runs: int, tmp: Path) -> tuple[dict[str, Measured], float]:
    """Serve the store with `code` and time every URL; also how long the server took to be
    ready (a migration included)."""
    env = environment(code)
    created = subprocess.run(
        polyfleet(db, "tokens", "create", "--role", "viewer", "-o", "json"),
        cwd=code, env=env, capture_output=True, check=True, text=True,
    )  # fmt: skip
    token = json.loads(created.stdout)["token"]
    log = (tmp / f"serve-{uuid.uuid4().hex[:6]}.log").open("w+")
    started = time.perf_counter()
    server = subprocess.Popen(
        polyfleet(db, "serve", "--port", "0"), cwd=code, env=env, stdout=log, stderr=log
    )
    try:
        address = None
        while address is None:
            if server.poll() is not None or time.perf_counter() - started > 600:
                log.seek(0)
                raise SystemExit(f"polyfleet serve did not start: {log.read()[-2000:]}")
            log.seek(0)
            found = re.search(r"listening on http://([\d.]+):(\d+)", log.read())
            if found:
                address = (found.group(1), int(found.group(2)))
            else:
                time.sleep(0.05)
        ready = time.perf_counter() - started
        results = {}
        for name, path in URLS.items():
            measured = Measured()
            _, body = get(address, path, token)  # warm-up
            measured.answer = summary(body)
            before = cpu_seconds(server.pid)
            for _ in range(runs):
                elapsed, _ = get(address, path, token)
                measured.walls.append(elapsed)
            measured.cpu = (cpu_seconds(server.pid) - before) / runs
            results[name] = measured
        return results, ready
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


async def pg_execute(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--pg", help="PostgreSQL database of your own (a schema is made in it)")
    parser.add_argument("--before", type=Path, help="checkout of the code to compare with")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--no-record", action="store_true", help="print, do not edit --out")
    args = parser.parse_args()

    versions = [("before", args.before.resolve())] if args.before else []
    versions.append(("after", ROOT))
    backends = ["SQLite"] + (["PostgreSQL"] if args.pg else [])
    table: dict[tuple[str, str], dict[str, Measured]] = {}
    notes = []
    loads = []
    with tempfile.TemporaryDirectory(prefix="polyfleet-list-bench-") as name:
        tmp = Path(name)
        os.environ.setdefault("XDG_DATA_HOME", str(tmp / "data"))
        os.environ.setdefault("XDG_CONFIG_HOME", str(tmp / "config"))
        for backend in backends:
            schema = f"bench_list_{uuid.uuid4().hex[:8]}"
            if backend == "SQLite":
                db = f"sqlite:///{tmp / 'devices.db'}"
            else:
                parts = urlsplit(args.pg)
                if parts.path.strip("/") == "test":
                    raise SystemExit("--pg: use a database of your own, not `test`")
                asyncio.run(pg_execute(args.pg, f'CREATE SCHEMA "{schema}"'))
                db = f"{args.pg}?schema={schema}"
            try:
                built = build(versions[0][1], db, args.devices)
                notes.append(f"{backend} store built by the {versions[0][0]} code in {built:.0f} s")
                if backend == "PostgreSQL":  # what autovacuum does after a bulk load
                    tables = ", ".join(f'"{schema}".{t}' for t in ANALYZED)
                    asyncio.run(pg_execute(args.pg, f"ANALYZE {tables}"))
                for version, code in versions:
                    load = os.getloadavg()[0]
                    results, ready = measure(code, db, args.runs, tmp)
                    loads.append(f"{backend} {version}: {load:.1f} -> {os.getloadavg()[0]:.1f}")
                    notes.append(f"{backend} {version}: `serve` ready after {ready:.1f} s")
                    table[(backend, version)] = results
                    for url, m in results.items():
                        wall = ms(statistics.median(m.walls))
                        print(f"{backend} {version} {url}: {wall} / CPU {ms(m.cpu)}; {m.answer}")
            finally:
                if backend == "PostgreSQL":
                    asyncio.run(pg_execute(args.pg, f'DROP SCHEMA "{schema}" CASCADE'))
    section = report(args, versions, backends, table, notes, loads)
    print(section)
    if not args.no_record:
        replace_section(args.out, "## Devices by health status over HTTP", section)


def report(
    args: argparse.Namespace,
    versions: list[tuple[str, Path]],
    backends: list[str],
    table: dict[tuple[str, str], dict[str, Measured]],
    notes: list[str],
    loads: list[str],
) -> str:
    columns = [(b, v) for b in backends for v, _ in versions]
    head = "| first page of | " + " | ".join(f"{b} {v}" for b, v in columns) + " |"
    lines = [
        "## Devices by health status over HTTP (issues 12 and 13): `bench/device_list_bench.py`",
        "",
        f"Machine: {machine()}. Measured {time.strftime('%Y-%m-%d %H:%M')}; 1-min load average "
        f"at the start and end of each server's runs: {'; '.join(loads)} (2 shared cores: "
        "compare CPU with wall).",
        f"Store: {args.devices:,} devices (bench/health_bench.py's mix); " + "; ".join(notes) + ".",
        f"Each cell: median wall of {args.runs} sequential requests (new connection each) after "
        "one warm-up / server CPU per request (user+sys; PostgreSQL's own CPU not included). "
        f"Target <= {TARGET_MS} ms.",
        "",
        head,
        "|---|" + "---:|" * len(columns),
    ]
    for url, path in URLS.items():
        cells = []
        for column in columns:
            m = table[column][url]
            wall = statistics.median(m.walls)
            mark = "**" if column[1] == "after" else ""
            cells.append(f"{mark}{ms(wall)}{mark} / {ms(m.cpu)}")
        lines.append(f"| `{path.removeprefix('/api/v1')}` | " + " | ".join(cells) + " |")
    answers = []
    for backend in backends:
        for url in URLS:
            given = {v: table[(backend, v)][url].answer for v, _ in versions}
            alike = len(set(given.values())) == 1
            answers.append(
                f"{backend} {url}: {given['after']}"
                + ("" if alike else f" (DIFFERS from before: {given.get('before')})")
            )
    same = "before and after answered alike" if len(versions) > 1 else "answers"
    lines += ["", f"Totals and first serials ({same} where not marked): " + "; ".join(answers), ""]
    samples = [
        f"{b} {v} {url} {[round(w * 1000) for w in table[(b, v)][url].walls]}"
        for b, v in columns
        for url in URLS
    ]
    lines += ["Samples (ms): " + "; ".join(samples), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
