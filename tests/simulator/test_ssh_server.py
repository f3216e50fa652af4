"""The simulated Group Series SSH API, driven by OpenSSH (`ssh` + `sshpass`) and asyncssh."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncssh
import pytest

from simulator.activation_keys import issue_key
from simulator.gs_commands import (
    ERR_BUSY,
    ERR_MORE_PARAMS,
    ERR_NOT_FOUND,
    ERR_NOT_SUPPORTED,
    PROMPT,
    GsCommandInterpreter,
)
from simulator.ssh_server import SshServerHandle, start_ssh_servers
from simulator.state import LicenseState, SimDevice, SimLicense

SECRET = b"test-portal-secret-0123456789abcdef"
USER, PASSWORD = "admin", "s3cret-pw"
WHOAMI_LABELS = (
    "Hi, my name is : ",
    "Model: ",
    "Software Version: ",
    "Build Information: ",
    "Serial Number: ",
    "SNMP Enabled: ",
)


def _gs(serial: str, host: str) -> SimDevice:
    device = SimDevice(
        serial=serial,
        mac="0004f2" + serial[-6:].lower(),
        model="Group Series 500",
        family="gs",
        firmware="6.2.2.8-460003",
        host=host,
        system_name=f"room-{serial[-4:].lower()}",
        site="hq-berlin",
        licenses={
            "multipoint": SimLicense(
                "multipoint", LicenseState.EXPIRED, datetime.now(UTC) - timedelta(days=3)
            ),
        },
    )
    device.credentials.ssh_user = USER
    device.credentials.ssh_password = PASSWORD
    return device


@pytest.fixture
async def fleet() -> AsyncIterator[tuple[list[SimDevice], SshServerHandle]]:
    devices = [_gs(f"82C00000{i:02d}", f"127.23.0.{i + 1}") for i in range(3)]
    handle = await start_ssh_servers(devices, port=0, portal_secret=SECRET)
    try:
        yield devices, handle
    finally:
        await handle.close()


def _openssh(device: SimDevice, port: int, *extra: str, password: str = PASSWORD) -> list[str]:
    return [
        "sshpass",
        "-p",
        password,
        "ssh",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=5",
        "-p",
        str(port),
        f"{USER}@{device.host}",
        *extra,
    ]


async def _run(argv: list[str], stdin: bytes | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 20)
    return proc.returncode or 0, out.decode(), err.decode()


@contextlib.asynccontextmanager
async def _connect(
    device: SimDevice, handle: SshServerHandle, password: str = PASSWORD, wait: float = 5.0
) -> AsyncIterator[asyncssh.SSHClientConnection]:
    async with asyncssh.connect(
        device.host,
        handle.ports[device.serial],
        username=USER,
        password=password,
        known_hosts=None,
        connect_timeout=wait,
    ) as conn:
        yield conn


async def _read_until(stream: asyncssh.SSHReader[str], marker: str) -> str:
    """Read until `marker` appears; bounded by a 5 s deadline."""
    buffer = ""
    async with asyncio.timeout(5):
        while marker not in buffer:
            chunk = await stream.read(4096)
            if not chunk:
                break
            buffer += chunk
    return buffer


async def test_openssh_exec_whoami(fleet: tuple[list[SimDevice], SshServerHandle]) -> None:
    devices, handle = fleet
    gs = devices[0]
    rc, out, err = await _run(_openssh(gs, handle.ports[gs.serial], "whoami"))
    assert rc == 0, err
    assert out.endswith("SNMP Enabled: True\r\n")
    lines = out.split("\r\n")
    for label in WHOAMI_LABELS:
        assert any(line.startswith(label) for line in lines), label
    assert f"Serial Number: {gs.serial}" in lines
    assert "Model: Group Series 500" in lines
    assert "Software Version: 6.2.2.8-460003" in lines
    assert f"Hi, my name is : {gs.system_name}" in lines


async def test_openssh_interactive_session(
    fleet: tuple[list[SimDevice], SshServerHandle],
) -> None:
    devices, handle = fleet
    gs = devices[0]
    script = (
        "status\n"
        "systemsetting sipregistrarserver sip2.example.invalid\n"
        "systemsetting get sipregistrarserver\n"
        "systemsetting get\n"
        "systemsetting get nosuchsetting\n"
        "enablesnmp get\n"
        "getcallstate\n"
        "bogus\n"
        "exit\n"
    )
    rc, out, err = await _run(_openssh(gs, handle.ports[gs.serial]), stdin=script.encode())
    assert rc == 0, err
    banner, *replies = out.split(PROMPT)
    assert "SNMP Enabled: True\r\n" in banner
    assert replies[0].startswith("autoanswerp2p ")
    assert replies[0].endswith("status end\r\n")
    assert "ipnetwork online\r\n" in replies[0]
    assert replies[1:9] == [
        "systemsetting sipregistrarserver sip2.example.invalid\r\n",
        "systemsetting sipregistrarserver sip2.example.invalid\r\n",
        ERR_MORE_PARAMS + "\r\n",
        ERR_NOT_SUPPORTED + "\r\n",
        "enablesnmp yes\r\n",
        "cs: call[0] inactive\r\ncs: call[1] inactive\r\ncs: call[2] inactive\r\n",
        ERR_NOT_FOUND + "\r\n",
        "",  # `exit` closes without a reply
    ]


async def test_asyncssh_option_keys(fleet: tuple[list[SimDevice], SshServerHandle]) -> None:
    devices, handle = fleet
    gs, other = devices[0], devices[1]
    today = datetime.now(UTC).date()
    good = issue_key(SECRET, gs.serial, "multipoint", today + timedelta(days=365))
    for_other = issue_key(SECRET, other.serial, "multipoint", today + timedelta(days=365))
    tampered = good[:-1] + ("0" if good[-1] != "0" else "1")
    forged = issue_key(b"not-the-portal-secret", gs.serial, "multipoint", date(2099, 1, 1))
    expired = issue_key(SECRET, gs.serial, "multipoint", today - timedelta(days=1))
    async with _connect(gs, handle) as conn:
        refusals = {}
        for name, key in [
            ("garbage", "NOT-A-KEY"),
            ("other", for_other),
            ("tampered", tampered),
            ("forged", forged),
            ("expired", expired),
        ]:
            result = await conn.run(f"optionkey apply {key}", timeout=5)
            refusals[name] = (result.exit_status, result.stdout)
        assert refusals == {
            "garbage": (1, "error: invalid option key\r\n"),
            "other": (1, "error: option key is for another system\r\n"),
            "tampered": (1, "error: invalid option key\r\n"),
            "forged": (1, "error: invalid option key\r\n"),
            "expired": (1, "error: option key has expired\r\n"),
        }
        assert gs.licenses["multipoint"].state is LicenseState.EXPIRED

        process = await conn.create_process()
        assert "SNMP Enabled: True\r\n" in await _read_until(process.stdout, PROMPT)
        process.stdin.write("optionkey list\n")
        listing = await _read_until(process.stdout, PROMPT)
        assert "optionkey multipoint expired " in listing
        assert "optionkey 1080p missing none\r\n" in listing
        process.stdin.write(f"optionkey apply {good}\n")
        applied = await _read_until(process.stdout, PROMPT)
        expiry = (today + timedelta(days=365)).isoformat()
        assert applied == f"optionkey multipoint active {expiry}\r\n{PROMPT}"
        process.stdin.write("optionkey list\n")
        assert f"optionkey multipoint active {expiry}\r\n" in await _read_until(
            process.stdout, PROMPT
        )
        process.stdin.write("exit\n")
        await asyncio.wait_for(process.wait_closed(), 5)
    assert gs.licenses["multipoint"].state.value == "active"
    assert gs.licenses["multipoint"].key == good


async def test_wrong_password_and_wrong_credentials_fault(
    fleet: tuple[list[SimDevice], SshServerHandle],
) -> None:
    devices, handle = fleet
    gs = devices[0]
    with pytest.raises(asyncssh.PermissionDenied):
        async with _connect(gs, handle, password="guess"):
            pass
    rc, _, _ = await _run(_openssh(gs, handle.ports[gs.serial], "whoami", password="guess"))
    assert rc != 0
    gs.faults.wrong_credentials = True  # the device no longer matches the fleet's profile
    with pytest.raises(asyncssh.PermissionDenied):
        async with _connect(gs, handle):
            pass


async def test_host_key_changed_fault(
    fleet: tuple[list[SimDevice], SshServerHandle], tmp_path: Path
) -> None:
    devices, handle = fleet
    gs, neighbour = devices[0], devices[1]
    port = handle.ports[gs.serial]

    async def fingerprint(device: SimDevice) -> str:
        async with _connect(device, handle) as conn:
            key = conn.get_server_host_key()
            assert key is not None
            return str(key.get_fingerprint())

    first = await fingerprint(gs)
    assert await fingerprint(gs) == first  # stable: generated once, reused
    assert await fingerprint(neighbour) != first  # per device
    rc, scanned, _ = await _run(["ssh-keyscan", "-T", "5", "-p", str(port), gs.host])
    assert rc == 0
    assert f"[{gs.host}]:{port} ssh-ed25519 " in scanned
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(scanned)

    gs.faults.ssh_host_key_changed = True
    assert await fingerprint(gs) != first
    pinned = _openssh(gs, port, "whoami")
    pinned[pinned.index("StrictHostKeyChecking=no")] = "StrictHostKeyChecking=yes"
    pinned[pinned.index("UserKnownHostsFile=/dev/null")] = f"UserKnownHostsFile={known_hosts}"
    pinned[pinned.index("LogLevel=ERROR")] = "LogLevel=INFO"
    rc, out, err = await _run(pinned)
    assert rc == 255
    assert "HOST IDENTIFICATION HAS CHANGED" in err
    assert "Serial Number" not in out


async def test_unreachable_busy_and_latency_faults(
    fleet: tuple[list[SimDevice], SshServerHandle],
) -> None:
    devices, handle = fleet
    silent, busy, slow = devices
    silent.faults.unreachable = True
    with pytest.raises((TimeoutError, asyncssh.Error, OSError)):
        async with _connect(silent, handle, wait=0.5):
            pass
    silent.faults.unreachable = False
    silent.faults.flapping = True  # every other connection is cut before the banner
    outcomes = []
    for _ in range(4):
        try:
            async with _connect(silent, handle) as conn:
                outcomes.append(bool((await conn.run("whoami", timeout=5)).stdout))
        except (asyncssh.Error, OSError):
            outcomes.append(False)
    assert outcomes in ([True, False, True, False], [False, True, False, True])
    busy.faults.busy = True
    async with _connect(busy, handle) as conn:
        result = await conn.run("whoami", timeout=5)
        assert result.stdout == ERR_BUSY + "\r\n"
    slow.faults.latency_s = 0.3
    started = time.monotonic()
    rc, out, err = await _run(_openssh(slow, handle.ports[slow.serial], "getcallstate"))
    assert rc == 0, err
    assert out.startswith("cs: call[0] inactive\r\n")
    assert time.monotonic() - started >= 0.6  # banner and reply both delayed


async def test_reboot_now_drops_the_session(
    fleet: tuple[list[SimDevice], SshServerHandle],
) -> None:
    devices, handle = fleet
    gs = devices[2]
    gs.boot_time = 1000.0
    async with _connect(gs, handle) as conn:
        process = await conn.create_process()
        await _read_until(process.stdout, PROMPT)
        process.stdin.write("reboot now\n")
        await asyncio.wait_for(conn.wait_closed(), 5)
    assert gs.boot_time > time.time() - 60


async def test_busy_port_falls_back_to_a_per_device_port() -> None:
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.23.1.1", 0))
    blocker.listen(1)
    taken = blocker.getsockname()[1]
    gs = _gs("82C0000099", "127.23.1.1")
    handle = await start_ssh_servers([gs], port=taken, portal_secret=SECRET)
    try:
        assert handle.ports[gs.serial] != taken
        async with _connect(gs, handle) as conn:
            assert "Serial Number: 82C0000099" in str((await conn.run("whoami", timeout=5)).stdout)
    finally:
        blocker.close()
        await handle.close()


def test_interpreter_errors_without_io() -> None:
    gs = _gs("82C0000042", "127.23.2.1")
    interp = GsCommandInterpreter(gs, SECRET, clock=lambda: 5000.0)
    assert interp.execute("").lines == []
    assert interp.execute("reboot").lines == [ERR_MORE_PARAMS]
    assert interp.execute("systemsetting").lines == [ERR_MORE_PARAMS]
    assert interp.execute("optionkey apply").lines == [ERR_MORE_PARAMS]
    assert interp.execute("enablesnmp no").lines == [
        "command is not available in current system configuration"
    ]
    renamed = interp.execute('systemsetting systemname "Board Room"')
    assert renamed.lines == ["systemsetting systemname Board Room"]
    assert gs.system_name == "Board Room"
    interp.execute("systemsetting sipregistrarserver sip.example.org")
    assert gs.config["sipregistrarserver"] == "sip.example.org"
    assert interp.execute("exit").close
    rebooted = interp.execute("reboot now")
    assert rebooted.rebooted
    assert gs.boot_time == 5000.0
    assert interp.banner().endswith("SNMP Enabled: True\r\n")
