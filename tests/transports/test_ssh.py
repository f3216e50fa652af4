"""AsyncsshClient against the simulated Group Series SSH API on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncssh
import pytest

from device_drivers.errors import (
    AuthenticationFailed,
    DeviceBusy,
    DeviceError,
    DeviceTimeout,
    DeviceUnreachable,
    HostKeyMismatch,
    MalformedReply,
)
from device_drivers.transports import SshTarget, TrustPolicy
from device_drivers.transports.ssh import (
    _OPEN_ERRORS,
    AsyncsshClient,
    _Attempt,
    _HostKeyWatcher,
    normalize_newlines,
)
from device_drivers.transports.translation import translated
from simulator import ssh_server
from simulator.ssh_server import SshServerHandle, start_ssh_servers
from simulator.state import SimDevice
from tests.simulator.test_ssh_server import PASSWORD, SECRET, USER, _gs


@pytest.fixture
async def fleet() -> AsyncIterator[tuple[list[SimDevice], SshServerHandle]]:
    devices = [_gs(f"82D00000{i:02d}", f"127.24.0.{i + 1}") for i in range(2)]
    handle = await start_ssh_servers(devices, port=0, portal_secret=SECRET)
    try:
        yield devices, handle
    finally:
        await handle.close()


@pytest.fixture
async def client() -> AsyncIterator[AsyncsshClient]:
    opened = AsyncsshClient()
    try:
        yield opened
    finally:
        await opened.close()


def _target(
    device: SimDevice, handle: SshServerHandle, trust: TrustPolicy | None = None, **extra: object
) -> SshTarget:
    options: dict[str, object] = {"user": USER, "password": PASSWORD, "timeout": 5.0}
    options.update(extra)
    return SshTarget(
        device.host,
        handle.ports[device.serial],
        trust=trust or TrustPolicy(insecure=True),
        **options,  # type: ignore[arg-type]
    )


async def test_login_banner_and_commands(
    fleet: tuple[list[SimDevice], SshServerHandle], client: AsyncsshClient
) -> None:
    devices, handle = fleet
    gs = devices[0]
    session = await client.open(_target(gs, handle))
    try:
        assert f"Serial Number: {gs.serial}\n" in session.banner
        assert session.banner.endswith("SNMP Enabled: True\n")
        assert "\r" not in session.banner
        status = await session.command("status")
        assert status.startswith("autoanswerp2p ")
        assert status.endswith("status end\n")
        listing = await session.command("optionkey list")
        assert "optionkey multipoint expired " in listing
        assert not listing.startswith("optionkey list")  # echo stripped
        assert await session.command("bogus") == "error: command not found\n"
        whoami = await session.command("whoami")
        assert f"Serial Number: {gs.serial}" in whoami
    finally:
        await session.close()


async def test_one_command_at_a_time_with_pacing(
    fleet: tuple[list[SimDevice], SshServerHandle], client: AsyncsshClient
) -> None:
    devices, handle = fleet
    session = await client.open(_target(devices[0], handle, pacing=0.2))
    try:
        started = time.monotonic()
        snmp, calls = await asyncio.gather(
            session.command("enablesnmp get"), session.command("getcallstate")
        )
        assert time.monotonic() - started >= 0.2
        assert snmp == "enablesnmp yes\n"
        assert calls.startswith("cs: call[0] inactive\n")
    finally:
        await session.close()


async def test_wrong_password_is_auth_failed(
    fleet: tuple[list[SimDevice], SshServerHandle], client: AsyncsshClient
) -> None:
    devices, handle = fleet
    with pytest.raises(AuthenticationFailed) as caught:
        await client.open(_target(devices[0], handle, password="guess-wrong"))
    assert "guess-wrong" not in str(caught.value)


async def test_host_key_pinned_on_first_use_then_enforced_before_auth(
    fleet: tuple[list[SimDevice], SshServerHandle],
    client: AsyncsshClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    devices, handle = fleet
    gs = devices[0]
    pins: list[str] = []

    async def remember(pin: str) -> None:
        pins.append(pin)

    first_use = TrustPolicy(on_first_use=remember)
    for _ in range(2):
        session = await client.open(_target(gs, handle, first_use))
        await session.close()
    assert len(pins) == 1  # reported once per run
    assert pins[0].startswith("ssh-ed25519 AAAA")

    pinned = TrustPolicy(pinned=pins[0])
    session = await client.open(_target(gs, handle, pinned))
    await session.close()

    passwords_seen: list[str] = []
    original = ssh_server._DeviceAuth.validate_password

    def spy(self: ssh_server._DeviceAuth, username: str, password: str) -> bool:
        passwords_seen.append(password)
        return original(self, username, password)

    monkeypatch.setattr(ssh_server._DeviceAuth, "validate_password", spy)
    gs.faults.ssh_host_key_changed = True
    for trust in (pinned, first_use):  # the run remembers the first-use pin as well
        with pytest.raises(HostKeyMismatch) as caught:
            await client.open(_target(gs, handle, trust))
        assert caught.value.expected == pins[0]
        assert caught.value.actual.startswith("ssh-ed25519 ")
        assert caught.value.actual != pins[0]
        assert "SHA256:" in str(caught.value)
    assert passwords_seen == []  # no password went to the impostor


async def test_silent_device_times_out_and_refused_port_is_unreachable(
    fleet: tuple[list[SimDevice], SshServerHandle], client: AsyncsshClient
) -> None:
    devices, handle = fleet
    gs = devices[1]
    gs.faults.unreachable = True  # accepts TCP, never speaks
    started = time.monotonic()
    with pytest.raises(DeviceTimeout) as caught:
        await client.open(_target(gs, handle, timeout=0.5))
    assert time.monotonic() - started < 20  # bounded by the timeout, whatever the load
    assert "auth" not in str(caught.value).lower()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = SshTarget("127.0.0.1", port, user=USER, password=PASSWORD, timeout=2)
    with pytest.raises(DeviceUnreachable, match="refused"):
        await client.open(target)


async def test_connection_lost_mid_command(
    fleet: tuple[list[SimDevice], SshServerHandle], client: AsyncsshClient
) -> None:
    devices, handle = fleet
    session = await client.open(_target(devices[1], handle))
    try:
        with pytest.raises(DeviceUnreachable):
            await session.command("reboot now")
    finally:
        await session.close()


async def test_slow_reply_is_a_timeout(
    fleet: tuple[list[SimDevice], SshServerHandle], client: AsyncsshClient
) -> None:
    devices, handle = fleet
    gs = devices[0]
    session = await client.open(_target(gs, handle, timeout=0.6))
    try:
        gs.faults.latency_s = 2.0
        with pytest.raises(DeviceTimeout, match="no SSH prompt"):
            await session.command("getcallstate")
    finally:
        gs.faults.latency_s = 0.0
        await session.close()


def test_newlines_and_backspaces_are_normalised() -> None:
    assert normalize_newlines("a\r\r\nb\r\nc\r") == "a\nb\nc"
    assert normalize_newlines("stat\b\b\b\bstatus\r\nok\r\n") == "status\nok\n"


async def test_a_timed_out_session_is_closed_and_a_new_one_works(
    fleet: tuple[list[SimDevice], SshServerHandle], client: AsyncsshClient
) -> None:
    devices, handle = fleet
    gs = devices[0]
    session = await client.open(_target(gs, handle, timeout=0.5))
    gs.faults.latency_s = 1.0
    with pytest.raises(DeviceTimeout):
        await session.command("status")
    gs.faults.latency_s = 0.0
    with pytest.raises(DeviceUnreachable, match="closed"):
        await session.command("status")
    fresh = await client.open(_target(gs, handle))
    try:
        assert (await fresh.command("enablesnmp get")) == "enablesnmp yes\n"
    finally:
        await fresh.close()


async def test_without_a_pty_lines_end_in_lf(
    fleet: tuple[list[SimDevice], SshServerHandle],
) -> None:
    devices, handle = fleet
    plain = AsyncsshClient(pty=False)
    session = await plain.open(_target(devices[1], handle))
    try:
        assert await session.command("enablesnmp get") == "enablesnmp yes\n"
    finally:
        await plain.close()  # closes the session its owner left open
    with pytest.raises(DeviceUnreachable, match="closed"):
        await session.command("enablesnmp get")


async def test_a_timeout_after_connect_returned_leaves_no_connection_open(
    fleet: tuple[list[SimDevice], SshServerHandle],
    client: AsyncsshClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`asyncssh.connect` has returned, then the time runs out while the shell channel opens:
    the connection must be closed, not left to the server's idle timeout (issue 11)."""
    devices, handle = fleet
    opened: list[asyncssh.SSHClientConnection] = []
    real_connect = asyncssh.connect

    async def counting_connect(*args: Any, **kwargs: Any) -> asyncssh.SSHClientConnection:
        conn = await real_connect(*args, **kwargs)
        opened.append(conn)
        return conn

    async def stalled_channel(self: object, *args: object, **kwargs: object) -> None:
        await asyncio.sleep(60)

    monkeypatch.setattr(asyncssh, "connect", counting_connect)
    monkeypatch.setattr(asyncssh.SSHClientConnection, "create_process", stalled_channel)
    for _ in range(3):
        with pytest.raises(DeviceTimeout):
            await client.open(_target(devices[0], handle, timeout=0.5))
    assert len(opened) == 3  # each attempt got as far as a connection

    async def closes(conn: asyncssh.SSHClientConnection) -> bool:
        try:
            async with asyncio.timeout(2.0):  # closing is a message exchange: allow for it
                await conn.wait_closed()
        except TimeoutError:
            return False
        return True

    still_open = [conn for conn in opened if not await closes(conn)]
    assert still_open == []


@pytest.mark.parametrize(
    ("raised", "expected", "said"),
    [
        (asyncssh.PermissionDenied("no"), AuthenticationFailed, "as 'admin' rejected"),
        (
            asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, "busy"),
            DeviceBusy,
            "refused an SSH session (busy); retry later",
        ),
        (TimeoutError(), DeviceTimeout, "took over 3 s"),
        (ConnectionRefusedError(), DeviceUnreachable, "192.0.2.9:2222 refused"),
        (asyncssh.ProtocolError("bad packet"), MalformedReply, "protocol error from"),
        (asyncssh.ConnectionLost("reset by peer"), DeviceUnreachable, "failed: reset by peer"),
        (OSError(113, "No route to host"), DeviceUnreachable, "failed: No route to host"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else None,
)
def test_a_library_error_while_opening_becomes_one_device_error(
    raised: BaseException, expected: type[DeviceError], said: str
) -> None:
    """What the technician reads and what the scan does next (retry a busy device, never
    bad credentials) follow from the one translation of asyncssh's exception."""
    target = SshTarget("192.0.2.9", 2222, user="admin", timeout=3.0)
    attempt = _Attempt(target, None, _HostKeyWatcher())
    with pytest.raises(DeviceError) as caught, translated(_OPEN_ERRORS, attempt):
        raise raised
    assert type(caught.value) is expected
    assert said in caught.value.message
    assert (caught.value.host, caught.value.__cause__) == ("192.0.2.9", raised)
    assert caught.value.retryable is (expected in (DeviceBusy, DeviceTimeout))


def test_an_error_that_is_no_library_error_is_not_translated() -> None:
    attempt = _Attempt(SshTarget("192.0.2.9"), None, _HostKeyWatcher())
    with pytest.raises(KeyError), translated(_OPEN_ERRORS, attempt):
        raise KeyError("a bug stays a bug")
