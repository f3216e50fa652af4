"""Runs a simulated fleet: device faces (HTTPS here, SNMP and SSH from their modules), the
licensing portal and the provisioning server, in this process or spread over worker processes.

`run_fleet` is the in-process API for tests, the demo and benchmarks; `polyfleet simulate`
(simulator/cli.py) wraps it. Large fleets are split over a few spawned workers so one core's
worth of Python is not the limit; device state then lives in the workers and `snapshot()` asks
them for it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import os
import resource
import signal
import time
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection, wait
from typing import Any

from aiohttp import web

from simulator import infra_rest, provisioning, uc_phone, videoos
from simulator.context import FleetSecrets
from simulator.contracts import SimContract
from simulator.https_face import HttpsFaces
from simulator.persistence import apply_device_state, devices_state
from simulator.portal import Portal
from simulator.portal import create_app as create_portal_app
from simulator.state import SimDevice
from simulator.tls import CertificateFactory

log = logging.getLogger(__name__)

DEVICES_PER_WORKER = 200
MAX_WORKERS = 4
WORKER_START_TIMEOUT_S = 120.0
WORKER_REPLY_TIMEOUT_S = 30.0
_MAX_UPTIME_S = 40 * 86_400

_PERSONALITIES: dict[str, tuple[str, Callable[[bytes], web.Application]]] = {
    "vvx": ("uc", uc_phone.create_app),
    "trio": ("uc", uc_phone.create_app),
    "ccx": ("uc", uc_phone.create_app),
    "studiox": ("videoos", videoos.create_app),
    "dma": ("infra", infra_rest.create_app),
    "rprm": ("infra", infra_rest.create_app),
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one device answers; None where it does not serve that protocol."""

    serial: str
    host: str
    https_port: int | None = None
    snmp_port: int | None = None
    ssh_port: int | None = None


def auto_workers(count: int) -> int:
    """One process up to 200 devices, then one per 200 up to a few (the machine has 2 cores)."""
    if count <= DEVICES_PER_WORKER:
        return 1
    return min(MAX_WORKERS, max(2, os.cpu_count() or 2), math.ceil(count / DEVICES_PER_WORKER))


def raise_fd_limit() -> None:
    """Each device needs a socket per protocol; lift the soft fd limit (often 1024) to the hard."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit above %d", soft)


class DeviceServers:
    """Every protocol face of a set of devices inside the current event loop."""

    def __init__(self, seed: int, portal_secret: bytes) -> None:
        raise_fd_limit()
        self._tls = CertificateFactory(seed)
        self._secret = portal_secret
        self._https = HttpsFaces(self._tls)
        self._handles: list[Any] = []
        self.endpoints: dict[str, Endpoint] = {}

    async def start(
        self, devices: Sequence[SimDevice], *, port: int | None, snmp: bool, ssh: bool
    ) -> None:
        """Bind every face; `port` (e.g. 0) overrides the real ports for tests."""
        for personality in ("uc", "videoos", "infra"):
            members = [d for d in devices if _PERSONALITIES.get(d.family, ("",))[0] == personality]
            if members:
                factory = partial(_PERSONALITIES[members[0].family][1], self._secret)
                await self._https.add(personality, factory, members, port=port)
        snmp_ports: dict[str, int] = {}
        ssh_ports: dict[str, int] = {}
        if snmp:
            from simulator.snmp_agent import start_snmp_agent

            snmp_handle = await start_snmp_agent(devices, port=port)
            self._handles.append(snmp_handle)
            snmp_ports = snmp_handle.ports
        if ssh:
            from simulator.ssh_server import start_ssh_servers

            ssh_handle = await start_ssh_servers(devices, port=port, portal_secret=self._secret)
            self._handles.append(ssh_handle)
            ssh_ports = ssh_handle.ports
        for device in devices:
            bound = self._https.bound.get(device.serial)
            self.endpoints[device.serial] = Endpoint(
                serial=device.serial,
                host=device.host,
                https_port=bound.port if bound else None,
                snmp_port=snmp_ports.get(device.serial),
                ssh_port=ssh_ports.get(device.serial),
            )

    async def close(self) -> None:
        """Stop every face."""
        for handle in reversed(self._handles):
            await handle.close()
        self._handles.clear()
        await self._https.close()
        self._tls.close()


# --- worker processes ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _WorkerJob:
    devices: list[SimDevice]
    seed: int
    portal_secret: bytes
    port: int | None
    snmp: bool
    ssh: bool


def _worker_main(conn: Connection, job: _WorkerJob) -> None:
    """Entry point of a spawned worker: serve `job.devices` until the parent says stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    asyncio.run(_worker_serve(conn, job))


async def _worker_serve(conn: Connection, job: _WorkerJob) -> None:
    servers = DeviceServers(job.seed, job.portal_secret)
    try:
        await servers.start(job.devices, port=job.port, snmp=job.snmp, ssh=job.ssh)
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        await servers.close()
        return
    conn.send(("ready", servers.endpoints))
    try:
        while True:  # bounded by the parent: it sends "stop" or dies (EOF)
            try:
                message = await asyncio.to_thread(conn.recv)
            except (EOFError, OSError):
                break
            conn.send(("state", devices_state(job.devices)))
            if message == "stop":
                break
    finally:
        await servers.close()
        conn.close()


class _Worker:
    """The parent's handle on one worker process."""

    def __init__(self, job: _WorkerJob) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_worker_main, args=(child, job), daemon=True)
        self._process.start()
        child.close()
        self._lock = asyncio.Lock()

    async def _receive(self, wait_s: float) -> tuple[str, Any]:
        # Wake up on a message or on the worker's death, whichever comes first.
        if not await asyncio.to_thread(self._readable, wait_s):
            raise TimeoutError("simulator worker did not answer (or exited)")
        message: tuple[str, Any] = await asyncio.to_thread(self._conn.recv)
        return message

    def _readable(self, wait_s: float) -> bool:
        ready = wait([self._conn, self._process.sentinel], wait_s)
        return self._conn in ready

    async def wait_ready(self) -> dict[str, Endpoint]:
        kind, payload = await self._receive(WORKER_START_TIMEOUT_S)
        if kind != "ready":
            raise RuntimeError(f"simulator worker failed to start: {payload}")
        endpoints: dict[str, Endpoint] = payload
        return endpoints

    async def request(self, message: str) -> dict[str, Any]:
        async with self._lock:
            self._conn.send(message)
            _, payload = await self._receive(WORKER_REPLY_TIMEOUT_S)
            state: dict[str, Any] = payload
            return state

    async def stop(self) -> dict[str, Any]:
        try:
            state = await self.request("stop") if self._process.is_alive() else {}
        except (OSError, EOFError, TimeoutError):
            state = {}
        await asyncio.to_thread(self._process.join, 10.0)
        if self._process.is_alive():
            self._process.terminate()
            await asyncio.to_thread(self._process.join, 5.0)
        self._conn.close()
        return state


# --- the fleet ----------------------------------------------------------------------------


@dataclass(slots=True)
class RunningFleet:
    """A started fleet: where everything listens, and the portal's and devices' state."""

    devices: list[SimDevice]
    secrets: FleetSecrets
    contracts: list[SimContract]
    portal: Portal
    portal_url: str
    provisioning_url: str
    provisioning_files: dict[tuple[str, str], bytes]
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    workers: int = 1
    _workers: list[_Worker] = field(default_factory=list)

    def device(self, serial: str) -> SimDevice:
        """The device with this serial (live state only when running in-process)."""
        for device in self.devices:
            if device.serial == serial:
                return device
        raise KeyError(serial)

    def endpoint(self, serial: str) -> Endpoint:
        """Where the device with this serial answers."""
        return self.endpoints[serial]

    async def snapshot(self) -> dict[str, dict[str, Any]]:
        """Current device state by serial (asks the workers when there are any)."""
        if not self._workers:
            return devices_state(self.devices)
        state: dict[str, dict[str, Any]] = {}
        for worker in self._workers:
            state.update(await worker.request("snapshot"))
        return state


async def _serve_http(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    return runner, f"http://{bound_host}:{bound_port}"


def _prepare(devices: Sequence[SimDevice], provisioning_url: str, loopback_only: bool) -> None:
    now = time.time()
    for device in devices:
        if loopback_only and device.host:
            device.host = "127.0.0.1"
        if device.boot_time == 0.0:
            # Deterministic, plausible uptimes instead of "up since 1970".
            device.boot_time = now - zlib.crc32(device.serial.encode()) % _MAX_UPTIME_S
        if device.family in ("vvx", "trio", "ccx"):
            device.provisioning_url = provisioning.site_url(provisioning_url, device.site)


@asynccontextmanager
async def run_fleet(
    devices: list[SimDevice],
    *,
    secrets: FleetSecrets | None = None,
    contracts: Sequence[SimContract] = (),
    seed: int = 1,
    loopback_only: bool = False,
    workers: int = 1,
    snmp: bool = True,
    ssh: bool = True,
    service_host: str = "127.0.0.1",
    portal_port: int = 0,
    provisioning_port: int = 0,
    provisioning_files: dict[tuple[str, str], bytes] | None = None,
) -> AsyncIterator[RunningFleet]:
    """Serve `devices` until the block exits; `loopback_only` puts every face on 127.0.0.1
    with a free port each (for tests), otherwise each device uses its own address and ports."""
    fleet_secrets = secrets or FleetSecrets.generate()
    files = {} if provisioning_files is None else provisioning_files
    portal = Portal(devices, contracts, fleet_secrets)
    runners: list[web.AppRunner] = []
    servers: DeviceServers | None = None
    worker_handles: list[_Worker] = []
    try:
        prov_runner, prov_url = await _serve_http(
            provisioning.create_app(files), service_host, provisioning_port
        )
        runners.append(prov_runner)
        portal_runner, portal_url = await _serve_http(
            create_portal_app(portal), service_host, portal_port
        )
        runners.append(portal_runner)
        _prepare(devices, prov_url, loopback_only)
        port = 0 if loopback_only else None
        fleet = RunningFleet(
            devices=devices,
            secrets=fleet_secrets,
            contracts=list(contracts),
            portal=portal,
            portal_url=portal_url,
            provisioning_url=prov_url,
            provisioning_files=files,
            workers=max(1, workers),
        )
        if workers <= 1:
            servers = DeviceServers(seed, fleet_secrets.portal_secret)
            await servers.start(devices, port=port, snmp=snmp, ssh=ssh)
            fleet.endpoints = servers.endpoints
        else:
            size = math.ceil(len(devices) / workers) or 1
            for offset in range(0, len(devices), size):
                job = _WorkerJob(
                    list(devices[offset : offset + size]),
                    seed,
                    fleet_secrets.portal_secret,
                    port,
                    snmp,
                    ssh,
                )
                worker_handles.append(_Worker(job))
            for worker in worker_handles:
                fleet.endpoints.update(await worker.wait_ready())
            fleet._workers = worker_handles
        yield fleet
    finally:
        if servers is not None:
            await servers.close()
        final: dict[str, dict[str, Any]] = {}
        for worker in worker_handles:
            final.update(await worker.stop())
        if final:
            for device in devices:
                if device.serial in final:
                    apply_device_state(device, final[device.serial])
        for runner in reversed(runners):
            await runner.cleanup()
