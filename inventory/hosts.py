"""Device addresses: an IP literal or a DNS name, optionally with a port, and nothing else.

A host goes into URLs, SNMP targets and SSH connections. Anything more than an address (a path,
a user, a scheme, spaces, shell characters) would change where a request goes or what it
carries (issue 9: `127.77.14.18/evil?x=` sent an authenticated request to another path), so it
is refused on every way in (import, `inventory add`, discover, the API), never escaped.

Accepted: IPv4 dotted quads (`10.1.2.3`), IPv6 (`fe80::1`, `[fe80::1]`), and DNS names of
RFC 1123 labels (letters, digits, inner hyphens; 63 characters a label, 253 a name; a trailing
dot is allowed), non-ASCII names where IDNA (UTS #46) can encode them. With a port where the
caller allows one: `host:port`, `[v6]:port`. IPv6 is kept in its compressed form without
brackets; IPv4 addresses and names are kept as written. A name whose last label is all digits
(`127.1`, `1.2.3.999`) is refused: it would be a malformed IPv4 address, not a name.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from inventory.errors import InvalidIdentifier

MAX_NAME_LENGTH = 253
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z", re.IGNORECASE)
_ALLOWED_ASCII = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}\Z")
_NAME = re.compile(
    r"(?=.{1,253}\Z)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*"
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.?\Z",
    re.IGNORECASE,
)
_NOTHING_ELSE = "an IP address or DNS name, nothing else"


@dataclass(frozen=True, slots=True)
class HostPort:
    """A validated address: `host` as stored (IPv6 without brackets), `port` if one was given."""

    host: str
    port: int | None = None


def parse_host(text: str, *, allow_port: bool = True, field: str = "host") -> HostPort:
    """`text` as a host and optional port, or InvalidIdentifier(`field`, …) saying what is wrong.

    Without `allow_port` a port is refused, with a hint to give it in its own field.
    """
    raw = text.strip()
    if _usual(raw):
        return HostPort(raw)
    return _parse(raw, text, allow_port=allow_port, field=field)


def normalize_host(text: str) -> str:
    """A device record's host: an address without a port (ports have their own fields)."""
    raw = text.strip()
    if _usual(raw):
        return raw
    return _parse(raw, text, allow_port=False, field="host").host


def _usual(raw: str) -> bool:
    """An IPv4 address or ASCII name, told quickly (an import checks every row)."""
    if _IPV4.match(raw):
        return True
    return _NAME.match(raw) is not None and not raw.rstrip(".").rpartition(".")[2].isdigit()


def _parse(raw: str, text: str, *, allow_port: bool, field: str) -> HostPort:
    """The general path: accepts what the fast path does and more, and explains a refusal."""
    if not raw:
        raise InvalidIdentifier(field, text, "is empty")
    bad = next((ch for ch in raw if ch.isascii() and ch not in _ALLOWED_ASCII), None)
    if bad is None:
        bad = next((ch for ch in raw if not ch.isprintable() or ch.isspace()), None)
    if bad is not None:
        raise InvalidIdentifier(field, text, f"contains {bad!r}: a host is {_NOTHING_ELSE}")
    if raw.startswith("["):
        inner, close, rest = raw[1:].partition("]")
        if not close:
            raise InvalidIdentifier(field, text, "opens '[' without closing it")
        host = _ipv6(inner, text, field)
        if rest and not rest.startswith(":"):
            raise InvalidIdentifier(
                field, text, f"has {rest!r} after ']': a host is {_NOTHING_ELSE}"
            )
        port_text: str | None = rest[1:] if rest else None
    elif raw.count(":") > 1:
        host, port_text = _ipv6(raw, text, field), None
    else:
        name, colon, after = raw.partition(":")
        host, port_text = _ipv4_or_name(name, text, field), after if colon else None
    if port_text is None:
        return HostPort(host)
    port = _port(port_text, text, field)
    if not allow_port:
        raise InvalidIdentifier(
            field,
            text,
            f"has a port (:{port}); give the host alone and the port in its own field "
            "(https_port, snmp_port or ssh_port)",
        )
    return HostPort(host, port)


def _ipv6(text: str, original: str, field: str) -> str:
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError as exc:
        raise InvalidIdentifier(field, original, f"is not an IPv6 address ({exc})") from None


def _ipv4_or_name(name: str, original: str, field: str) -> str:
    if not name:
        raise InvalidIdentifier(field, original, "has a port but no host")
    ascii_name = name
    if not name.isascii():
        import idna  # only for a non-ASCII name: every command that loads the models imports us

        try:
            ascii_name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise InvalidIdentifier(
                field, original, f"is not a name IDNA can encode ({exc})"
            ) from None
    labels = ascii_name[:-1].split(".") if ascii_name.endswith(".") else ascii_name.split(".")
    if labels[-1].isdigit():
        try:
            return str(ipaddress.IPv4Address(name))
        except ValueError as exc:
            raise InvalidIdentifier(field, original, f"is not an IPv4 address ({exc})") from None
    if len(ascii_name) > MAX_NAME_LENGTH:
        raise InvalidIdentifier(
            field, original, f"is a DNS name of {len(ascii_name)} characters, the limit is 253"
        )
    for label in labels:
        if not _LABEL.match(label):
            why = "an empty label" if not label else f"label {label!r}"
            raise InvalidIdentifier(
                field,
                original,
                f"has {why}: a DNS name is labels of letters, digits and inner hyphens "
                "(at most 63 characters each) joined by dots",
            )
    return name


def _port(text: str, original: str, field: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise InvalidIdentifier(field, original, f"has port {text!r}, which is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise InvalidIdentifier(field, original, f"has port {port}, outside 1-65535")
    return port
