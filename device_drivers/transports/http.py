"""HTTP(S) transport on aiohttp: one ClientSession per run, device trust, errors translated once.

Trust order per request: `insecure` (no checks) > `ca_bundle` (chain and name verified) >
`pinned` (SHA-256 certificate fingerprint, checked by aiohttp before any request byte is sent)
> `pin_on_first_use` (accept, report the fingerprint once, enforce it for the rest of the run)
> system CA store. Cookies are passed and returned per request (no shared jar), because VideoOS
session cookies of one device must never reach another.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from device_drivers.errors import (
    AuthenticationFailed,
    DeviceDisconnected,
    DeviceTimeout,
    DeviceUnreachable,
    MalformedReply,
    TlsFingerprintMismatch,
)
from device_drivers.transports import HttpReply, HttpTarget
from device_drivers.transports.translation import ErrorTable, translated
from device_drivers.transports.trust import FirstUsePins, parse_sha256_pin, sha256_pin

log = logging.getLogger(__name__)

DEFAULT_CONNECTION_LIMIT = 256
MAX_BODY_BYTES = 16 << 20
"""Device replies are small; a larger body is treated as malformed rather than buffered."""
MAX_DIGEST_STATES = 65_536
MAX_FINGERPRINTS = 65_536
CLOSE_WAIT_S = 2.0
"""How long `close()` waits for released TLS connections to finish their shutdown handshake;
any still open after that are aborted, so the event loop never closes under a live transport
(uvloop then fails with EBUSY)."""


_SslCheck = ssl.SSLContext | aiohttp.Fingerprint | bool
"""aiohttp's `ssl=` argument: a verifying context, a fingerprint, False (none) or True (system)."""


class _PeerCertResponse(aiohttp.ClientResponse):
    """Keeps the server certificate (DER) of the connection, read before aiohttp may pool it."""

    peer_der: bytes | None = None

    async def start(self, connection: aiohttp.connector.Connection) -> aiohttp.ClientResponse:
        transport = connection.transport
        if transport is not None:
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None:
                self.peer_der = ssl_object.getpeercert(binary_form=True)
        return await super().start(connection)


def _basic(target: HttpTarget) -> str:
    """The Basic header value (aiohttp.BasicAuth is deprecated in 3.14)."""
    assert target.user is not None
    assert target.password is not None
    if ":" in target.user:
        raise AuthenticationFailed("an HTTP Basic user name cannot contain ':'", host=target.host)
    pair = f"{target.user}:{target.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _pin_mismatch(target: HttpTarget, expected: str, actual: str) -> TlsFingerprintMismatch:
    return TlsFingerprintMismatch(
        f"TLS certificate changed (pinned {expected}, presented {actual}); "
        "accept it with `polyfleet inventory trust` if the change is expected",
        expected=expected,
        actual=actual,
        host=target.host,
    )


@dataclass(frozen=True, slots=True)
class _Exchange:
    """One request, as its error messages name it."""

    target: HttpTarget
    method: str
    path: str
    pin: str | None
    """The pin in force for this request, if any (a fingerprint mismatch names it)."""

    @property
    def where(self) -> str:
        return f"{self.target.scheme}://{self.target.host}:{self.target.port}"

    @property
    def host(self) -> str:
        return self.target.host


def _cert_reason(exc: aiohttp.ClientConnectorCertificateError) -> str:
    error = exc.certificate_error
    return getattr(error, "verify_message", None) or str(error)


_LIBRARY_ERRORS: ErrorTable[_Exchange] = (
    (
        aiohttp.ServerFingerprintMismatch,
        lambda exc, x: _pin_mismatch(
            x.target, x.pin or "sha256:" + exc.expected.hex(), "sha256:" + exc.got.hex()
        ),
    ),
    (
        aiohttp.ClientConnectorCertificateError,
        lambda exc, x: DeviceUnreachable(
            f"TLS certificate of {x.where} not trusted by the CA bundle: {_cert_reason(exc)}",
            host=x.host,
        ),
    ),
    (
        aiohttp.ClientSSLError,
        lambda exc, x: DeviceUnreachable(
            f"TLS handshake with {x.where} failed: {exc.os_error}", host=x.host
        ),
    ),
    (
        aiohttp.ClientPayloadError,
        lambda exc, x: MalformedReply(
            f"HTTP reply from {x.where}{x.path} was cut short or garbled", host=x.host
        ),
    ),
    (
        aiohttp.ServerDisconnectedError,
        lambda exc, x: DeviceDisconnected(
            f"{x.where} closed the connection before replying", host=x.host
        ),
    ),
    (
        TimeoutError,  # aiohttp's timeouts subclass asyncio.TimeoutError
        lambda exc, x: DeviceTimeout(
            f"HTTP {x.method} {x.path} got no reply within {x.target.timeout:g} s", host=x.host
        ),
    ),
    (
        aiohttp.ClientConnectorError,
        lambda exc, x: DeviceUnreachable(
            f"cannot connect to {x.where}: {exc.os_error.strerror or exc.os_error}", host=x.host
        ),
    ),
    (
        aiohttp.ClientResponseError,  # unparsable status line or headers
        lambda exc, x: MalformedReply(
            f"HTTP reply from {x.where}{x.path} is not valid HTTP ({exc.message})", host=x.host
        ),
    ),
    (
        (aiohttp.ClientOSError, ConnectionResetError),
        lambda exc, x: DeviceUnreachable(
            f"connection to {x.where} failed: {exc.strerror or type(exc).__name__}", host=x.host
        ),
    ),
    (
        aiohttp.ClientError,
        lambda exc, x: MalformedReply(
            f"HTTP exchange with {x.where} failed: {type(exc).__name__}", host=x.host
        ),
    ),
)
"""aiohttp's exceptions and the device error each becomes, most specific first (the first
match wins: a certificate error is also an SSL error, a fingerprint mismatch a connection one)."""


def _unchecked_context() -> ssl.SSLContext:
    """The TLS context of connections whose certificate no CA vouches for: first contact and
    `insecure` (nothing checked) and pinned devices (aiohttp compares the fingerprint itself).

    aiohttp's own context for these also loads the system CA store, which verifies nothing here
    (CERT_NONE) yet costs every handshake a look-up in it: 0.64 against 0.84-0.91 ms of client
    CPU per handshake with the simulator's certificates (bench/RESULTS.md, Scan, session 6)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.options |= ssl.OP_NO_SSLv2 | ssl.OP_NO_SSLv3 | ssl.OP_NO_COMPRESSION
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(("http/1.1",))
    return context


class _Connector(aiohttp.TCPConnector):
    """aiohttp's connector with `_unchecked_context` for unverified and fingerprinted requests.

    `_get_ssl_context` is aiohttp's hook; should it go away, aiohttp's own context (the same
    settings plus the CA store) is used again: slower, never less checked."""

    _unchecked = _unchecked_context()

    def _get_ssl_context(self, req: aiohttp.ClientRequest) -> ssl.SSLContext | None:
        check = req.ssl
        if req.is_ssl() and (check is False or isinstance(check, aiohttp.Fingerprint)):
            return self._unchecked
        return super()._get_ssl_context(req)


class AiohttpClient:
    """HttpClient on one shared aiohttp ClientSession; build it inside the running loop.

    `limit` caps open connections over all devices; `limit_per_host` (0 = no cap) per address.
    """

    def __init__(self, *, limit: int = DEFAULT_CONNECTION_LIMIT, limit_per_host: int = 0) -> None:
        self._connector = _Connector(
            limit=limit, limit_per_host=limit_per_host, enable_cleanup_closed=False
        )
        self._session = aiohttp.ClientSession(
            connector=self._connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            response_class=_PeerCertResponse,
            auto_decompress=True,
            trust_env=False,
        )
        self._ca_contexts: dict[str, ssl.SSLContext] = {}
        self._digest: dict[tuple[str, int, str], tuple[str, aiohttp.DigestAuthMiddleware]] = {}
        self._first_use = FirstUsePins()
        self._releasing: dict[asyncio.Future[None], Any] = {}
        """Connections `release_host` closed whose (TLS) shutdown has not finished: closed
        future -> protocol, awaited (or aborted) by `close()`."""
        self._fingerprints: dict[bytes, aiohttp.Fingerprint] = {}
        """One Fingerprint object per pin: aiohttp pools connections by a key holding the `ssl`
        argument, and Fingerprint compares by identity, so a fresh object per request meant a
        new connection and TLS handshake for every request to a pinned device."""

    # -- trust --------------------------------------------------------------------------------

    def _ca_context(self, target: HttpTarget, bundle: str) -> ssl.SSLContext:
        context = self._ca_contexts.get(bundle)
        if context is None:
            try:
                context = ssl.create_default_context(cafile=bundle)
            except (OSError, ssl.SSLError) as exc:
                raise DeviceUnreachable(
                    f"cannot load the CA bundle {bundle}: {exc}", host=target.host
                ) from exc
            self._ca_contexts[bundle] = context
        return context

    def _ssl_for(self, target: HttpTarget) -> tuple[_SslCheck, str | None]:
        """What aiohttp should check, and the pin it enforces (None: nothing pinned)."""
        trust = target.trust
        if target.scheme != "https":
            return True, None
        if trust.insecure:
            return False, None
        if trust.ca_bundle:
            return self._ca_context(target, trust.ca_bundle), None
        pin = trust.pinned or self._first_use.get(target.host, target.port)
        if pin:
            digest = parse_sha256_pin(pin)
            if digest is None:
                raise TlsFingerprintMismatch(
                    "the pinned TLS fingerprint is not of the form sha256:<64 hex digits>",
                    expected=pin,
                    actual="(not checked)",
                    host=target.host,
                )
            return self._fingerprint(digest), pin
        if trust.pin_on_first_use:
            return False, None
        return True, None

    def _fingerprint(self, digest: bytes) -> aiohttp.Fingerprint:
        found = self._fingerprints.get(digest)
        if found is None:
            if len(self._fingerprints) >= MAX_FINGERPRINTS:
                self._fingerprints.pop(next(iter(self._fingerprints)))
            found = self._fingerprints[digest] = aiohttp.Fingerprint(digest)
        return found

    def _adopt_first_use(self, target: HttpTarget, pin: str) -> None:
        """Pool the connection whose certificate was just pinned under the pinned key.

        The first request to an unpinned device runs unchecked (`ssl=False`), later ones with the
        pin: two pool keys, so without this every HTTPS device paid a second TLS handshake on a
        cold scan. Only idle connections whose certificate is the pinned one move, so reusing
        them for pinned requests checks nothing less. Uses aiohttp's pool (`_conns`); if absent,
        the next request simply opens a checked connection as before.
        """
        digest = parse_sha256_pin(pin)
        pool = getattr(self._connector, "_conns", None)
        if digest is None or pool is None:
            return
        pinned = self._fingerprint(digest)
        for key in [k for k in pool if k.host == target.host and k.port == target.port]:
            if key.ssl is not False:
                continue
            kept: list[Any] = []
            moved: list[Any] = []
            for entry in pool.pop(key):
                transport = entry[0].transport
                ssl_object = transport.get_extra_info("ssl_object") if transport else None
                der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
                (moved if der is not None and sha256_pin(der) == pin else kept).append(entry)
            if kept:
                pool[key].extend(kept)
            if moved:
                pool[key._replace(ssl=pinned)].extend(moved)

    # -- auth ---------------------------------------------------------------------------------

    def _digest_middleware(self, target: HttpTarget, user: str, password: str) -> Any:
        """One digest state per device and user, so the nonce is reused (no 401 per request)."""
        key = (target.host, target.port, user)
        found = self._digest.get(key)
        if found is not None and found[0] == password:
            return found[1]
        middleware = aiohttp.DigestAuthMiddleware(user, password)
        if len(self._digest) >= MAX_DIGEST_STATES:
            self._digest.pop(next(iter(self._digest)))
        self._digest[key] = (password, middleware)
        return middleware

    # -- HttpClient ---------------------------------------------------------------------------

    async def request(
        self,
        target: HttpTarget,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        data: bytes | None = None,
    ) -> HttpReply:
        """One request; 401 raises AuthenticationFailed, other statuses go back to the driver."""
        try:
            url = target.url(path)
        except ValueError as exc:  # DriverContext checks hosts; this guards other callers
            raise DeviceUnreachable(f"not contacted: {exc}", host=target.host) from None
        ssl_check, pin = self._ssl_for(target)
        send_headers = dict(headers or {})
        if cookies:
            send_headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
        options: dict[str, Any] = {}
        if target.user is not None and target.password is not None and target.auth:
            if target.auth == "digest":
                options["middlewares"] = (
                    self._digest_middleware(target, target.user, target.password),
                )
            else:
                send_headers["Authorization"] = _basic(target)
        exchange = _Exchange(target, method, path, pin)
        first_use_pin: str | None = None
        with translated(_LIBRARY_ERRORS, exchange):
            async with self._session.request(
                method,
                url,
                json=json,
                data=data,
                headers=send_headers,
                ssl=ssl_check,
                timeout=aiohttp.ClientTimeout(total=target.timeout),
                allow_redirects=False,
                **options,
            ) as resp:
                peer_der = resp.peer_der if isinstance(resp, _PeerCertResponse) else None
                if (
                    target.scheme == "https"
                    and ssl_check is False
                    and not target.trust.insecure
                    and target.trust.pin_on_first_use
                ):
                    first_use_pin = await self._first_contact(target, peer_der)
                reply = await self._reply(resp, exchange)
        if first_use_pin is not None:  # the connection is back in the pool now
            self._adopt_first_use(target, first_use_pin)
        return reply

    async def _reply(self, resp: aiohttp.ClientResponse, exchange: _Exchange) -> HttpReply:
        """The reply of a response: 401 is refused credentials, an oversized body malformed."""
        target = exchange.target
        if resp.status == 401:
            raise AuthenticationFailed(
                f"HTTP 401 from {exchange.where}{exchange.path}: credentials rejected",
                host=target.host,
            )
        length = resp.content_length
        if length is not None and length > MAX_BODY_BYTES:
            raise MalformedReply(f"HTTP reply of {length} bytes is too large", host=target.host)
        body = await self._read_body(resp, target)
        return HttpReply(
            status=resp.status,
            headers=dict(resp.headers.items()),
            body=body,
            cookies={name: morsel.value for name, morsel in resp.cookies.items()},
        )

    @staticmethod
    async def _read_body(resp: aiohttp.ClientResponse, target: HttpTarget) -> bytes:
        """The whole body, refusing more than MAX_BODY_BYTES (chunked replies have no length)."""
        chunks: list[bytes] = []
        total = 0
        async for chunk in resp.content.iter_chunked(1 << 16):
            total += len(chunk)
            if total > MAX_BODY_BYTES:
                raise MalformedReply(
                    f"HTTP reply is larger than {MAX_BODY_BYTES} bytes", host=target.host
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def _first_contact(self, target: HttpTarget, peer_der: bytes | None) -> str | None:
        """Report the certificate of an unpinned device once; later requests enforce it.

        Returns the pin now in force for this connection's certificate (None: nothing seen).
        """
        if peer_der is None:
            log.warning("%s: no TLS certificate seen on first contact; nothing pinned", target.host)
            return None
        seen = sha256_pin(peer_der)
        in_force = await self._first_use.remember(target.host, target.port, seen, target.trust)
        if in_force != seen:
            raise _pin_mismatch(target, in_force, seen)
        return seen

    def release_host(self, host: str) -> None:
        """Close the idle pooled connections to `host`: the caller is done with that device.

        aiohttp keeps an idle connection until its keep-alive expires (15 s), and each TLS
        connection holds asyncio's 256 KiB read buffer, so a scan that moves on from device to
        device would otherwise hold one per device: 0.6 GB of RSS for 1,000 phones
        (bench/scan_bench.py). Uses the connector's pool (`_conns`, aiohttp 3.x); if a future
        aiohttp renames it this does nothing and keep-alive expiry closes them as before.
        """
        pool = getattr(self._connector, "_conns", None)
        if not pool:
            return
        for key in [key for key in pool if key.host == host]:
            for protocol, _ in pool.pop(key, ()):
                protocol.close()
                closed = protocol.closed
                if closed is not None and not closed.done():
                    self._releasing[closed] = protocol
                    closed.add_done_callback(self._forget_released)

    def _forget_released(self, closed: asyncio.Future[None]) -> None:
        self._releasing.pop(closed, None)

    async def close(self) -> None:
        """Close every connection and wait (bounded) until their TLS shutdowns are done."""
        await self._session.close()
        if self._releasing:
            await asyncio.wait(list(self._releasing), timeout=CLOSE_WAIT_S)
            for protocol in list(self._releasing.values()):
                protocol.abort()
            self._releasing.clear()
        await asyncio.sleep(0)
