"""The SSH face of simulated Group Series / HDX systems: password login, `whoami`, one command
at a time, and non-interactive `ssh host 'cmd'` exec requests.

Each device listens on its own address (port 22 unless told otherwise). Accepting the TCP
connection ourselves and handing the socket to `asyncssh.run_server` lets faults act before any
SSH byte is sent: `unreachable` accepts and then stays silent (clients time out), `latency_s`
delays the banner and every reply, `flapping` cuts every other connection before the banner.
Command semantics live in the pure `simulator.gs_commands`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncssh
import asyncssh.editor
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from simulator.gs_commands import PROMPT, CommandResult, GsCommandInterpreter
from simulator.sockets import bind_with_fallback
from simulator.state import SimDevice

log = logging.getLogger(__name__)

SSH_PORT = 22
MAX_SESSIONS_PER_DEVICE = 16
"""Connections beyond this are closed at once, like an embedded system's small session table."""
MAX_COMMANDS_PER_SESSION = 10_000
IDLE_TIMEOUT_S = 300.0
LOGIN_TIMEOUT_S = 30.0
MAX_LATENCY_S = 60.0
ACCEPT_RETRY_S = 0.5
SILENT_HOLD_S = 120.0
"""How long an `unreachable` device holds an accepted connection without a byte before closing."""
WRONG_PASSWORD_SUFFIX = "-rotated"
"""MODELED wrong_credentials fault: the device's password differs from the fleet's profile."""
_MAX_PRINTABLE_PATTERNS = 64


def _share_line_editor_patterns() -> None:
    """Make asyncssh's line editor build its "printable characters" regex once, not per session.

    `SSHLineEditor._build_printable` walks 65,536 code points for every PTY session; that was
    about 60 % of the simulator's CPU per SSH login (bench/RESULTS.md, simulator cost). The
    regex depends only on the single-character keys the editor has bound, so it is cached by
    that key set: the editor behaves exactly as before. If asyncssh changes, this does nothing.
    """
    editor = getattr(asyncssh.editor, "SSHLineEditor", None)
    build = getattr(editor, "_build_printable", None)
    if build is None or getattr(build, "polyfleet_shared", False):
        return
    patterns: dict[frozenset[str], Any] = {}

    def shared_build(self: Any) -> None:
        keys = frozenset(self._keymap)
        pattern = patterns.get(keys)
        if pattern is None:
            build(self)
            if len(patterns) < _MAX_PRINTABLE_PATTERNS:
                patterns[keys] = self._printable
        else:
            self._printable = pattern

    shared_build.polyfleet_shared = True  # type: ignore[attr-defined]
    setattr(editor, "_build_printable", shared_build)  # noqa: B010 - a method, on purpose


_share_line_editor_patterns()


def host_key_for(portal_secret: bytes, serial: str, *, changed: bool = False) -> asyncssh.SSHKey:
    """A per-device Ed25519 host key derived from the fleet secret: stable across restarts of
    the same fleet, different for every device, and different again when `changed`."""
    label = b"polyfleet-ssh-host-key|" + serial.encode() + (b"|changed" if changed else b"")
    seed = hmac.new(portal_secret, label, hashlib.sha256).digest()
    pem = Ed25519PrivateKey.from_private_bytes(seed).private_bytes(
        Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()
    )
    return asyncssh.import_private_key(pem)


def accepted_password(device: SimDevice) -> str:
    """The password the device accepts right now (differs under the wrong_credentials fault)."""
    password = device.credentials.ssh_password
    return password + WRONG_PASSWORD_SUFFIX if device.faults.wrong_credentials else password


class _DeviceAuth(asyncssh.SSHServer):
    """Password-only authentication against the device's live credentials."""

    def __init__(self, device: SimDevice) -> None:
        self._device = device

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        cred = self._device.credentials
        user_ok = hmac.compare_digest(username.encode(), cred.ssh_user.encode())
        pass_ok = hmac.compare_digest(password.encode(), accepted_password(self._device).encode())
        return user_ok and pass_ok


class _DeviceListener:
    """Accept loop and sessions of one device."""

    def __init__(self, device: SimDevice, sock: socket.socket, portal_secret: bytes) -> None:
        self.device = device
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        self._secret = portal_secret
        self._options: dict[bool, asyncssh.SSHServerConnectionOptions] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._accept_task: asyncio.Task[None] | None = None
        self._accepted = 0

    def start(self) -> None:
        self._accept_task = asyncio.get_running_loop().create_task(self._accept_loop())

    def _server_options(self, changed: bool) -> asyncssh.SSHServerConnectionOptions:
        """Built on first use (not at start-up) so thousands of devices start quickly."""
        if changed not in self._options:
            device = self.device
            self._options[changed] = asyncssh.SSHServerConnectionOptions(
                server_host_keys=[host_key_for(self._secret, device.serial, changed=changed)],
                server_factory=lambda: _DeviceAuth(device),
                process_factory=self._session,
                login_timeout=LOGIN_TIMEOUT_S,
                keepalive_interval=0,
                allow_scp=False,
                agent_forwarding=False,
                x11_forwarding=False,
            )
        return self._options[changed]

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while self.sock.fileno() != -1:  # ends when close() cancels it or closes the socket
            try:
                conn, _addr = await loop.sock_accept(self.sock)
            except OSError as exc:
                if self.sock.fileno() == -1:
                    return
                log.warning("accept on %s failed: %s", self.device.host, exc.strerror)
                await asyncio.sleep(ACCEPT_RETRY_S)  # e.g. EMFILE: back off, then try again
                continue
            if len(self._tasks) >= MAX_SESSIONS_PER_DEVICE:
                conn.close()
                continue
            task = loop.create_task(self._handle(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _handle(self, conn: socket.socket) -> None:
        faults = self.device.faults
        self._accepted += 1
        if faults.flapping and self._accepted % 2 == 0:
            conn.close()  # every other connection is cut before the SSH banner
            return
        if faults.unreachable:
            try:
                await asyncio.sleep(SILENT_HOLD_S)  # accepted, but not a single byte back
            finally:
                conn.close()
            return
        try:
            if faults.latency_s > 0:
                await asyncio.sleep(min(faults.latency_s, MAX_LATENCY_S))
            options = self._server_options(faults.ssh_host_key_changed)
            ssh = await asyncssh.run_server(conn, options=options)
        except (asyncssh.Error, OSError, TimeoutError) as exc:
            log.debug("ssh login to %s ended: %s", self.device.serial, type(exc).__name__)
            conn.close()
            return
        except asyncio.CancelledError:
            conn.close()
            raise
        else:
            self._connections.add(ssh)
            try:
                await ssh.wait_closed()
            finally:
                self._connections.discard(ssh)

    async def _session(self, process: asyncssh.SSHServerProcess[str]) -> None:
        """One SSH session: an exec request runs its command; a shell gets the API loop."""
        interp = GsCommandInterpreter(self.device, self._secret)
        pty = process.get_terminal_type() is not None

        def write(text: str) -> None:
            # With a pty, asyncssh's line editor turns "\n" into "\r\n"; keep CR LF on the wire.
            process.stdout.write(text.replace("\r\n", "\n") if pty else text)

        async def pace() -> None:
            if self.device.faults.latency_s > 0:
                await asyncio.sleep(min(self.device.faults.latency_s, MAX_LATENCY_S))

        try:
            if process.command is not None:
                await pace()
                result = interp.execute(process.command)
                write(result.text)
                failed = any(line.startswith("error") for line in result.lines)
                process.exit(1 if failed else 0)
                if result.rebooted:
                    process.get_extra_info("connection").close()
                return
            write(interp.banner())
            write(PROMPT)
            result = CommandResult()
            for _ in range(MAX_COMMANDS_PER_SESSION):
                try:
                    line = await asyncio.wait_for(process.stdin.readline(), IDLE_TIMEOUT_S)
                except asyncssh.TerminalSizeChanged:
                    continue
                if not line:
                    break
                await pace()
                result = interp.execute(line)
                write(result.text)
                if result.close:
                    break
                write(PROMPT)
            process.exit(0)
            if result.rebooted:
                process.get_extra_info("connection").close()
        except (asyncssh.Error, OSError, TimeoutError, asyncssh.BreakReceived) as exc:
            log.debug("ssh session on %s ended: %s", self.device.serial, type(exc).__name__)
            process.exit(0)

    async def close(self) -> None:
        if self._accept_task is not None:
            self._accept_task.cancel()
        self.sock.close()
        for ssh in list(self._connections):
            ssh.close()
        for task in list(self._tasks):
            task.cancel()
        pending = [t for t in (self._accept_task, *self._tasks) if t is not None]
        if pending:
            await asyncio.wait(pending, timeout=5.0)


@dataclass(slots=True)
class SshServerHandle:
    """The running SSH face of a fleet: `ports` maps serial to the bound TCP port."""

    ports: dict[str, int] = field(default_factory=dict)
    _listeners: list[_DeviceListener] = field(default_factory=list)

    async def close(self) -> None:
        """Stop listening and drop every session."""
        listeners, self._listeners = self._listeners, []
        await asyncio.gather(*(listener.close() for listener in listeners))


def serves_ssh(device: SimDevice) -> bool:
    """Only networked devices with an SSH port (Group Series / HDX in the generated fleet)."""
    return device.family != "analog" and device.ssh_port is not None and bool(device.host)


async def start_ssh_servers(
    devices: Sequence[SimDevice], *, port: int | None = None, portal_secret: bytes
) -> SshServerHandle:
    """Listen for every SSH-capable device on its own address (port 22 unless `port`)."""
    handle = SshServerHandle()
    try:
        for device in devices:
            if not serves_ssh(device):
                continue
            wanted = port if port is not None else (device.ssh_port or SSH_PORT)
            listener = _DeviceListener(
                device, bind_with_fallback(device.host, wanted, socket.SOCK_STREAM), portal_secret
            )
            listener.start()
            handle._listeners.append(listener)
            handle.ports[device.serial] = listener.port
    except BaseException:
        with contextlib.suppress(Exception):
            await handle.close()
        raise
    return handle
