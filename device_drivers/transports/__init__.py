"""What drivers depend on: small transport interfaces (Protocols), never pysnmp/aiohttp/asyncssh.

The concrete implementations (snmp.py, http.py, ssh.py) translate every library exception into
`device_drivers.errors` once; tests can hand drivers fakes of these Protocols instead.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from yarl import URL

from device_drivers.errors import MalformedReply
from inventory.models import CredentialProfile

SnmpScalar = int | str | bytes | None
"""A decoded SNMP value: INTEGER/Counter/Gauge/TimeTicks → int, OCTET STRING → str when it
is printable UTF-8 else bytes, OBJECT IDENTIFIER → dotted str, noSuchObject/Instance → None."""


@dataclass(frozen=True, slots=True)
class SnmpTarget:
    """Where and how to send SNMP requests to one device."""

    host: str
    port: int = 161
    credentials: CredentialProfile | None = None
    timeout: float = 1.0
    retries: int = 1
    max_repetitions: int | None = None
    """GETBULK page size of walks (None: the client's default); a column known to hold a row or
    two asks for a small page, so the reply does not carry (and we decode) rows past it."""


class SnmpClient(Protocol):
    """SNMP GET and walk; one client (engine) per event loop, shared by every device."""

    async def get(self, target: SnmpTarget, oids: Sequence[str]) -> dict[str, SnmpScalar]:
        """Values of `oids` (numeric, dotted) keyed by the OID as asked."""
        ...

    async def walk(self, target: SnmpTarget, base_oid: str) -> list[tuple[str, SnmpScalar]]:
        """Every (oid, value) under `base_oid`, in order (GETBULK)."""
        ...

    async def close(self) -> None: ...


PinCallback = Callable[[str], Awaitable[None]]
"""Called with the fingerprint / host key seen on first contact, so it can be pinned."""


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """How a device proves its identity: pinned value, CA bundle, or (with a warning) nothing.

    `pinned` None with `pin_on_first_use` means: accept what the device shows this time and
    report it through `on_first_use`; afterwards a different value is a hard error.
    """

    pinned: str | None = None
    pin_on_first_use: bool = True
    ca_bundle: str | None = None
    insecure: bool = False
    on_first_use: PinCallback | None = None


@dataclass(frozen=True, slots=True)
class HttpReply:
    """An HTTP response, read whole (device replies are small)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    cookies: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body as JSON; raises MalformedReply (not ValueError) when it is not JSON."""
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            snippet = self.body[:60].decode("utf-8", "replace")
            raise MalformedReply(f"reply is not JSON ({exc}): {snippet!r}") from None


HttpAuthKind = Literal["basic", "digest"]


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """One device's HTTPS endpoint."""

    host: str
    port: int = 443
    scheme: Literal["https", "http"] = "https"
    user: str | None = None
    password: str | None = None
    auth: HttpAuthKind | None = "basic"
    trust: TrustPolicy = field(default_factory=TrustPolicy)
    timeout: float = 5.0

    def url(self, path: str) -> URL:
        """The URL of `path` (not percent-encoded; `?` and `#` stay part of the path) on this
        endpoint, built by yarl from its parts: a host that is more than an address raises
        ValueError instead of becoming a path, a query or a user (issue 9)."""
        return URL.build(
            scheme=self.scheme,
            host=self.host,
            port=self.port,
            path=path if path.startswith("/") else "/" + path,
        )


class HttpClient(Protocol):
    """HTTP(S) requests over one shared connection pool with a connection limit."""

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
        """One request; auth per `target.auth`; TLS checked per `target.trust`. `data` is a raw
        body (e.g. a provisioning file), sent instead of `json`."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SshTarget:
    """One device's SSH command API."""

    host: str
    port: int = 22
    user: str | None = None
    password: str | None = None
    key_file: str | None = None
    trust: TrustPolicy = field(default_factory=TrustPolicy)
    timeout: float = 10.0
    prompt: str | None = "-> "
    pacing: float = 0.0
    idle: float = 1.0
    """Without a prompt, a reply ends when the line has been quiet this long."""
    complete: Callable[[str], bool] | None = None
    """Whether a banner or reply (newlines normalised, echo removed) is whole: documented
    terminators end a reply at once when the device prints no prompt."""


class SshSession(Protocol):
    """An open interactive session: one command at a time, a reply up to the next prompt or,
    from a device that prints none, up to a documented terminator or an idle line."""

    banner: str

    async def command(self, line: str) -> str:
        """Send one command line and return its reply (without the echoed command or prompt)."""
        ...

    async def close(self) -> None: ...


class SshClient(Protocol):
    """Opens SSH sessions; private keys are loaded once and reused across connections."""

    async def open(self, target: SshTarget) -> SshSession: ...

    async def close(self) -> None: ...
