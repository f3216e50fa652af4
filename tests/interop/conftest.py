"""Interop peers nobody here wrote (net-snmp snmpd, OpenSSH sshd, nginx), started once per
session on free loopback ports and shared by the transport tests and the discover/scan tests.

A missing binary skips the test on a workstation but fails it in CI (CI=true), so the interop
suite can never pass there by silently not running.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.transports.tls_helpers import CertFiles, make_certs

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


# --- net-snmp snmpd serving POLYCOM-ENDPOINT-MIB identity ------------------------------------

SNMPD_SERIAL, SNMPD_SOFTWARE = "82A1234567", "6.2.2.8-460003"
SNMPD_MODEL = "RealPresence Group 500"
"""How a Group Series names itself in POLYCOM-ENDPOINT-MIB (not "Group Series 500")."""
SNMPD_MAC = "00:04:f2:12:34:56"
SNMPD_COMMUNITY = "interop-ro"
ENDPOINT_MIB = "1.3.6.1.4.1.13885.101"
SNMPD_IDENTITY = {
    f"{ENDPOINT_MIB}.1.1.1.0": ("octet_str", f'"{SNMPD_SOFTWARE}"', SNMPD_SOFTWARE),
    f"{ENDPOINT_MIB}.1.1.3.0": ("octet_str", '"videoEndpoint"', "videoEndpoint"),
    f"{ENDPOINT_MIB}.1.1.4.0": ("octet_str", f'"{SNMPD_MODEL}"', SNMPD_MODEL),
    f"{ENDPOINT_MIB}.1.1.5.0": ("octet_str", f'"{SNMPD_SERIAL}"', SNMPD_SERIAL),
    f"{ENDPOINT_MIB}.1.1.6.0": ("integer", "2", 2),
    f"{ENDPOINT_MIB}.1.3.10.2.1.3.1": ("octet_str", f'"{SNMPD_MAC}"', SNMPD_MAC),
}
"""OID → (snmpd override type, snmpd value, what a client reads back)."""


def _snmpd_config(port: int) -> str:
    lines = [
        f"agentaddress udp:127.0.0.1:{port}",
        f"rocommunity {SNMPD_COMMUNITY} 127.0.0.1",
        "rocommunity public 127.0.0.1",  # the factory default a codec often still answers
        f"sysDescr Polycom {SNMPD_MODEL}, software {SNMPD_SOFTWARE}",
        f"sysObjectID .{ENDPOINT_MIB}",
        "sysName interop-gs",
        'createUser pfsha SHA "authkey-polyfleet" AES "privkey-polyfleet"',
        'createUser pfsha256 SHA-256 "authkey-polyfleet-256" AES-256 "privkey-polyfleet-256"',
        "rouser pfsha priv",
        "rouser pfsha256 priv",
    ]
    lines += [f"override .{oid} {kind} {value}" for oid, (kind, value, _) in SNMPD_IDENTITY.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    """snmpd on a free UDP port of 127.0.0.1: v2c communities `interop-ro` and `public`, v3 users
    pfsha and pfsha256, Polycom sysDescr/sysObjectID, POLYCOM-ENDPOINT-MIB identity and NIC MAC."""
    binary = require_binary("snmpd", "/usr/sbin/snmpd")
    work = tmp_path_factory.mktemp("snmpd")
    port = free_port(socket.SOCK_DGRAM)
    conf = work / "snmpd.conf"
    conf.write_text(_snmpd_config(port))
    log = work / "snmpd.log"
    argv = [binary, "-f", "-Lo", "-C", "-c", str(conf), "-M", "/dev/null", "-m", ""]
    env = {"SNMP_PERSISTENT_DIR": str(work / "persist")}
    with run_peer(argv, log, port, env) as peer:
        wait_until(lambda: "NET-SNMP version" in peer.output(), peer, "snmpd")
        yield peer


# --- OpenSSH sshd with a Group Series API forced command (documented replies, no prompt) ------

GS_SCRIPT = FIXTURES / "gs_api.py"
SSHD_SERIAL = "82A7000042"
"""The serial gs_api.py reports (banner and `whoami`)."""


@dataclass
class Sshd:
    peer: Peer
    host_key: str
    """The server's public host key, "ssh-ed25519 AAAA…", as the inventory would pin it."""
    client_key: Path
    other_key: Path


def _keygen(ssh_keygen: str, path: Path) -> None:
    subprocess.run(
        [ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)],
        check=True,
        timeout=20,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """sshd on a free port of 127.0.0.1: key login only, every session runs gs_api.py."""
    binary = require_binary("sshd", "/usr/sbin/sshd")
    ssh_keygen = require_binary("ssh-keygen")
    work = tmp_path_factory.mktemp("sshd")
    host_key, client_key, other_key = work / "host_ed25519", work / "client", work / "other"
    for path in (host_key, client_key, other_key):
        _keygen(ssh_keygen, path)
    authorized = work / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text())
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # privilege separation
    port = free_port()
    command = shlex.join([sys.executable, str(GS_SCRIPT)])
    config = work / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"ListenAddress 127.0.0.1:{port}",
                f"HostKey {host_key}",
                f"PidFile {work / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}",
                "PermitRootLogin yes",
                "StrictModes no",
                "UsePAM no",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PrintMotd no",
                "PrintLastLog no",
                "AllowTcpForwarding no",
                "X11Forwarding no",
                f"ForceCommand {command}",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    argv = [binary, "-D", "-e", "-f", str(config), "-p", str(port)]
    with run_peer(argv, work / "sshd.log", port) as peer:
        wait_until(tcp_ready(port), peer, "sshd")
        public = host_key.with_suffix(".pub").read_text().split()
        yield Sshd(peer, " ".join(public[:2]), client_key, other_key)


# --- nginx serving captured UC device-info JSON ----------------------------------------------

DEVICE_INFO = FIXTURES / "device-info.json"
DRIVER_FIXTURES = FIXTURES.parent / "drivers"
INFO_PATH = "/api/v1/mgmt/device/info"
DOCUMENTED_ROUTES = {
    INFO_PATH: DEVICE_INFO,
    "/api/v1/mgmt/network/info": DRIVER_FIXTURES / "uc_network_info.json",
    "/api/v1/mgmt/lineInfo": DRIVER_FIXTURES / "uc_line_info.json",
}
"""Only documented UC routes (poly-device-apis.md 1.3): no modeled `license/info`, as on a
real phone, which answers it with 404."""
NGINX_USER, NGINX_PASSWORD = "Polycom", "interop-456"


@dataclass
class Nginx:
    peer: Peer
    certs: CertFiles
    other_port: int
    """A second HTTPS server that answers every path with 404, like any web server."""


def _json_location(path: str, file: Path, htpasswd: Path) -> str:
    return f"""        location = {path} {{
            auth_basic "Polycom";
            auth_basic_user_file {htpasswd};
            default_type application/json;
            alias {file};
        }}
"""


def _nginx_config(work: Path, port: int, other_port: int, certs: CertFiles) -> str:
    temp = work / "temp"
    user = "user root;\n" if os.geteuid() == 0 else ""  # the worker reads files under tmp (0700)
    temp_paths = "\n".join(
        f"    {name}_temp_path {temp / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    htpasswd = work / "htpasswd"
    locations = "".join(_json_location(p, f, htpasswd) for p, f in DOCUMENTED_ROUTES.items())
    return f"""{user}worker_processes 1;
pid {work / "nginx.pid"};
error_log {work / "error.log"} info;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temp_paths}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {certs.cert};
        ssl_certificate_key {certs.key};
{locations}    }}
    server {{
        listen 127.0.0.1:{other_port} ssl;
        ssl_certificate {certs.cert};
        ssl_certificate_key {certs.key};
        location / {{ return 404; }}
    }}
}}
"""


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    """nginx on free ports of 127.0.0.1: HTTPS with a test CA, Basic auth, the documented UC
    routes with captured JSON; and a plain web server answering 404 on `other_port`."""
    binary = require_binary("nginx", "/usr/sbin/nginx")
    work = tmp_path_factory.mktemp("nginx")
    (work / "temp").mkdir()
    certs = make_certs(work / "tls")
    (work / "htpasswd").write_text(f"{NGINX_USER}:{{PLAIN}}{NGINX_PASSWORD}\n")
    port, other_port = free_port(), free_port()
    conf = work / "nginx.conf"
    conf.write_text(_nginx_config(work, port, other_port, certs))
    argv = [binary, "-p", str(work), "-c", str(conf), "-e", str(work / "error.log")]
    with run_peer([*argv, "-g", "daemon off;"], work / "nginx.log", port) as peer:
        wait_until(tcp_ready(port), peer, "nginx")
        yield Nginx(peer, certs, other_port)
