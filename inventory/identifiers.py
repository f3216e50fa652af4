"""Normalising device identifiers: MAC addresses and serial numbers, in every spelling admins use.

Pure functions, no store knowledge. A MAC normalises to 12 lower-case hex digits (the form Poly's
own REST API reports, `data.MACAddress`); a serial is trimmed and upper-cased.
"""

from __future__ import annotations

import re
from functools import lru_cache

from inventory.catalog import POLY_OUIS
from inventory.errors import InvalidIdentifier

MAX_SERIAL_LENGTH = 64
_HEX_DIGITS = "0123456789abcdef"
_HEX = frozenset(_HEX_DIGITS)
_SEPARATORS = re.compile(r"[\s:.\-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1: Unicode category Cc


def normalize_mac(text: str) -> str:
    """Return `text` as 12 lower-case hex digits, or raise InvalidIdentifier saying why.

    Accepts `00:04:F2:AA:BB:CC`, `00-04-f2-aa-bb-cc`, `0004.f2aa.bbcc`, `0004f2aabbcc` and stray
    spaces. Broadcast, multicast and all-zero addresses cannot belong to one device.
    """
    raw = text.strip()
    if not raw:
        raise InvalidIdentifier("mac", text, "is empty")
    # Fast path for the usual spellings (an import normalises every row); regex only if needed.
    digits = raw.replace(":", "").replace("-", "").replace(".", "").lower()
    if digits.strip(_HEX_DIGITS):
        digits = _SEPARATORS.sub("", digits)
        bad = sorted({ch for ch in digits if ch not in _HEX})
        if bad:
            shown = "".join(bad)
            raise InvalidIdentifier(
                "mac", text, f"has characters that are not hex digits: {shown!r}"
            )
    if len(digits) != 12:
        raise InvalidIdentifier("mac", text, f"has {len(digits)} hex digits, a MAC has 12")
    if digits == "000000000000":
        raise InvalidIdentifier("mac", text, "is the all-zero address")
    if digits == "ffffffffffff":
        raise InvalidIdentifier("mac", text, "is the broadcast address")
    if int(digits[1], 16) & 1:
        raise InvalidIdentifier("mac", text, "is a multicast address (group bit set)")
    return digits


def normalize_serial(text: str) -> str:
    """Return `text` trimmed and upper-cased, or raise InvalidIdentifier saying why."""
    serial = text.strip().upper()
    if not serial:
        raise InvalidIdentifier("serial", text, "is empty")
    if _CONTROL.search(serial):
        raise InvalidIdentifier("serial", text, "contains control characters")
    if len(serial) > MAX_SERIAL_LENGTH:
        raise InvalidIdentifier(
            "serial", text, f"is {len(serial)} characters long, the limit is {MAX_SERIAL_LENGTH}"
        )
    return serial


def format_mac(mac: str, separator: str = ":") -> str:
    """Spell a normalised MAC the colon way (`00:04:f2:aa:bb:cc`) for people to read."""
    return separator.join(mac[i : i + 2] for i in range(0, 12, 2))


@lru_cache(maxsize=1)
def _manuf_vendor_lookup() -> object | None:
    try:
        import manuf  # loading the OUI database costs ~0.1 s, only when asked
    except ImportError:  # pragma: no cover - manuf is a declared dependency
        return None
    parser: object = manuf.MacParser()
    return parser


def mac_vendor(mac: str) -> str | None:
    """The IEEE vendor of a normalised MAC per Wireshark's manuf database, if known."""
    parser = _manuf_vendor_lookup()
    if parser is None:  # pragma: no cover
        return None
    vendor = parser.get_manuf(format_mac(mac))  # type: ignore[attr-defined]
    return str(vendor) if vendor else None


POLY_VENDOR_NAMES = frozenset({"Poly", "Polycom"})


def is_poly_oui(mac: str) -> bool:
    """Whether a normalised MAC lies in one of Poly's OUIs.

    The known OUIs answer without loading the database; any other prefix is looked up, so an
    OUI Poly registers later counts as soon as the manuf data has it.
    """
    return mac[:6] in POLY_OUIS or mac_vendor(mac) in POLY_VENDOR_NAMES


def mac_warning(mac: str) -> str | None:
    """A warning for a MAC outside Poly's OUIs (allowed: resold or replaced NICs exist)."""
    if is_poly_oui(mac):
        return None
    vendor = mac_vendor(mac)
    owner = f"registered to {vendor}" if vendor else "of an unknown vendor"
    return f"MAC {format_mac(mac)} is not in a Poly OUI ({owner})"


def looks_like_mac(text: str) -> bool:
    """Whether a device ID typed by a user is a MAC rather than a serial."""
    try:
        normalize_mac(text)
    except InvalidIdentifier:
        return False
    return True
