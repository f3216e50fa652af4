"""Hosting many simulated devices behind one aiohttp application per personality.

Each device listens on its own address and port with its own certificate; every request finds
its device by the local socket address it arrived on, so one app serves a thousand devices
without one runner each (performance-baselines.md section 4).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from simulator.faults import fault_middleware
from simulator.sockets import bind_with_fallback, free_tcp_port
from simulator.state import SimDevice
from simulator.tls import CertificateFactory

log = logging.getLogger(__name__)

DEVICES_KEY = web.AppKey("polyfleet_devices", dict[tuple[str, int], SimDevice])
PORTAL_SECRET_KEY = web.AppKey("polyfleet_portal_secret", bytes)
_REQUEST_DEVICE = web.RequestKey("polyfleet_device", SimDevice)


def _lookup(request: web.Request) -> SimDevice:
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if not sockname:
        raise web.HTTPServiceUnavailable()
    device = request.app[DEVICES_KEY].get((sockname[0], sockname[1]))
    if device is None:
        raise web.HTTPNotFound()
    request[_REQUEST_DEVICE] = device
    return device


def current_device(request: web.Request) -> SimDevice:
    """The device a request was sent to (resolved once by the fault middleware)."""
    device = request.get(_REQUEST_DEVICE)
    return device if device is not None else _lookup(request)


def make_app(
    install_routes: Callable[[web.Application], None], portal_secret: bytes
) -> web.Application:
    """An application for one personality, with device lookup and fault injection in front."""
    app = web.Application(middlewares=[fault_middleware(_lookup)])
    app[DEVICES_KEY] = {}
    app[PORTAL_SECRET_KEY] = portal_secret
    install_routes(app)
    return app


def basic_auth_ok(request: web.Request, user: str, password: str) -> bool:
    """Check HTTP Basic credentials in constant time."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given_user, _, given_password = (
            base64.b64decode(encoded, validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return False
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    return user_ok and password_ok


@dataclass(frozen=True, slots=True)
class BoundAddress:
    """Where one device's HTTPS face really listens."""

    serial: str
    host: str
    port: int


class HttpsFaces:
    """Serves a set of devices over HTTPS: one runner per personality, one socket per device."""

    def __init__(self, tls: CertificateFactory) -> None:
        self._tls = tls
        self._runners: dict[str, web.AppRunner] = {}
        self.bound: dict[str, BoundAddress] = {}

    async def add(
        self,
        personality: str,
        app_factory: Callable[[], web.Application],
        devices: Sequence[SimDevice],
        *,
        port: int | None = None,
    ) -> None:
        """Bind every reachable device; `port` overrides each device's own (0 = any free port)."""
        if personality not in self._runners:
            runner = web.AppRunner(
                app_factory(), access_log=None, handle_signals=False, shutdown_timeout=1.0
            )
            await runner.setup()
            self._runners[personality] = runner
        runner = self._runners[personality]
        registry = runner.app[DEVICES_KEY]
        for device in devices:
            if device.https_port is None:
                continue
            wanted = device.https_port if port is None else port
            if device.faults.unreachable:
                # Nothing listens, exactly like a powered-off device. The inventory still gets a
                # port: the real one, or (for "any port") one that was free a moment ago.
                self.bound[device.serial] = BoundAddress(
                    device.serial,
                    device.host,
                    free_tcp_port(device.host) if wanted == 0 else wanted,
                )
                continue
            sock = bind_with_fallback(device.host, wanted, socket.SOCK_STREAM)
            host, bound_port = sock.getsockname()[:2]
            site = web.SockSite(runner, sock, ssl_context=self._tls.device_context(device))
            await site.start()
            registry[(host, bound_port)] = device
            self.bound[device.serial] = BoundAddress(device.serial, host, bound_port)
            if bound_port != wanted and wanted != 0:
                log.info(
                    "device %s: port %d unavailable, using %d", device.serial, wanted, bound_port
                )

    async def close(self) -> None:
        """Stop listening and close open connections."""
        for runner in self._runners.values():
            await runner.cleanup()
        self._runners.clear()
