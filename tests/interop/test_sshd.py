"""AsyncsshClient against OpenSSH's sshd with a forced command emulating the Group Series API."""

from __future__ import annotations

import getpass
import os
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from device_drivers.errors import AuthenticationFailed, HostKeyMismatch
from device_drivers.transports import SshTarget, TrustPolicy
from device_drivers.transports.ssh import AsyncsshClient
from tests.interop.conftest import (
    FIXTURES,
    Peer,
    free_port,
    require_binary,
    run_peer,
    tcp_ready,
    wait_until,
)

GS_SCRIPT = FIXTURES / "gs_api.py"
SERIAL = "82A7000042"


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


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
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


@pytest.fixture
async def client() -> AsyncIterator[AsyncsshClient]:
    opened = AsyncsshClient()
    try:
        yield opened
    finally:
        await opened.close()


def _target(sshd: Sshd, trust: TrustPolicy, key: Path | None = None) -> SshTarget:
    return SshTarget(
        "127.0.0.1",
        sshd.peer.port,
        user=getpass.getuser(),
        key_file=str(key or sshd.client_key),
        trust=trust,
        timeout=8.0,
    )


async def test_key_login_pin_on_first_use_and_commands(
    sshd: Sshd, client: AsyncsshClient, tmp_path: Path
) -> None:
    pins: list[str] = []

    async def remember(pin: str) -> None:
        pins.append(pin)

    session = await client.open(_target(sshd, TrustPolicy(on_first_use=remember)))
    try:
        assert pins == [sshd.host_key]
        assert f"Serial Number: {SERIAL}\n" in session.banner
        assert "\r" not in session.banner
        status = await session.command("status")
        assert status == ("ipnetwork online\nsipserver online\nprovisioning offline\nstatus end\n")
        assert "optionkey multipoint active 2027-11-30\n" in await session.command("optionkey list")
        assert f"Serial Number: {SERIAL}\n" in await session.command("whoami")
        assert await session.command("bogus") == "error: command not found\n"
    finally:
        await session.close()


async def test_pinned_host_key_and_key_loaded_once(
    sshd: Sshd, client: AsyncsshClient, tmp_path: Path
) -> None:
    key_copy = tmp_path / "client-copy"
    key_copy.write_bytes(sshd.client_key.read_bytes())
    key_copy.chmod(0o600)
    target = _target(sshd, TrustPolicy(pinned=sshd.host_key), key=key_copy)
    first = await client.open(target)
    await first.close()
    key_copy.unlink()  # the parsed key object is reused: the file is not read again
    second = await client.open(target)
    try:
        assert "SNMP Enabled: True" in await second.command("whoami")
    finally:
        await second.close()


async def test_changed_host_key_fails_before_auth(sshd: Sshd, client: AsyncsshClient) -> None:
    impostor_pin = " ".join(sshd.other_key.with_suffix(".pub").read_text().split()[:2])
    with pytest.raises(HostKeyMismatch) as caught:
        await client.open(_target(sshd, TrustPolicy(pinned=impostor_pin)))
    assert caught.value.expected == impostor_pin
    assert caught.value.actual == sshd.host_key
    this_connection = sshd.peer.output().split("Connection from")[-1]
    assert "publickey" not in this_connection  # no key was even offered to the impostor


async def test_unknown_key_is_auth_failed(sshd: Sshd, client: AsyncsshClient) -> None:
    with pytest.raises(AuthenticationFailed):
        await client.open(_target(sshd, TrustPolicy(pinned=sshd.host_key), key=sshd.other_key))
