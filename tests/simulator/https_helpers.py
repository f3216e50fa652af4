"""Helpers for the HTTPS-face tests: a small fleet on 127.0.0.1, URLs, curl without blocking."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import aiohttp

from simulator.context import FleetSecrets
from simulator.contracts import ContractKind, SimContract
from simulator.fleet import generate_fleet
from simulator.runner import RunningFleet, run_fleet
from simulator.state import SimDevice

TODAY = datetime.now(UTC).date()
CURL_TIMEOUT_S = 10.0


def small_fleet(mix: dict[str, int], count: int = 6, seed: int = 11) -> list[SimDevice]:
    """A deterministic handful of devices of the given families."""
    return generate_fleet(count, mix, seed=seed)


def contract_for(
    serials: Sequence[str], *, kind: ContractKind = ContractKind.SUPPORT, lapsed: bool = False
) -> SimContract:
    """An active (or lapsed) contract for the given serials."""
    end = TODAY - timedelta(days=10) if lapsed else TODAY + timedelta(days=200)
    return SimContract(
        "C-TEST-1" if not lapsed else "C-TEST-OLD",
        kind,
        end - timedelta(days=365),
        end,
        frozenset(serials),
    )


@asynccontextmanager
async def fleet_on_loopback(
    devices: list[SimDevice], contracts: Sequence[SimContract] = ()
) -> AsyncIterator[RunningFleet]:
    """Start the HTTPS faces, portal and provisioning server on 127.0.0.1 (no SNMP/SSH)."""
    async with run_fleet(
        devices,
        secrets=FleetSecrets.generate(),
        contracts=contracts,
        loopback_only=True,
        snmp=False,
        ssh=False,
    ) as fleet:
        yield fleet


def base_url(fleet: RunningFleet, serial: str) -> str:
    """`https://127.0.0.1:<port>` of a device."""
    endpoint = fleet.endpoint(serial)
    return f"https://{endpoint.host}:{endpoint.https_port}"


def insecure_session(timeout_s: float = 5.0) -> aiohttp.ClientSession:
    """Self-signed device certificates: the tests do not verify them (pinning is tested apart).

    Devices are addressed by IP, so the cookie jar must accept cookies from IP hosts (VideoOS).
    """
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=False),
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        timeout=aiohttp.ClientTimeout(total=timeout_s),
    )


@dataclass(frozen=True, slots=True)
class CurlResult:
    """Exit code, body and stderr of one curl run."""

    returncode: int
    stdout: str
    stderr: str


async def curl(*args: str) -> CurlResult:
    """Run curl as a subprocess without blocking the loop the simulator serves from."""
    process = await asyncio.create_subprocess_exec(
        "curl",
        "--silent",
        "--show-error",
        "--insecure",
        "--max-time",
        "5",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), CURL_TIMEOUT_S)
    return CurlResult(process.returncode or 0, out.decode(), err.decode())


async def certificate_fingerprint(host: str, port: int) -> str:
    """SHA-256 of the certificate a server presents (no verification)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    _reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=ctx), timeout=5
    )
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True)
    finally:
        writer.close()
    return hashlib.sha256(der).hexdigest()


def days_from_today(days: int) -> date:
    """A date relative to today."""
    return TODAY + timedelta(days=days)
