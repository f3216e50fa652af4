"""The SNMP face of the simulated fleet: v2c and v3 (USM, HMAC-SHA-96 + AES-128) on UDP.

A full pysnmp command responder costs an SnmpEngine with MIB instrumentation per device and about
1.3 ms per GET (performance-baselines §1c), too heavy for thousands of devices in one process. So
each device gets one UDP socket served by a small `asyncio.DatagramProtocol` that decodes the
message with pysnmp's ASN.1 types (pyasn1), answers from the pure tables in `simulator.mib`, and
does USM itself (RFC 3414 key localisation via pysnmp's `localkey`, RFC 3826 AES-CFB via
`cryptography`). Faults are read at every datagram, so switching one on takes effect at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, cast

from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api
from pysnmp.proto.api import v2c
from pysnmp.proto.mpmod.rfc3412 import ScopedPDU, SNMPv3Message
from pysnmp.proto.secmod.rfc3414 import localkey
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

from inventory.catalog import POLYCOM_ENTERPRISE_OID
from simulator import mib
from simulator.sockets import bind_with_fallback
from simulator.state import SimDevice

log = logging.getLogger(__name__)

SNMP_PORT = 161
RCVBUF_BYTES = 1 << 20
"""Per-device receive buffer; the kernel caps it at net.core.rmem_max (perf. baselines §1b)."""
MAX_BULK_REPETITIONS = 64
MAX_RESPONSE_VARBINDS = 512
MAX_LATENCY_S = 60.0
MAX_PENDING_DELAYED = 256
"""Delayed (latency fault) answers held per device; more are dropped like an overloaded agent."""
TIME_WINDOW_S = 150
"""RFC 3414 §3.2.7: an authenticated message more than 150 s off the engine's clock is refused."""
MAX_MSG_SIZE = 65507
WRONG_SECRET_SUFFIX = "-rotated"
"""MODELED wrong_credentials fault: the device was reconfigured with other secrets than the fleet's
credential profile (community and v3 keys get this suffix), so clients using the profile fail."""

_AUTH_FLAG, _PRIV_FLAG, _REPORTABLE_FLAG = 0x01, 0x02, 0x04
_USM_SECURITY_MODEL = 3
_AUTH_PARAMS_LEN = 12
_USM_STATS = (1, 3, 6, 1, 6, 3, 15, 1, 1)
USM_UNSUPPORTED_SEC_LEVELS = (*_USM_STATS, 1, 0)
USM_NOT_IN_TIME_WINDOWS = (*_USM_STATS, 2, 0)
USM_UNKNOWN_USER_NAMES = (*_USM_STATS, 3, 0)
USM_UNKNOWN_ENGINE_IDS = (*_USM_STATS, 4, 0)
USM_WRONG_DIGESTS = (*_USM_STATS, 5, 0)
USM_DECRYPTION_ERRORS = (*_USM_STATS, 6, 0)
_NOT_WRITABLE = 17  # RFC 3416 error-status notWritable

_GET = v2c.GetRequestPDU.tagSet
_GETNEXT = v2c.GetNextRequestPDU.tagSet
_GETBULK = v2c.GetBulkRequestPDU.tagSet
_SET = v2c.SetRequestPDU.tagSet
_V2C_VERSION = api.SNMP_VERSION_2C
_V3_VERSION = 3


def engine_id_for(serial: str) -> bytes:
    """RFC 3411 snmpEngineID, text format: enterprise 13885 with the high bit set, then serial."""
    enterprise = int(POLYCOM_ENTERPRISE_OID.rsplit(".", 1)[1])
    return struct.pack(">IB", 0x80000000 | enterprise, 4) + serial.encode()[:27]


@lru_cache(maxsize=64)
def _master_key(passphrase: str) -> bytes:
    """RFC 3414 A.2.2 password-to-key (1 MiB of SHA-1); cached because fleets share passwords."""
    return bytes(localkey.hash_passphrase_sha(passphrase.encode()).asOctets())


def localized_key(passphrase: str, engine_id: bytes) -> bytes:
    """Ku localised to one engine (RFC 3414 §2.6), SHA-1: 20 octets."""
    master = _master_key(passphrase)
    return hashlib.sha1(master + engine_id + master, usedforsecurity=False).digest()


def accepted_secrets(device: SimDevice) -> tuple[str, str, str]:
    """Community, v3 auth and v3 priv passphrases the device accepts right now."""
    cred = device.credentials
    secrets = (cred.snmp_community, cred.snmp_v3_auth_key, cred.snmp_v3_priv_key)
    if device.faults.wrong_credentials:
        return tuple(s + WRONG_SECRET_SUFFIX for s in secrets)  # type: ignore[return-value]
    return secrets


def _to_asn1(value: mib.MibValue) -> Any:
    kind, raw = value.kind, value.value
    if kind is mib.SnmpType.INTEGER:
        return v2c.Integer(raw)
    if kind is mib.SnmpType.OCTET_STRING:
        return v2c.OctetString(raw)
    if kind is mib.SnmpType.OBJECT_IDENTIFIER:
        return v2c.ObjectIdentifier(raw)
    if kind is mib.SnmpType.TIMETICKS:
        return v2c.TimeTicks(raw)
    return v2c.Gauge32(raw)


def _aes(key: bytes, iv: bytes) -> Cipher[CFB]:
    return Cipher(algorithms.AES(key[:16]), CFB(iv))


@dataclass(slots=True)
class _UsmKeys:
    secrets: tuple[str, str]
    auth: bytes
    priv: bytes


class _DeviceResponder(asyncio.DatagramProtocol):
    """Answers SNMP for one device on one socket; every request reads the device state afresh."""

    def __init__(self, device: SimDevice, started_at: float) -> None:
        self.device = device
        self.started_at = started_at
        self.engine_id = engine_id_for(device.serial)
        self.transport: asyncio.DatagramTransport | None = None
        self.requests = 0
        self.boots = 1
        self._seen_boot = device.boot_time
        self._keys: _UsmKeys | None = None
        self._usm_counters: dict[tuple[int, ...], int] = {}
        self._pending: dict[int, asyncio.TimerHandle] = {}
        self._next_token = 0

    # --- asyncio plumbing -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        faults = self.device.faults
        if faults.unreachable:
            return
        self.requests += 1
        if (faults.snmp_every_other or faults.flapping) and self.requests % 2 == 0:
            return  # every other request goes unanswered (a flapping device looks the same)
        try:
            reply = self.respond(data)
        except Exception as exc:  # a malformed datagram must never stop the device's socket
            log.debug(
                "dropping undecodable SNMP datagram for %s: %s", self.device.serial, type(exc)
            )
            return
        if reply is None or self.transport is None:
            return
        if faults.latency_s > 0:
            if len(self._pending) >= MAX_PENDING_DELAYED:
                return
            loop = asyncio.get_running_loop()
            delay = min(faults.latency_s, MAX_LATENCY_S)
            self._next_token += 1
            token = self._next_token
            self._pending[token] = loop.call_later(delay, self._send_later, token, reply, addr)
        else:
            self.transport.sendto(reply, addr)

    def _send_later(self, token: int, reply: bytes, addr: tuple[str | Any, int]) -> None:
        self._pending.pop(token, None)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)

    def close(self) -> None:
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()
        if self.transport is not None:
            self.transport.close()

    # --- message level ----------------------------------------------------------------------
    def respond(self, data: bytes) -> bytes | None:
        """The encoded answer to one request datagram, or None when the device stays silent."""
        version = int(api.decodeMessageVersion(data))
        if version == _V2C_VERSION:
            return self._respond_v2c(data)
        if version == _V3_VERSION:
            return self._respond_v3(data)
        return None  # SNMPv1 is not configured on the simulated devices

    def _respond_v2c(self, data: bytes) -> bytes | None:
        p_mod = v2c
        request, _ = decoder.decode(data, asn1Spec=p_mod.Message())
        community = bytes(p_mod.apiMessage.get_community(request).asOctets())
        if not hmac.compare_digest(community, accepted_secrets(self.device)[0].encode()):
            return None  # a real agent drops bad communities silently
        pdu = p_mod.apiMessage.get_pdu(request)
        response_pdu = self._process_pdu(pdu)
        if response_pdu is None:
            return None
        response = p_mod.apiMessage.get_response(request)
        p_mod.apiMessage.set_pdu(response, response_pdu)
        return bytes(encoder.encode(response))

    # --- PDU level (shared by v2c and v3) -----------------------------------------------------
    def _process_pdu(self, pdu: Any) -> Any | None:
        tag = pdu.tagSet
        if tag not in (_GET, _GETNEXT, _GETBULK, _SET):
            return None
        api_pdu = v2c.apiPDU
        response = api_pdu.get_response(pdu)
        names = [tuple(name.asTuple()) for name, _ in api_pdu.get_varbinds(pdu)]
        table = mib.device_mib(self.device, started_at=self.started_at)
        out: list[tuple[Any, Any]]
        if tag == _GET:
            out = [(name, self._get(table, name)) for name in names]
        elif tag == _GETNEXT:
            out = [self._next(table, name) for name in names]
        elif tag == _GETBULK:
            non_rep = max(0, int(v2c.apiBulkPDU.get_non_repeaters(pdu)))
            max_rep = max(0, int(v2c.apiBulkPDU.get_max_repetitions(pdu)))
            out = self._bulk(table, names, non_rep, max_rep)
        else:  # SET: the simulated MIB is read-only
            api_pdu.set_error_status(response, _NOT_WRITABLE)
            api_pdu.set_error_index(response, 1)
            out = [(name, value) for name, value in api_pdu.get_varbinds(pdu)]
        api_pdu.set_varbinds(response, out)
        return response

    @staticmethod
    def _get(table: mib.MibTable, name: tuple[int, ...]) -> Any:
        value = mib.lookup(table, name)
        return v2c.NoSuchObject("") if value is None else _to_asn1(value)

    @staticmethod
    def _next(table: mib.MibTable, name: tuple[int, ...]) -> tuple[Any, Any]:
        found = mib.next_after(table, name)
        if found is None:
            return name, v2c.EndOfMibView("")
        return found[0], _to_asn1(found[1])

    def _bulk(
        self, table: mib.MibTable, names: list[tuple[int, ...]], non_rep: int, max_rep: int
    ) -> list[tuple[Any, Any]]:
        out = [self._next(table, name) for name in names[:non_rep]]
        columns = list(names[non_rep:])
        for _ in range(min(max_rep, MAX_BULK_REPETITIONS)):
            if not columns or len(out) + len(columns) > MAX_RESPONSE_VARBINDS:
                break
            row = [self._next(table, name) for name in columns]
            out.extend(row)
            columns = [tuple(name) for name, _ in row]
            if all(isinstance(value, v2c.EndOfMibView) for _, value in row):
                break
        return out

    # --- SNMPv3 / USM -----------------------------------------------------------------------
    def _engine_clock(self) -> tuple[int, int]:
        boot = self.device.boot_time
        if boot != self._seen_boot:  # the device rebooted (e.g. `reboot now` over SSH)
            self._seen_boot = boot
            self.boots += 1
        return self.boots, int(max(0.0, time.time() - (boot or self.started_at)))

    def _usm_keys(self) -> _UsmKeys:
        _, auth_pass, priv_pass = accepted_secrets(self.device)
        if self._keys is None or self._keys.secrets != (auth_pass, priv_pass):
            self._keys = _UsmKeys(
                secrets=(auth_pass, priv_pass),
                auth=localized_key(auth_pass, self.engine_id),
                priv=localized_key(priv_pass, self.engine_id)[:16],
            )
        return self._keys

    def _respond_v3(self, data: bytes) -> bytes | None:
        message, _ = decoder.decode(data, asn1Spec=SNMPv3Message())
        header = message["msgGlobalData"]
        if int(header["msgSecurityModel"]) != _USM_SECURITY_MODEL:
            return None
        msg_id = int(header["msgID"])
        flags = bytes(header["msgFlags"].asOctets())[0]
        params, _ = decoder.decode(
            bytes(message["msgSecurityParameters"].asOctets()), asn1Spec=UsmSecurityParameters()
        )
        engine_id = bytes(params["msgAuthoritativeEngineId"].asOctets())
        user = bytes(params["msgUserName"].asOctets())
        plain = message["msgData"].getName() == "plaintext"
        request_id = 0
        if plain:
            request_id = int(
                v2c.apiPDU.get_request_id(message["msgData"]["plaintext"]["data"].getComponent())
            )

        def report(counter: tuple[int, ...], *, authenticated: bool = False) -> bytes | None:
            if not flags & _REPORTABLE_FLAG:
                return None
            return self._report(msg_id, user, counter, request_id, authenticated)

        if engine_id != self.engine_id:
            return report(USM_UNKNOWN_ENGINE_IDS)  # discovery (RFC 3414 §4)
        if user != self.device.credentials.snmp_v3_user.encode():
            return report(USM_UNKNOWN_USER_NAMES)
        if flags & (_AUTH_FLAG | _PRIV_FLAG) != _AUTH_FLAG | _PRIV_FLAG or plain:
            return report(USM_UNSUPPORTED_SEC_LEVELS)  # the simulated devices require authPriv
        keys = self._usm_keys()
        digest = bytes(params["msgAuthenticationParameters"].asOctets())
        if len(digest) != _AUTH_PARAMS_LEN or (at := data.find(digest)) < 0:
            return report(USM_WRONG_DIGESTS)
        zeroed = data[:at] + bytes(_AUTH_PARAMS_LEN) + data[at + _AUTH_PARAMS_LEN :]
        expected = hmac.new(keys.auth, zeroed, hashlib.sha1).digest()[:_AUTH_PARAMS_LEN]
        if not hmac.compare_digest(expected, digest):
            return report(USM_WRONG_DIGESTS)
        boots, engine_time = self._engine_clock()
        msg_boots = int(params["msgAuthoritativeEngineBoots"])
        msg_time = int(params["msgAuthoritativeEngineTime"])
        if msg_boots != boots or abs(msg_time - engine_time) > TIME_WINDOW_S:
            return report(USM_NOT_IN_TIME_WINDOWS, authenticated=True)
        salt = bytes(params["msgPrivacyParameters"].asOctets())
        if len(salt) != 8:
            return report(USM_DECRYPTION_ERRORS)
        iv = struct.pack(">II", msg_boots, msg_time) + salt
        decryptor = _aes(keys.priv, iv).decryptor()
        encrypted = bytes(message["msgData"]["encryptedPDU"].asOctets())
        cleartext = decryptor.update(encrypted) + decryptor.finalize()
        try:
            scoped, _ = decoder.decode(cleartext, asn1Spec=ScopedPDU())
        except PyAsn1Error:
            return report(USM_DECRYPTION_ERRORS)
        response_pdu = self._process_pdu(scoped["data"].getComponent())
        if response_pdu is None:
            return None
        out_scoped = self._scoped_pdu(bytes(scoped["contextName"].asOctets()), response_pdu)
        return self._wrap_v3(msg_id, user, out_scoped, keys, encrypt=True)

    def _scoped_pdu(self, context_name: bytes, pdu: Any) -> Any:
        scoped = ScopedPDU()
        scoped.setComponentByPosition(0, self.engine_id)
        scoped.setComponentByPosition(1, context_name)
        scoped.setComponentByPosition(2)
        scoped.getComponentByPosition(2).setComponentByType(
            pdu.tagSet, pdu, verifyConstraints=False, matchTags=False, matchConstraints=False
        )
        return scoped

    def _report(
        self,
        msg_id: int,
        user: bytes,
        counter: tuple[int, ...],
        request_id: int,
        authenticated: bool,
    ) -> bytes:
        count = self._usm_counters.get(counter, 0) + 1
        self._usm_counters[counter] = count
        pdu = v2c.ReportPDU()
        v2c.apiPDU.set_defaults(pdu)
        v2c.apiPDU.set_request_id(pdu, request_id)
        v2c.apiPDU.set_varbinds(pdu, [(counter, v2c.Counter32(count))])
        scoped = self._scoped_pdu(b"", pdu)
        keys = self._usm_keys() if authenticated else None
        return self._wrap_v3(msg_id, user, scoped, keys, encrypt=False)

    def _wrap_v3(
        self, msg_id: int, user: bytes, scoped: Any, keys: _UsmKeys | None, *, encrypt: bool
    ) -> bytes:
        boots, engine_time = self._engine_clock()
        flags = 0
        salt = b""
        payload: bytes | None = None
        if keys is not None:
            flags |= _AUTH_FLAG
            if encrypt:
                flags |= _PRIV_FLAG
                salt = os.urandom(8)
                encryptor = _aes(
                    keys.priv, struct.pack(">II", boots, engine_time) + salt
                ).encryptor()
                clear = bytes(encoder.encode(scoped))
                payload = encryptor.update(clear) + encryptor.finalize()
        params = UsmSecurityParameters()
        params.setComponentByPosition(0, self.engine_id)
        params.setComponentByPosition(1, boots)
        params.setComponentByPosition(2, engine_time)
        params.setComponentByPosition(3, user)
        params.setComponentByPosition(4, bytes(_AUTH_PARAMS_LEN) if keys is not None else b"")
        params.setComponentByPosition(5, salt)
        encoded_params = bytes(encoder.encode(params))

        message = SNMPv3Message()
        message.setComponentByPosition(0, _V3_VERSION)
        header = message.setComponentByPosition(1).getComponentByPosition(1)
        header.setComponentByPosition(0, msg_id)
        header.setComponentByPosition(1, MAX_MSG_SIZE)
        header.setComponentByPosition(2, bytes([flags]))
        header.setComponentByPosition(3, _USM_SECURITY_MODEL)
        message.setComponentByPosition(2, encoded_params)
        data = message.setComponentByPosition(3).getComponentByPosition(3)
        if payload is not None:
            data.setComponentByName("encryptedPDU", payload)
        else:
            data.setComponentByName("plaintext", scoped)
        whole = bytes(encoder.encode(message))
        if keys is None:
            return whole
        # Sign: HMAC over the message with the 12-octet placeholder, then splice the digest in.
        placeholder = b"\x04\x0c" + bytes(_AUTH_PARAMS_LEN)
        at = whole.find(encoded_params) + encoded_params.find(placeholder) + 2
        digest = hmac.new(keys.auth, whole, hashlib.sha1).digest()[:_AUTH_PARAMS_LEN]
        return whole[:at] + digest + whole[at + _AUTH_PARAMS_LEN :]


@dataclass(slots=True)
class SnmpAgentHandle:
    """The running SNMP face of a fleet: `ports` maps serial to the bound UDP port."""

    ports: dict[str, int] = field(default_factory=dict)
    _responders: list[_DeviceResponder] = field(default_factory=list)

    async def close(self) -> None:
        """Stop answering and release every socket."""
        for responder in self._responders:
            responder.close()
        self._responders.clear()
        await asyncio.sleep(0)  # let the transports run their close callbacks


def serves_snmp(device: SimDevice) -> bool:
    """Analog products (and devices without an SNMP port) answer nothing."""
    return device.family != "analog" and device.snmp_port is not None and bool(device.host)


async def start_snmp_agent(
    devices: Sequence[SimDevice], *, port: int | None = None
) -> SnmpAgentHandle:
    """Bind one UDP socket per networked device (its own address, port 161 unless `port`)."""
    loop = asyncio.get_running_loop()
    started_at = time.time()
    handle = SnmpAgentHandle()
    try:
        for device in devices:
            if not serves_snmp(device):
                continue
            wanted = port if port is not None else (device.snmp_port or SNMP_PORT)
            sock = bind_with_fallback(device.host, wanted, socket.SOCK_DGRAM, rcvbuf=RCVBUF_BYTES)
            responder = _DeviceResponder(device, started_at)
            try:
                await loop.create_datagram_endpoint(lambda r=responder: r, sock=sock)  # type: ignore[misc]
            except OSError:
                sock.close()
                raise
            handle._responders.append(responder)
            handle.ports[device.serial] = sock.getsockname()[1]
    except BaseException:
        with contextlib.suppress(Exception):
            await handle.close()
        raise
    return handle
