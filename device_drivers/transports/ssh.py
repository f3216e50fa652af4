"""SSH transport on asyncssh for the Group Series command API: login, prompt, one command at a time.

Host keys are checked during key exchange, before authentication, so a password is never sent
to a device whose key differs from the pinned one. Private keys are parsed once per file and the
key object reused (asyncssh re-reads key *paths* on every connection, performance-baselines.md
section 3). Sessions use a PTY like a person at a terminal would: the device then echoes the
command and ends lines with "\\r\\r\\n", which `command()` strips and normalises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncssh
from asyncssh.encryption import get_default_encryption_algs

from device_drivers.errors import (
    AuthenticationFailed,
    DeviceBusy,
    DeviceError,
    DeviceTimeout,
    DeviceUnreachable,
    HostKeyMismatch,
    MalformedReply,
)
from device_drivers.transports import SshTarget
from device_drivers.transports.translation import ErrorTable, translated
from device_drivers.transports.trust import FirstUsePins

log = logging.getLogger(__name__)

MAX_REPLY_CHARS = 1 << 20
"""A reply (or banner) longer than this without a prompt is treated as malformed."""
MAX_READS_PER_REPLY = 100_000
TERM_SIZE = (4096, 24)
"""A wide terminal, so device line editors never wrap long option keys."""
CLOSE_WAIT_S = 2.0
PROMPT_GRACE_S = 0.25
"""After a complete reply from a device that has shown no prompt, how long a prompt may take."""


def _ciphers() -> list[str]:
    """asyncssh's default ciphers with AES-GCM first: the same set offered, but a device that
    takes AES gets it, whose one cipher context per direction costs a scan far less CPU than
    chacha20-poly1305's new cipher objects for every packet."""
    default = [alg.decode("ascii") for alg in get_default_encryption_algs()]
    return sorted(
        default, key=lambda alg: (not alg.endswith("-gcm@openssh.com"), default.index(alg))
    )


_CIPHERS = _ciphers()


def openssh_public_key(key: asyncssh.SSHKey) -> str:
    """The "type base64" form of a host key, without comment: what the inventory pins."""
    text = key.export_public_key("openssh").decode("ascii")
    return " ".join(text.split()[:2])


def normalize_newlines(text: str) -> str:
    """Device output uses "\\r\\r\\n" (PTY on top of CR LF) or "\\r\\n"; callers see "\\n".

    Backspaces (a line editor redrawing the echoed command) are applied like a terminal would.
    """
    text = text.replace("\r\r\n", "\n").replace("\r\n", "\n").replace("\r", "")
    if "\b" not in text:
        return text
    out: list[str] = []
    for char in text:
        if char != "\b":
            out.append(char)
        elif out and out[-1] != "\n":
            out.pop()
    return "".join(out)


class _HostKeyWatcher(asyncssh.SSHClient):
    """Remembers the host key a server offered when it is not the pinned one."""

    def __init__(self) -> None:
        self.rejected: asyncssh.SSHKey | None = None

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.rejected = key
        return False


class AsyncsshSession:
    """One interactive shell on a device; `command()` runs one line at a time under a lock."""

    banner: str

    def __init__(
        self,
        target: SshTarget,
        conn: asyncssh.SSHClientConnection,
        process: asyncssh.SSHClientProcess[str],
        on_close: Callable[[AsyncsshSession], None] | None = None,
        line_end: str = "\r",
    ) -> None:
        self._on_close = on_close
        self._line_end = line_end
        self._target = target
        self._conn = conn
        self._process = process
        self._lock = asyncio.Lock()
        self._last_command_at = 0.0
        self._closed = False
        self._prompt_seen = False
        """Once the device has shown its prompt, every reply waits for it (no idle guessing)."""
        self.banner = ""

    def _content(self, buffer: str, echo: str | None) -> str:
        """What the device said so far: newlines normalised, a leading prompt and the PTY's
        echo of our command removed (a partial echo counts as nothing yet)."""
        text = normalize_newlines(buffer)
        prompt = self._target.prompt
        if prompt and text.startswith(prompt):  # a prompt that came after an idle-ended reply
            text = text[len(prompt) :]
        if echo is not None:
            first, sep, rest = text.partition("\n")
            if first.strip() == echo.strip():
                return rest if sep else ""
            if not sep and echo.strip().startswith(first.strip()):
                return ""
        return text

    async def _read_reply(self, what: str, echo: str | None = None) -> str:
        """Read up to the prompt at the start of a line; from a device that has shown no prompt,
        up to a complete reply (`target.complete`) or an idle line. Bounded in time and size."""
        target = self._target
        prompt = target.prompt
        loop = asyncio.get_running_loop()
        deadline = loop.time() + target.timeout
        buffer = ""
        try:
            for _ in range(MAX_READS_PER_REPLY):
                remaining = deadline - loop.time()
                content = self._content(buffer, echo)
                wait = remaining
                if content.strip() and not self._prompt_seen:
                    whole = target.complete is not None and target.complete(content)
                    wait = min(remaining, PROMPT_GRACE_S if whole else target.idle)
                if wait <= 0:
                    raise TimeoutError
                try:
                    chunk = await asyncio.wait_for(self._process.stdout.read(65536), wait)
                except TimeoutError:
                    if wait < remaining:  # the line went idle after a reply: that was all
                        return content
                    raise
                if not chunk:
                    raise DeviceUnreachable(
                        f"SSH session closed before the reply ended ({what})",
                        host=target.host,
                        answered=bool(buffer or self.banner),
                    )
                buffer += chunk
                if prompt and (buffer == prompt or buffer.endswith("\n" + prompt)):
                    self._prompt_seen = True
                    return self._content(buffer[: len(buffer) - len(prompt)], echo)
                if len(buffer) > MAX_REPLY_CHARS:
                    break
        except TimeoutError as exc:
            seen = normalize_newlines(buffer).strip()
            said = f"; it sent {seen[:60]!r}" if seen else ""
            raise DeviceTimeout(
                f"no SSH prompt or complete reply within {target.timeout:g} s ({what}){said}",
                host=target.host,
                answered=True,
            ) from exc
        except (asyncssh.Error, OSError) as exc:
            raise DeviceUnreachable(
                f"SSH connection lost ({what}): {_reason(exc)}", host=target.host
            ) from exc
        raise MalformedReply(
            f"no SSH prompt {prompt!r} after {len(buffer)} characters ({what})",
            host=target.host,
        )

    async def start(self) -> None:
        self.banner = await self._read_reply("login banner")
        self._last_command_at = time.monotonic()

    async def command(self, line: str) -> str:
        """Send `line` + CR, return the reply without echo and prompt, newlines normalised.

        Any error ends the session (its next reply could not be told apart from a late one).
        """
        if "\r" in line or "\n" in line:
            raise ValueError("one command line at a time")
        verb = line.split(" ", 1)[0]  # the rest may hold a key: never in messages
        async with self._lock:
            if self._closed:
                raise DeviceUnreachable("SSH session is closed", host=self._target.host)
            wait = self._target.pacing - (time.monotonic() - self._last_command_at)
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                try:
                    self._process.stdin.write(line + self._line_end)
                except (asyncssh.Error, OSError) as exc:
                    raise DeviceUnreachable(
                        f"SSH connection lost sending {verb!r}: {_reason(exc)}",
                        host=self._target.host,
                    ) from exc
                return await self._read_reply(f"after {verb!r}", echo=line)
            except DeviceError:
                # A late or partial reply would be taken for the next command's: drop the session.
                await self.close()
                raise
            finally:
                self._last_command_at = time.monotonic()

    async def close(self) -> None:
        """Say `exit` politely, then close the connection; never raises."""
        if self._closed:
            return
        self._closed = True
        if self._on_close is not None:
            self._on_close(self)
        with contextlib.suppress(asyncssh.Error, OSError):
            self._process.stdin.write("exit" + self._line_end)
        self._conn.close()
        with contextlib.suppress(asyncssh.Error, OSError, TimeoutError):
            async with asyncio.timeout(CLOSE_WAIT_S):
                await self._conn.wait_closed()


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One connection attempt, as its error messages name it."""

    target: SshTarget
    pin: str | None
    """The host key pin in force (None: first use or --insecure)."""
    watcher: _HostKeyWatcher
    """Holds the key the server offered if it was refused."""

    @property
    def where(self) -> str:
        return f"{self.target.host}:{self.target.port}"

    @property
    def host(self) -> str:
        return self.target.host


_OPEN_ERRORS: ErrorTable[_Attempt] = (
    (
        asyncssh.HostKeyNotVerifiable,
        lambda exc, x: _host_key_mismatch(x.target, x.pin, x.watcher.rejected),
    ),
    (
        asyncssh.PermissionDenied,
        lambda exc, x: AuthenticationFailed(
            f"SSH login to {x.where} as {x.target.user!r} rejected", host=x.host
        ),
    ),
    (
        asyncssh.ChannelOpenError,
        lambda exc, x: DeviceBusy(
            f"device refused an SSH session ({exc.reason}); retry later", host=x.host
        ),
    ),
    (
        TimeoutError,
        lambda exc, x: DeviceTimeout(
            f"SSH connect and login to {x.where} took over {x.target.timeout:g} s", host=x.host
        ),
    ),
    (
        ConnectionRefusedError,
        lambda exc, x: DeviceUnreachable(f"SSH connection to {x.where} refused", host=x.host),
    ),
    (
        asyncssh.ProtocolError,
        lambda exc, x: MalformedReply(
            f"SSH protocol error from {x.where}: {_reason(exc)}", host=x.host
        ),
    ),
    (
        (asyncssh.Error, OSError),
        lambda exc, x: DeviceUnreachable(
            f"SSH connection to {x.where} failed: {_reason(exc)}", host=x.host
        ),
    ),
)
"""asyncssh's (and the socket's) exceptions while opening a session and the device error each
becomes, most specific first (the first match wins: a refused host key or login is also a
disconnect, a refused connection an OSError)."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.Error):
        return exc.reason or type(exc).__name__
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__


class AsyncsshClient:
    """SshClient on asyncssh; keys loaded once per file, host keys pinned or pinned on first use.

    `pty` asks for a terminal (as the Group Series API expects); without one, lines end in LF.
    """

    def __init__(self, *, pty: bool = True, term_type: str = "dumb") -> None:
        self._pty = pty
        self._term_type = term_type
        self._keys: dict[str, asyncssh.SSHKey] = {}
        self._key_lock = asyncio.Lock()
        self._first_use = FirstUsePins()
        self._sessions: set[AsyncsshSession] = set()

    async def _client_key(self, target: SshTarget) -> list[asyncssh.SSHKey]:
        path = target.key_file
        if not path:
            return []
        async with self._key_lock:
            key = self._keys.get(path)
            if key is None:
                try:
                    key = await asyncio.to_thread(asyncssh.read_private_key, path)
                except (OSError, asyncssh.KeyImportError) as exc:
                    raise AuthenticationFailed(
                        f"cannot load the SSH private key {path}: {type(exc).__name__}",
                        host=target.host,
                    ) from exc
                self._keys[path] = key
        return [key]

    def _known_hosts(self, target: SshTarget) -> tuple[Any, str | None]:
        """asyncssh's known_hosts argument and the pin it enforces (None: accept any key)."""
        trust = target.trust
        if trust.insecure:
            return None, None
        pin = trust.pinned or self._first_use.get(target.host, target.port)
        if pin is None:
            if trust.pin_on_first_use:
                return None, None
            raise HostKeyMismatch(
                "no pinned SSH host key and first-use pinning is off",
                expected="(none)",
                actual="(not checked)",
                host=target.host,
            )
        try:
            key = asyncssh.import_public_key(pin)
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise HostKeyMismatch(
                "the pinned SSH host key cannot be read; re-pin it",
                expected=pin,
                actual="(not checked)",
                host=target.host,
            ) from exc
        return ([key], [], []), pin

    async def open(self, target: SshTarget) -> AsyncsshSession:
        """Connect, log in, open a shell and read the banner up to the first prompt."""
        known_hosts, pin = self._known_hosts(target)
        client_keys = await self._client_key(target)
        watcher = _HostKeyWatcher()
        conn: asyncssh.SSHClientConnection | None = None
        # Whatever ends the attempt once `connect` has returned (a timeout during login or
        # channel open, a refused pin, cancellation) must not leave that connection open.
        try:
            with translated(_OPEN_ERRORS, _Attempt(target, pin, watcher)):
                async with asyncio.timeout(target.timeout):  # connect, login and channel open
                    conn = await asyncssh.connect(
                        target.host,
                        target.port,
                        username=target.user,
                        password=target.password,
                        client_keys=client_keys,
                        known_hosts=known_hosts,
                        client_factory=lambda: watcher,
                        connect_timeout=target.timeout,
                        encryption_algs=_CIPHERS,
                        agent_path=None,
                        config=None,
                        preferred_auth=("publickey", "keyboard-interactive", "password")
                        if client_keys
                        else ("keyboard-interactive", "password"),
                        kbdint_auth=target.password is not None,
                        password_auth=target.password is not None,
                        public_key_auth=bool(client_keys),
                    )
                    if pin is None and not target.trust.insecure:
                        await self._first_contact(target, conn)
                    process = await conn.create_process(
                        term_type=self._term_type if self._pty else None,
                        term_size=TERM_SIZE if self._pty else None,
                        encoding="utf-8",
                        errors="replace",
                    )
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        session = AsyncsshSession(
            target,
            conn,
            process,
            on_close=self._sessions.discard,
            line_end="\r" if self._pty else "\n",
        )
        self._sessions.add(session)
        try:
            await session.start()
        except BaseException:
            await session.close()
            raise
        return session

    async def _first_contact(self, target: SshTarget, conn: asyncssh.SSHClientConnection) -> None:
        key = conn.get_server_host_key()
        if key is None:
            return
        seen = openssh_public_key(key)
        in_force = await self._first_use.remember(target.host, target.port, seen, target.trust)
        if in_force != seen:
            conn.close()
            raise _host_key_mismatch(target, in_force, key)

    async def close(self) -> None:
        """Close sessions their owners left open (bounded wait each) and forget loaded keys."""
        sessions = list(self._sessions)
        if sessions:
            await asyncio.gather(*(session.close() for session in sessions))
        self._keys.clear()


def _host_key_mismatch(
    target: SshTarget, pin: str | None, offered: asyncssh.SSHKey | None
) -> HostKeyMismatch:
    actual = openssh_public_key(offered) if offered is not None else "(unknown)"
    fingerprint = offered.get_fingerprint("sha256") if offered is not None else "unknown"
    return HostKeyMismatch(
        f"SSH host key changed (now {fingerprint}); nothing was sent. Accept it with "
        "`polyfleet inventory trust` if the change is expected",
        expected=pin or "(none)",
        actual=actual,
        host=target.host,
    )
