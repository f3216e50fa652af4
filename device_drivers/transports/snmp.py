"""SNMP transport on pysnmp 7: v2c through hlapi.v1arch, v3 authPriv through hlapi.v3arch.

v2c goes through `SnmpDispatcher` (v1arch) because hlapi.v3arch gets O(n) slower with every new
device it meets (performance-baselines.md section 1b); v3 needs USM, so it uses ONE v3arch
`SnmpEngine` per event loop (one per distinct set of v3 secrets, see `_v3`). All share the same
idea: one UDP socket per dispatcher or engine with a 4 MiB receive buffer (default buffers drop
answers at high concurrency), explicit timeout and retries from the target, no MIB lookups, and
every pysnmp outcome translated into `device_drivers.errors` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
import string
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.carrier.asyncio.dispatch import AsyncioDispatcher
from pysnmp.entity import config as v3config
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v1arch import asyncio as v1
from pysnmp.hlapi.v3arch import asyncio as v3
from pysnmp.proto import errind, rfc1902, rfc1905

from device_drivers.errors import (
    AuthenticationFailed,
    DeviceError,
    DeviceTimeout,
    DeviceUnreachable,
    MalformedReply,
    NotSupported,
    SnmpErrorStatus,
)
from device_drivers.transports import SnmpScalar, SnmpTarget
from inventory.models import CredentialProfile

log = logging.getLogger(__name__)

RCVBUF_BYTES = 4 << 20
"""Receive buffer of the shared SNMP socket: 208 KiB drops answers at ~500 in flight."""
DEFAULT_MAX_REPETITIONS = 25
DEFAULT_MAX_WALK_ROWS = 10_000
MAX_TARGET_CACHE = 65_536
"""Resolved transport targets kept per client, so a scan does not call getaddrinfo per request."""
MAX_V3_ENGINES = 32
"""Distinct v3 credential sets served at once; the least recently used engine is closed."""
HARD_BOUND_GRACE_S = 1.0
RESOLVE_TIMEOUT_S = 5.0
TIMER_RESOLUTION_S = 0.05
"""How often pysnmp checks its retry timers; fine enough for sub-second test timeouts."""

_AUTH_PROTOCOLS = {"sha": v3.usmHMACSHAAuthProtocol, "sha256": v3.usmHMAC192SHA256AuthProtocol}
# AES-256 with Blumenthal key extension, as net-snmp's "AES-256" (draft-blumenthal-aes-usm).
_PRIV_PROTOCOLS = {"aes": v3.usmAesCfb128Protocol, "aes256": v3.usmAesBlumenthalCfb256Protocol}

_AUTH_INDICATIONS = (
    errind.WrongDigest,
    errind.AuthenticationFailure,
    errind.AuthenticationError,
    errind.DecryptionError,
    errind.UnknownUserName,
    errind.UnknownSecurityName,
    errind.UnsupportedSecurityLevel,
)
# RFC 3416 error-status values that mean "this device does not offer that", not "bad reply".
_NOT_SUPPORTED_STATUS = {2: "noSuchName", 6: "noAccess", 16: "authorizationError"}
_ERROR_STATUS_NAMES = {
    1: "tooBig",
    2: "noSuchName",
    3: "badValue",
    4: "readOnly",
    5: "genErr",
    6: "noAccess",
    16: "authorizationError",
}
_PRINTABLE = frozenset(string.printable)


@lru_cache(maxsize=4096)
def parse_oid(oid: str) -> tuple[int, ...]:
    """Dotted OID text to a tuple of ints, cached: drivers ask the same few OIDs everywhere."""
    try:
        parts = tuple(int(part) for part in oid.strip().lstrip(".").split("."))
    except ValueError:
        raise ValueError(f"not a numeric OID: {oid!r}") from None
    if len(parts) < 2 or any(part < 0 for part in parts):
        raise ValueError(f"not a numeric OID: {oid!r}")
    return parts


def _dotted(oid: Any) -> str:
    return ".".join(str(part) for part in tuple(oid))


def decode_value(value: Any) -> SnmpScalar:
    """A pyasn1 value as SnmpScalar: numbers int, text str, binary bytes, OIDs dotted, None."""
    if isinstance(value, univ.Null):  # also noSuchObject / noSuchInstance / endOfMibView
        return None
    if isinstance(value, rfc1902.IpAddress):
        return ".".join(str(octet) for octet in value.asOctets())
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, univ.ObjectIdentifier):
        return _dotted(value)
    if isinstance(value, univ.OctetString):
        raw = bytes(value.asOctets())
        if isinstance(value, rfc1902.Opaque):
            return raw
        try:
            text = raw.rstrip(b"\x00").decode("utf-8")
        except UnicodeDecodeError:
            return raw
        return text if _PRINTABLE.issuperset(text) or text.isprintable() else raw
    return None if value is None else str(value)


def _v3_identity(creds: CredentialProfile) -> str:
    """A digest naming one set of v3 secrets (the secrets themselves are never used as keys)."""
    parts = [
        creds.snmp_user or "",
        creds.snmp_auth_protocol,
        creds.snmp_auth_key.get_secret_value() if creds.snmp_auth_key else "",
        creds.snmp_priv_protocol,
        creds.snmp_priv_key.get_secret_value() if creds.snmp_priv_key else "",
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _is_end_of_view(value: Any) -> bool:
    return isinstance(value, rfc1905.EndOfMibView)


class PysnmpClient:
    """SnmpClient on pysnmp 7; build it inside the running loop, share it, `close()` at the end.

    `rcvbuf` sizes the shared UDP socket; `max_repetitions` is the GETBULK page size;
    `max_walk_rows` caps one walk (a broken agent could otherwise loop forever).
    """

    def __init__(
        self,
        *,
        rcvbuf: int = RCVBUF_BYTES,
        max_repetitions: int = DEFAULT_MAX_REPETITIONS,
        max_walk_rows: int = DEFAULT_MAX_WALK_ROWS,
    ) -> None:
        self._loop = asyncio.get_running_loop()  # pysnmp binds to the loop at construction
        self._rcvbuf = rcvbuf
        self._max_repetitions = max(1, max_repetitions)
        self._max_walk_rows = max(1, max_walk_rows)
        self._dispatcher: Any = None
        self._transport_dispatcher: AsyncioDispatcher | None = None
        self._engines: OrderedDict[str, Any] = OrderedDict()
        self._v1_targets: dict[tuple[str, int, float, int], Any] = {}
        self._v3_targets: dict[tuple[str, int, float, int], Any] = {}
        self._closed = False

    # -- plumbing -----------------------------------------------------------------------------

    def _socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf)
            sock.setblocking(False)
            sock.bind(("0.0.0.0", 0))  # noqa: S104 - a client socket: answers come from anywhere
        except OSError:
            sock.close()
            raise
        granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        if granted < self._rcvbuf:
            log.warning(
                "SNMP socket got a %d-byte receive buffer (asked %d); raise net.core.rmem_max",
                granted,
                self._rcvbuf,
            )
        return sock

    def _v1(self) -> Any:
        if self._closed:
            raise RuntimeError("PysnmpClient is closed")
        if self._dispatcher is None:
            transport_dispatcher = AsyncioDispatcher(loop=self._loop)
            transport_dispatcher.set_timer_resolution(TIMER_RESOLUTION_S)
            transport = udp.UdpAsyncioTransport(loop=self._loop).open_server_mode(
                sock=self._socket()
            )
            transport_dispatcher.register_transport(udp.DOMAIN_NAME, transport)
            self._transport_dispatcher = transport_dispatcher
            self._dispatcher = v1.SnmpDispatcher(transport_dispatcher)
        return self._dispatcher

    def _v3(self, creds: CredentialProfile) -> Any:
        """The engine for this v3 credential set: one per loop in the usual one-profile fleet.

        pysnmp's USM keeps one user entry per user name, so two profiles with the same user
        name but different keys would overwrite each other mid-flight and make good keys look
        rejected; each distinct set of v3 secrets therefore gets its own engine.
        """
        if self._closed:
            raise RuntimeError("PysnmpClient is closed")
        key = _v3_identity(creds)
        engine = self._engines.get(key)
        if engine is None:
            if len(self._engines) >= MAX_V3_ENGINES:
                _, oldest = self._engines.popitem(last=False)
                with contextlib.suppress(Exception):
                    oldest.close_dispatcher()
            engine = v3.SnmpEngine()
            transport = udp.UdpAsyncioTransport(loop=self._loop).open_server_mode(
                sock=self._socket()
            )
            v3config.add_transport(engine, udp.DOMAIN_NAME, transport)
            engine.transport_dispatcher.set_timer_resolution(TIMER_RESOLUTION_S)
            self._engines[key] = engine
        else:
            self._engines.move_to_end(key)
        return engine

    async def _target(self, target: SnmpTarget, *, v3arch: bool) -> Any:
        key = (target.host, target.port, float(target.timeout), int(target.retries))
        cache = self._v3_targets if v3arch else self._v1_targets
        found = cache.get(key)
        if found is not None:
            return found
        if ":" in target.host:
            raise NotSupported("SNMP over IPv6 is not supported yet", host=target.host)
        factory = v3.UdpTransportTarget if v3arch else v1.UdpTransportTarget
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_S):  # getaddrinfo for host names
                created = await factory.create(
                    (target.host, target.port),
                    timeout=max(0.01, target.timeout),
                    retries=max(0, target.retries),
                )
        except TimeoutError as exc:
            raise DeviceTimeout(
                f"resolving {target.host} took over {RESOLVE_TIMEOUT_S:g} s", host=target.host
            ) from exc
        except PySnmpError as exc:
            raise DeviceUnreachable(
                f"cannot resolve SNMP address {target.host}:{target.port}", host=target.host
            ) from exc
        if len(cache) >= MAX_TARGET_CACHE:
            cache.pop(next(iter(cache)))
        cache[key] = created
        return created

    @staticmethod
    def _v3_auth(creds: CredentialProfile, host: str) -> Any:
        if not creds.snmp_user:
            raise AuthenticationFailed("SNMP v3 needs a user name in the credentials", host=host)
        if creds.snmp_auth_key is None or creds.snmp_priv_key is None:
            raise AuthenticationFailed(
                "SNMP v3 authPriv needs both an auth key and a privacy key", host=host
            )
        return v3.UsmUserData(
            creds.snmp_user,
            authKey=creds.snmp_auth_key.get_secret_value(),
            privKey=creds.snmp_priv_key.get_secret_value(),
            authProtocol=_AUTH_PROTOCOLS[creds.snmp_auth_protocol],
            privProtocol=_PRIV_PROTOCOLS[creds.snmp_priv_protocol],
        )

    @staticmethod
    def _is_v3(target: SnmpTarget) -> bool:
        return target.credentials is not None and target.credentials.snmp_version == "3"

    @staticmethod
    def _community(target: SnmpTarget) -> str:
        creds = target.credentials
        if creds is not None and creds.snmp_community is not None:
            return creds.snmp_community.get_secret_value()
        return "public"

    # -- error translation (the only place pysnmp outcomes become device errors) --------------

    @staticmethod
    def _check(
        target: SnmpTarget,
        v3mode: bool,
        error_indication: Any,
        error_status: Any,
        error_index: Any,
        var_binds: Sequence[Any],
        asked: Sequence[str],
    ) -> None:
        host = target.host
        if error_indication:
            tries = max(0, target.retries) + 1
            if isinstance(error_indication, errind.RequestTimedOut):
                why = (
                    "no answer (host down, or SNMP disabled)"
                    if v3mode
                    else "no answer (host down, or community not accepted)"
                )
                raise DeviceTimeout(
                    f"SNMP timeout after {tries} tries of {target.timeout:g} s: {why}", host=host
                )
            if isinstance(error_indication, _AUTH_INDICATIONS):
                raise AuthenticationFailed(
                    f"SNMPv3 credentials rejected by the device ({error_indication})", host=host
                )
            if isinstance(error_indication, errind.NotInTimeWindow):
                raise DeviceTimeout(
                    "SNMPv3 engine clock not in the device's time window; retry", host=host
                )
            raise MalformedReply(f"SNMP error: {error_indication}", host=host)
        status = int(error_status or 0)
        if status:
            index = int(error_index or 0)
            name = _ERROR_STATUS_NAMES.get(status, f"error-status {status}")
            oid = asked[index - 1] if 0 < index <= len(asked) else None
            where = f" for {oid}" if oid else ""
            if status in _NOT_SUPPORTED_STATUS:
                raise NotSupported(f"SNMP {name}{where}", host=host, answered=True)
            raise SnmpErrorStatus(f"SNMP {name}{where}", status=status, host=host)

    async def _call(self, coro: Any, target: SnmpTarget) -> Any:
        """Await one pysnmp request, turning library exceptions into device errors once.

        pysnmp enforces timeout x tries itself; the outer bound only guards against a request
        pysnmp forgets (a dispatcher closed under it), so no caller can wait forever.
        """
        tries = max(0, target.retries) + 1
        bound = max(0.01, target.timeout) * tries + HARD_BOUND_GRACE_S
        try:
            async with asyncio.timeout(bound):
                return await coro
        except TimeoutError as exc:
            raise DeviceTimeout(
                f"SNMP timeout after {tries} tries of {target.timeout:g} s: no answer",
                host=target.host,
            ) from exc
        except DeviceError:
            raise
        except (PyAsn1Error, PySnmpError) as exc:
            raise MalformedReply(
                f"SNMP reply could not be processed: {type(exc).__name__}", host=target.host
            ) from exc
        except OSError as exc:
            raise DeviceUnreachable(
                f"SNMP send failed: {exc.strerror or exc}", host=target.host
            ) from exc

    # -- SnmpClient ---------------------------------------------------------------------------

    async def get(self, target: SnmpTarget, oids: Sequence[str]) -> dict[str, SnmpScalar]:
        """GET several OIDs in one PDU; values keyed by the OID text as the caller wrote it."""
        if not oids:
            return {}
        parsed = [parse_oid(oid) for oid in oids]
        v3mode = self._is_v3(target)
        if v3mode:
            assert target.credentials is not None
            auth = self._v3_auth(target.credentials, target.host)
            transport = await self._target(target, v3arch=True)
            request = v3.get_cmd(
                self._v3(target.credentials),
                auth,
                transport,
                v3.ContextData(),
                *(v3.ObjectType(v3.ObjectIdentity(oid)) for oid in parsed),
                lookupMib=False,
            )
        else:
            transport = await self._target(target, v3arch=False)
            request = v1.get_cmd(
                self._v1(),
                v1.CommunityData(self._community(target), mpModel=1),  # noqa: S508 - devices speak v2c
                transport,
                *((oid, univ.Null("")) for oid in parsed),
                lookupMib=False,
            )
        err_ind, err_status, err_index, var_binds = await self._call(request, target)
        self._check(target, v3mode, err_ind, err_status, err_index, var_binds, oids)
        if len(var_binds) != len(oids):
            raise MalformedReply(
                f"SNMP reply has {len(var_binds)} values for {len(oids)} OIDs", host=target.host
            )
        result: dict[str, SnmpScalar] = {}
        for asked, wanted, (name, value) in zip(oids, parsed, var_binds, strict=True):
            if tuple(name) != wanted:
                raise MalformedReply(
                    f"SNMP reply names {_dotted(name)} where {asked} was asked", host=target.host
                )
            result[asked] = decode_value(value)
        return result

    def _page(self, target: SnmpTarget) -> int:
        """max-repetitions of one GETBULK: the target's own page size, else the client's."""
        page = target.max_repetitions
        return self._max_repetitions if page is None else max(1, page)

    async def _bulk(self, target: SnmpTarget, start: tuple[int, ...]) -> Sequence[Any]:
        v3mode = self._is_v3(target)
        if v3mode:
            assert target.credentials is not None
            request = v3.bulk_cmd(
                self._v3(target.credentials),
                self._v3_auth(target.credentials, target.host),
                await self._target(target, v3arch=True),
                v3.ContextData(),
                0,
                self._page(target),
                v3.ObjectType(v3.ObjectIdentity(start)),
                lookupMib=False,
            )
        else:
            request = v1.bulk_cmd(
                self._v1(),
                v1.CommunityData(self._community(target), mpModel=1),  # noqa: S508 - devices speak v2c
                await self._target(target, v3arch=False),
                0,
                self._page(target),
                (start, univ.Null("")),
                lookupMib=False,
            )
        err_ind, err_status, err_index, var_binds = await self._call(request, target)
        self._check(target, v3mode, err_ind, err_status, err_index, var_binds, [_dotted(start)])
        return list(var_binds)

    async def walk(self, target: SnmpTarget, base_oid: str) -> list[tuple[str, SnmpScalar]]:
        """GETBULK walk confined to `base_oid`'s subtree, at most `max_walk_rows` rows."""
        base = parse_oid(base_oid)
        rows: list[tuple[str, SnmpScalar]] = []
        cursor = base
        max_pages = self._max_walk_rows // self._page(target) + 2
        for _ in range(max_pages):
            var_binds = await self._bulk(target, cursor)
            if not var_binds:
                return rows
            for name, value in var_binds:
                oid = tuple(name)
                if oid[: len(base)] != base or _is_end_of_view(value):
                    return rows
                if oid <= cursor:
                    raise MalformedReply(
                        f"SNMP walk of {base_oid}: OID {_dotted(oid)} does not increase",
                        host=target.host,
                    )
                rows.append((_dotted(oid), decode_value(value)))
                cursor = oid
                if len(rows) >= self._max_walk_rows:
                    log.warning(
                        "%s: SNMP walk of %s stopped at %d rows", target.host, base_oid, len(rows)
                    )
                    return rows
        return rows

    async def close(self) -> None:
        """Release the sockets; pending requests end (their callers see a device error)."""
        self._closed = True
        if self._dispatcher is not None:
            with contextlib.suppress(Exception):
                self._dispatcher.close()
            self._dispatcher = None
        if self._transport_dispatcher is not None:
            with contextlib.suppress(Exception):
                self._transport_dispatcher.close_dispatcher()
            self._transport_dispatcher = None
        for engine in self._engines.values():
            with contextlib.suppress(Exception):
                engine.close_dispatcher()
        self._engines.clear()
        self._v1_targets.clear()
        self._v3_targets.clear()
        await asyncio.sleep(0)  # let the transports run their close callbacks
