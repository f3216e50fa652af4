"""Simulator instructions per operation (issue 3): a load-independent companion to
simulator_bench.py, for comparing two source trees' simulators.

CPU time on a shared machine moves 30-60 % between runs, and simulator_bench.py's clients come
from the tree under test. Here `polyfleet simulate` (one process, `--workers 1`) of the tree
given by `--tree` runs under `valgrind --tool=callgrind`, and is driven by the same third-party
clients whatever the tree: net-snmp `snmpget`, `curl`, OpenSSH `ssh` through `sshpass`. For
each case, the harness zeroes callgrind's counters (`callgrind_control -z`), runs k operations,
and dumps them (`callgrind_control -d`): W(k) = instructions (Ir) the simulator executed in that
window. Per operation = (W(N) - W(0)) / N, where W(0) is the same window without the counted
operations (idle, or the one connection / session the operations share). Every case runs after
an unmeasured warm-up that touches each device it uses (certificates, host keys and caches are
built on first use), `--repeats` times.

    .venv/bin/python bench/simulator_instructions.py --tree /tmp/sim_old --label 4f0f0b1
    .venv/bin/python bench/simulator_instructions.py --tree . --label main
    .venv/bin/python bench/simulator_instructions.py --only 3,4 --ssh-cipher aes256-gcm@openssh.com

`--tree` goes first on PYTHONPATH, so the simulator and the CLI come from it and the libraries
from this venv (PYTHONHASHSEED=0 for repeatability). The dumps stay in `--keep` (default: a
temporary directory that is printed) for `callgrind_annotate`; the result also gives each
window's exclusive Ir per shared object (interpreter, libcrypto, libssl, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from simulator_bench import DEVICE_INFO, SNMP_OIDS, SSH_COMMAND  # bench/ is sys.path[0]

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 900.0
OP_TIMEOUT_S = 120.0
PROMPT = b"-> "
FACTORY_PASSWORD = "456"  # the simulator's public factory default  # noqa: S105
SSH_OPTIONS = (
    "-F",
    "/dev/null",
    "-tt",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "PubkeyAuthentication=no",
    "-o",
    "PreferredAuthentications=password",
    "-o",
    "LogLevel=ERROR",
    "-o",
    f"ConnectTimeout={int(OP_TIMEOUT_S)}",
    "-l",
    "admin",
)


class BenchError(RuntimeError):
    """An operation failed or timed out: its count would be wrong, so the run stops."""


# --- the simulator under callgrind --------------------------------------------------------------


@dataclass
class Sim:
    """A `polyfleet simulate` under callgrind: its pid (valgrind's) and its inventory rows."""

    pid: int
    dumps: Path
    rows: list[dict[str, str]]

    def hosts(self, column: str, credentials: str | None = None) -> list[tuple[str, int]]:
        return [
            (r["host"], int(r[column]))
            for r in self.rows
            if r[column] and (credentials is None or r["credentials"] == credentials)
        ]

    def control(self, flag: str) -> None:
        subprocess.run(
            ["callgrind_control", flag, str(self.pid)],
            check=True,
            capture_output=True,
            timeout=OP_TIMEOUT_S,
        )

    def window(self, run: Callable[[], None]) -> Path:
        """Zero the counters, run, dump: the dump file of exactly that window."""
        before = set(self.dumps.glob(f"callgrind.out.{self.pid}.*"))
        self.control("-z")
        run()
        self.control("-d")
        (new,) = set(self.dumps.glob(f"callgrind.out.{self.pid}.*")) - before
        return new


@contextlib.contextmanager
def simulator(tree: Path, devices: int, seed: int, base: str, dumps: Path) -> Iterator[Sim]:
    """Start the tree's simulator under callgrind, wait for its portal file, stop it after."""
    workdir = Path(tempfile.mkdtemp(prefix="sim-", dir=dumps))
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    args = [
        "valgrind",
        "--tool=callgrind",
        "--trace-children=no",
        f"--callgrind-out-file={dumps}/callgrind.out.%p",
        sys.executable,
        "-m",
        "controller.cli",
        "simulate",
        f"--devices={devices}",
        f"--seed={seed}",
        f"--base-address={base}",
        "--workers=1",
        "--inventory-out=fleet.csv",
    ]
    log = (workdir / "simulate.log").open("wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=env)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not (workdir / "fleet.portal.toml").exists():
            if process.poll() is not None:
                raise BenchError(f"simulator exited: {(workdir / 'simulate.log').read_text()}")
            if time.monotonic() > deadline:
                raise BenchError(f"simulator not ready within {READY_TIMEOUT_S:.0f} s")
            time.sleep(0.2)
        with (workdir / "fleet.csv").open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        yield Sim(process.pid, dumps, rows)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        log.close()


# --- the third-party clients -------------------------------------------------------------------


def snmp_get(host: str, port: int) -> None:
    """One v2c GET of the 4 OIDs; no retry (a retry would be a second request)."""
    timeout = str(int(OP_TIMEOUT_S))
    out = subprocess.run(
        ["snmpget", "-v2c", "-c", "public", "-t", timeout, "-r", "0", f"{host}:{port}", *SNMP_OIDS],
        capture_output=True,
        text=True,
        timeout=OP_TIMEOUT_S + 10,
        check=False,
    )
    if out.returncode != 0 or out.stdout.count("\n") != len(SNMP_OIDS):
        raise BenchError(f"snmpget {host}: {out.stderr.strip() or out.stdout.strip()}")


def https_get(host: str, port: int, requests: int) -> None:
    """`requests` GETs of device/info over one curl invocation (one connection, keep-alive)."""
    url = f"https://{host}:{port}{DEVICE_INFO}"
    out = subprocess.run(
        ["curl", "-sk", "--max-time", str(int(OP_TIMEOUT_S) * 4)]
        + ["-u", f"Polycom:{FACTORY_PASSWORD}", "-w", "\nANSWER %{http_code} %{num_connects}\n"]
        + [url] * requests,
        capture_output=True,
        text=True,
        timeout=OP_TIMEOUT_S * 5,
        check=False,
    )
    answers = re.findall(r"^ANSWER (\d+) (\d+)$", out.stdout, re.MULTILINE)
    codes, connects = [a[0] for a in answers], [a[1] for a in answers]
    if out.returncode != 0 or codes != ["200"] * requests or sum(map(int, connects)) != 1:
        raise BenchError(f"curl {url}: rc {out.returncode}, {out.stdout[:200]!r}")


class SshShell:
    """An OpenSSH session (sshpass, PTY shell) driven one command at a time, prompt to prompt."""

    cipher: str | None = None
    """`--ssh-cipher`: the one cipher offered (None: OpenSSH's default order)."""

    def __init__(self, host: str, port: int) -> None:
        cipher = ["-c", self.cipher] if self.cipher else []
        self.process = subprocess.Popen(
            [
                "sshpass",
                "-p",
                FACTORY_PASSWORD,
                "ssh",
                *SSH_OPTIONS,
                *cipher,
                "-p",
                str(port),
                host,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.output = b""
        self._wait_prompts(1)  # banner + prompt

    def _wait_prompts(self, prompts: int) -> None:
        assert self.process.stdout is not None
        deadline = time.monotonic() + OP_TIMEOUT_S
        fd = self.process.stdout.fileno()
        while self.output.count(PROMPT) < prompts:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0))
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                self.process.kill()
                raise BenchError(f"ssh: no prompt; output {self.output[-300:]!r}")
            self.output += chunk

    def command(self, line: str) -> None:
        assert self.process.stdin is not None
        prompts = self.output.count(PROMPT)
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()
        self._wait_prompts(prompts + 1)

    def exit(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"exit\n")
        self.process.stdin.close()
        try:
            self.process.wait(OP_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            self.process.kill()
            raise BenchError("ssh: session did not end after exit") from exc
        if self.process.stdout is not None:
            self.process.stdout.close()


def ssh_session(host: str, port: int, commands: int) -> None:
    shell = SshShell(host, port)
    for _ in range(commands):
        shell.command(SSH_COMMAND)
    shell.exit()
    if shell.output.count(b"optionkey end") < commands:
        raise BenchError(f"ssh {host}: {commands} commands, output {shell.output[-300:]!r}")


# --- cases --------------------------------------------------------------------------------------


@dataclass
class Case:
    """W(0) and W(N) windows of one operation type; `ops` runs k operations."""

    name: str
    count: int
    ops: Callable[[int], None]
    warmup: Callable[[], None]
    base_ir: list[int] = field(default_factory=list)
    ops_ir: list[int] = field(default_factory=list)
    objects: list[dict[str, int]] = field(default_factory=list)

    @property
    def per_op(self) -> list[float]:
        return [(w - w0) / self.count for w, w0 in zip(self.ops_ir, self.base_ir, strict=True)]


def round_robin(targets: list[tuple[str, int]], k: int, one: Callable[[str, int], None]) -> None:
    for index in range(k):
        one(*targets[index % len(targets)])


def cases(sim: Sim, counts: dict[str, int]) -> list[Case]:
    snmp = sim.hosts("snmp_port")
    phones = sim.hosts("https_port", "sim-uc")
    gs = sim.hosts("ssh_port")
    if not (snmp and phones and gs):
        raise BenchError("the fleet lacks an SNMP, UC phone or Group Series device: change --seed")
    phone = phones[0]
    return [
        Case(
            "SNMP v2c GET, 4 OIDs (snmpget, one process each)",
            counts["snmp"],
            lambda k: round_robin(snmp, k, snmp_get),
            lambda: round_robin(snmp, len(snmp), snmp_get),
        ),
        Case(
            "HTTPS GET device/info, keep-alive (one curl, one connection)",
            counts["keepalive"],
            lambda k: https_get(*phone, 1 + k),
            lambda: https_get(*phone, 2),
        ),
        Case(
            "HTTPS GET device/info, new TLS connection each (one curl each)",
            counts["newtls"],
            lambda k: round_robin(phones, k, lambda h, p: https_get(h, p, 1)),
            lambda: round_robin(phones, len(phones), lambda h, p: https_get(h, p, 1)),
        ),
        Case(
            f"SSH command `{SSH_COMMAND}` in an open session (PTY shell)",
            counts["ssh_commands"],
            lambda k: ssh_session(*gs[0], k),
            lambda: ssh_session(*gs[0], 2),
        ),
        Case(
            f"SSH session: connect + password auth + banner + `{SSH_COMMAND}` + exit",
            counts["ssh_sessions"],
            lambda k: round_robin(gs, k, lambda h, p: ssh_session(h, p, 1)),
            lambda: round_robin(gs, len(gs), lambda h, p: ssh_session(h, p, 1)),
        ),
    ]


# --- callgrind dumps ----------------------------------------------------------------------------

_NAME = re.compile(r"^\((\d+)\)(?: (.*))?$")


def totals(dump: Path) -> int:
    """The window's instructions: the dump's `summary` (callgrind_annotate's PROGRAM TOTALS).
    Its `totals` line, the sum of the cost lines, also holds the artefact `by_object` removes."""
    for line in dump.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise BenchError(f"{dump}: no summary line")


def by_object(dump: Path) -> dict[str, int]:
    """Exclusive Ir per shared object (the interpreter, libcrypto, ...) of one dump.

    Calls that were active when the counters were zeroed (the event loop's frames) keep
    part of their earlier cost in the dump, all of it in the interpreter: libpython is
    therefore the window's total minus every other object."""
    names: dict[str, str] = {}
    costs: Counter[str] = Counter()
    current = "?"
    skip_next = False
    for line in dump.read_text(encoding="utf-8", errors="replace").splitlines():
        if skip_next:  # the line after calls= is the call's inclusive cost
            skip_next = False
            continue
        if line.startswith(("ob=", "cob=")):  # a name is defined where it first appears
            value = line.split("=", 1)[1]
            match = _NAME.match(value)
            if match:
                ident, name = match.groups()
                if name:
                    names[ident] = name
                value = names.get(ident, value)
            if line.startswith("ob="):
                current = value
        elif line.startswith("calls="):
            skip_next = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            parts = line.split()
            if len(parts) >= 2:
                costs[Path(current).name] += int(parts[1])
    interpreter = next((name for name in costs if name.startswith("libpython")), None)
    if interpreter is not None:
        costs[interpreter] = totals(dump) - sum(c for n, c in costs.items() if n != interpreter)
    return dict(costs)


# --- main ---------------------------------------------------------------------------------------


def measure(case: Case, sim: Sim, repeats: int) -> None:
    case.warmup()
    for _ in range(repeats):
        base = sim.window(lambda: case.ops(0))
        full = sim.window(lambda: case.ops(case.count))
        case.base_ir.append(totals(base))
        case.ops_ir.append(totals(full))
        base_objects = by_object(base)
        case.objects.append(
            {name: cost - base_objects.get(name, 0) for name, cost in by_object(full).items()}
        )
        print(
            f"  {case.name}: W(0) {case.base_ir[-1]:,} Ir, W({case.count}) {case.ops_ir[-1]:,} Ir"
            f" -> {case.per_op[-1]:,.0f} Ir/op  [{full.name}]",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=ROOT, help="source tree of the simulator")
    parser.add_argument("--label", default="tree")
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--base-address", default="127.93.0.1")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--snmp", type=int, default=200)
    parser.add_argument("--keepalive", type=int, default=200)
    parser.add_argument("--newtls", type=int, default=100)
    parser.add_argument("--ssh-commands", type=int, default=100)
    parser.add_argument("--ssh-sessions", type=int, default=20)
    parser.add_argument("--idle", type=float, default=10.0, help="idle window, s")
    parser.add_argument("--ssh-cipher", help="offer only this cipher, e.g. aes256-gcm@openssh.com")
    parser.add_argument("--only", default="", help="comma-separated case indexes (0-4)")
    parser.add_argument("--keep", type=Path, help="directory for the dumps (default: temporary)")
    parser.add_argument("--out", type=Path, help="write the result as JSON")
    args = parser.parse_args()
    SshShell.cipher = args.ssh_cipher
    dumps = args.keep or Path(tempfile.mkdtemp(prefix="siminstr-"))
    dumps.mkdir(parents=True, exist_ok=True)
    counts = {
        "snmp": args.snmp,
        "keepalive": args.keepalive,
        "newtls": args.newtls,
        "ssh_commands": args.ssh_commands,
        "ssh_sessions": args.ssh_sessions,
    }
    print(f"{args.label}: tree {args.tree.resolve()}, dumps in {dumps}", flush=True)
    started = time.monotonic()
    with simulator(args.tree.resolve(), args.devices, args.seed, args.base_address, dumps) as sim:
        print(f"  ready after {time.monotonic() - started:.0f} s (under callgrind)", flush=True)
        idle = sim.window(lambda: time.sleep(args.idle))
        print(f"  idle {args.idle:.0f} s: {totals(idle):,} Ir", flush=True)
        chosen = cases(sim, counts)
        if args.only:
            chosen = [chosen[int(i)] for i in args.only.split(",")]
        for case in chosen:
            measure(case, sim, args.repeats)
    for case in chosen:
        spread = (max(case.per_op) - min(case.per_op)) / statistics.median(case.per_op) * 100
        print(
            f"{args.label}: {case.name}: median {statistics.median(case.per_op):,.0f} Ir/op, "
            f"runs {', '.join(f'{v:,.0f}' for v in case.per_op)} (spread {spread:.2f} %)"
        )
    if args.out:
        result = {
            "label": args.label,
            "tree": str(args.tree.resolve()),
            "counts": counts,
            "cases": [
                {k: v for k, v in asdict(c).items() if k not in ("ops", "warmup")}
                | {"per_op": c.per_op}
                for c in chosen
            ],
        }
        args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
