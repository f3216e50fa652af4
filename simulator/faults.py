"""Fault injection for the simulated fleet: which devices misbehave, and how the HTTPS faces do it.

A fault plan comes from `--faults`, e.g. `unreachable=5%,slow=10%,busy@0004F2AABBCC,latency=0.5`:
`NAME=N%` picks a share of the networked devices, `NAME=N` a count, `NAME@SERIAL` one device,
and `latency=SECONDS` sets the delay of `slow`. Picks are deterministic for a seed. The SNMP and
SSH faces read the same `SimFaults` flags (`snmp_every_other`, `ssh_host_key_changed`).

On HTTPS: `unreachable` binds nothing (switched on at run time, it holds requests unanswered);
`slow` delays every request and doubles the delay on a new connection; `flapping` drops every
second request without an answer; `busy` and `wrong_credentials` are answered by each
personality in its own way (4001 / 403 / 401); `malformed_json` breaks JSON bodies; `truncated`
announces the full length and sends half; `tls_cert_changed` presents another certificate;
`license_api_absent` answers the modeled license-read route with 404 (firmware that lacks it:
the device is reached and identified, its license state cannot be read).
"""

from __future__ import annotations

import asyncio
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Middleware

from simulator.errors import SimulatorError
from simulator.state import SimDevice

FAULT_NAMES: tuple[str, ...] = (
    "unreachable",
    "slow",
    "flapping",
    "wrong_credentials",
    "busy",
    "malformed_json",
    "truncated",
    "tls_cert_changed",
    "ssh_host_key_changed",
    "snmp_every_other",
    "license_api_absent",
)
DEFAULT_LATENCY_S = 1.0
MAX_LATENCY_S = 60.0
HANG_S = 300.0
"""How long an 'unreachable' device holds a request it received before dropping it."""
_SEEN_PEERS = 4096


class FaultSpecError(SimulatorError, ValueError):
    """A `--faults` value that cannot be used; the message names the bad part."""


@dataclass(slots=True)
class FaultPlan:
    """Parsed `--faults`: shares of the fleet, explicit serials, and the `slow` latency."""

    shares: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    serials: dict[str, set[str]] = field(default_factory=dict)
    latency_s: float = DEFAULT_LATENCY_S


def _fault_name(text: str) -> str:
    name = text.strip().lower().replace("-", "_")
    if name not in FAULT_NAMES:
        raise FaultSpecError(f"{text!r}: unknown fault (known: {', '.join(FAULT_NAMES)})")
    return name


def parse_faults(text: str) -> FaultPlan:
    """Parse a `--faults` value (see module docstring)."""
    plan = FaultPlan()
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        if "@" in part:
            name, _, serial = part.partition("@")
            if not serial.strip():
                raise FaultSpecError(f"{part!r}: serial missing after '@'")
            plan.serials.setdefault(serial.strip().upper(), set()).add(_fault_name(name))
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise FaultSpecError(f"{part!r}: expected NAME=N%, NAME=N or NAME@SERIAL")
        value = value.strip()
        if name.strip().lower() == "latency":
            try:
                plan.latency_s = float(value.removesuffix("s"))
            except ValueError:
                raise FaultSpecError(f"{part!r}: latency must be a number of seconds") from None
            if not 0 <= plan.latency_s <= MAX_LATENCY_S:
                raise FaultSpecError(f"{part!r}: latency must be 0..{MAX_LATENCY_S:g} s")
            continue
        fault = _fault_name(name)
        try:
            if value.endswith("%"):
                share = float(value[:-1])
                if not 0 <= share <= 100:
                    raise ValueError
                plan.shares[fault] = share
            else:
                count = int(value)
                if count < 0:
                    raise ValueError
                plan.counts[fault] = count
        except ValueError:
            raise FaultSpecError(f"{part!r}: expected a percentage 0-100% or a count") from None
    return plan


WRONG_PASSWORD_SUFFIX = "-rotated"
"""wrong_credentials: the device was reconfigured, so the fleet profile's password no longer fits
(the SNMP face applies the same suffix to its community and v3 keys)."""


def set_fault(device: SimDevice, name: str, *, latency_s: float = DEFAULT_LATENCY_S) -> None:
    """Switch one fault on for a device."""
    if name == "slow":
        device.faults.latency_s = latency_s
    elif name in FAULT_NAMES:
        setattr(device.faults, name, True)
    else:
        raise FaultSpecError(f"unknown fault {name!r}")


def accepted_http_password(device: SimDevice) -> str:
    """The HTTP password the device accepts right now (differs under wrong_credentials)."""
    password = device.credentials.http_password
    return password + WRONG_PASSWORD_SUFFIX if device.faults.wrong_credentials else password


_PROTOCOL_FAULTS: dict[str, str] = {
    "malformed_json": "https_port",
    "truncated": "https_port",
    "tls_cert_changed": "https_port",
    "ssh_host_key_changed": "ssh_port",
    "snmp_every_other": "snmp_port",
    "license_api_absent": "https_port",
}


def can_have(device: SimDevice, name: str) -> bool:
    """Networked devices can have any fault, protocol faults only if they serve that protocol."""
    if device.mac is None or not device.host:
        return False
    port_field = _PROTOCOL_FAULTS.get(name)
    return port_field is None or getattr(device, port_field) is not None


def apply_faults(devices: Sequence[SimDevice], plan: FaultPlan, seed: int) -> dict[str, int]:
    """Apply the plan; a share counts the devices that can have the fault (see `can_have`).

    Returns how many devices got each fault.
    """
    rng = random.Random(f"faults-{seed}")
    applied: dict[str, int] = {}
    for name in FAULT_NAMES:
        if name not in plan.shares and name not in plan.counts:
            continue
        candidates = [d for d in devices if can_have(d, name)]
        wanted = plan.counts.get(name, round(len(candidates) * plan.shares.get(name, 0.0) / 100))
        for device in rng.sample(candidates, min(wanted, len(candidates))):
            set_fault(device, name, latency_s=plan.latency_s)
            applied[name] = applied.get(name, 0) + 1
    by_serial = {d.serial.upper(): d for d in devices}
    unknown = sorted(set(plan.serials) - set(by_serial))
    if unknown:
        raise FaultSpecError(f"no device with serial {', '.join(unknown)}")
    for serial, names in sorted(plan.serials.items()):
        for name in sorted(names):
            set_fault(by_serial[serial], name, latency_s=plan.latency_s)
            applied[name] = applied.get(name, 0) + 1
    return applied


def refuse_if_license_api_absent(device: SimDevice) -> None:
    """Answer a modeled license-read route as firmware without it does: aiohttp's own 404
    for a route it does not know."""
    if device.faults.license_api_absent:
        raise web.HTTPNotFound()


DeviceResolver = Callable[[web.Request], SimDevice]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _drop(request: web.Request) -> web.Response:
    """Cut the connection without an answer (what a flapping or vanished device looks like)."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=444)


def malformed(body: bytes) -> bytes:
    """Turn a JSON body into text no JSON parser accepts, keeping its start recognisable."""
    return body[:-1] + b",,}" if body else b"{"


async def _truncated(request: web.Request, response: web.Response) -> web.StreamResponse:
    """Announce the full length, send half the body, then close: a reply cut off mid-way."""
    body = response.body if isinstance(response.body, bytes) else b""
    stream = web.StreamResponse(status=response.status)
    stream.content_type = response.content_type
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.close()
    return stream


def fault_middleware(resolve: DeviceResolver) -> Middleware:
    """aiohttp middleware applying the resolved device's faults to every request it serves."""
    flap_counts: dict[str, int] = {}
    seen_peers: dict[str, OrderedDict[object, None]] = {}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        device = resolve(request)
        faults = device.faults
        if faults.unreachable:
            await asyncio.sleep(HANG_S)
            return _drop(request)
        if faults.flapping:
            flap_counts[device.serial] = flap_counts.get(device.serial, 0) + 1
            if flap_counts[device.serial] % 2 == 0:
                return _drop(request)
        if faults.latency_s > 0:
            delay = min(faults.latency_s, MAX_LATENCY_S)
            peers = seen_peers.setdefault(device.serial, OrderedDict())
            peer = request.transport.get_extra_info("peername") if request.transport else None
            if peer not in peers:
                # A new connection: the slow device also takes its time over the handshake.
                peers[peer] = None
                if len(peers) > _SEEN_PEERS:
                    peers.popitem(last=False)
                delay *= 2
            await asyncio.sleep(delay)
        response = await handler(request)
        if not isinstance(response, web.Response):
            return response
        if faults.malformed_json and response.content_type == "application/json":
            body = response.body if isinstance(response.body, bytes) else b""
            response.body = malformed(body)
        if faults.truncated:
            return await _truncated(request, response)
        return response

    return middleware
