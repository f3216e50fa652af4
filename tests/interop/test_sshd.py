"""AsyncsshClient against OpenSSH's sshd with a forced command emulating the Group Series API
with documented replies only and no prompt: replies end at documented terminators (`status
end`, the `whoami` block's last line, error lines) or when the line goes idle."""

from __future__ import annotations

import dataclasses
import getpass
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from device_drivers.errors import AuthenticationFailed, HostKeyMismatch
from device_drivers.poly.parsing import gs_reply_complete
from device_drivers.transports import SshTarget, TrustPolicy
from device_drivers.transports.ssh import AsyncsshClient
from tests.interop.conftest import SSHD_SERIAL as SERIAL
from tests.interop.conftest import Sshd


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
        complete=gs_reply_complete,
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
        started = time.monotonic()
        assert await session.command("optionkey list") == "error: command not found\n"
        assert time.monotonic() - started < 1.0  # ended by the error line, not the idle wait
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


async def test_without_terminators_a_reply_ends_when_the_line_goes_idle(
    sshd: Sshd, client: AsyncsshClient
) -> None:
    target = dataclasses.replace(_target(sshd, TrustPolicy()), complete=None, idle=0.3)
    session = await client.open(target)  # the banner too ends by idle: there is no prompt
    try:
        assert f"Serial Number: {SERIAL}\n" in session.banner
        started = time.monotonic()
        assert (await session.command("status")).endswith("status end\n")
        assert 0.25 < time.monotonic() - started < 2.0
    finally:
        await session.close()
