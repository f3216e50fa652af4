"""Activation keys of the simulated fleet: serial + feature + expiry bound by an HMAC.

Only the simulator and its licensing portal know the secret, so a key cannot be forged, moved to
another serial or have its expiry stretched: each of those fails `check_key` with its own reason,
which every device family then reports in its own way. The key format is modeled (no public Poly
source documents one): `PFK1-<serial>-<feature>-<YYYYMMDD>-<signature>`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

KEY_PREFIX = "PFK1"
_SIG_HEX_CHARS = 20


class KeyProblem(StrEnum):
    """Why a device refuses a key."""

    MALFORMED = "malformed"
    TAMPERED = "tampered"
    WRONG_SERIAL = "wrong_serial"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class KeyCheck:
    """Outcome of checking a key on a device: the feature and expiry it grants, or the problem."""

    ok: bool
    feature: str | None = None
    expires_on: date | None = None
    problem: KeyProblem | None = None


def _signature(secret: bytes, serial: str, feature: str, expires_on: date) -> str:
    message = f"{serial}|{feature}|{expires_on.isoformat()}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:_SIG_HEX_CHARS].upper()


def issue_key(secret: bytes, serial: str, feature: str, expires_on: date) -> str:
    """Mint a key for `serial` and `feature`, valid through `expires_on`."""
    if "-" in feature or "-" in serial:
        raise ValueError("serial and feature must not contain '-' inside an activation key")
    sig = _signature(secret, serial, feature, expires_on)
    return f"{KEY_PREFIX}-{serial}-{feature}-{expires_on:%Y%m%d}-{sig}"


def check_key(secret: bytes, key: str, serial: str, *, today: date | None = None) -> KeyCheck:
    """Check `key` as the device with `serial` would before loading it."""
    parts = key.strip().split("-")
    if len(parts) != 5 or parts[0] != KEY_PREFIX:
        return KeyCheck(ok=False, problem=KeyProblem.MALFORMED)
    _, key_serial, feature, expiry_text, sig = parts
    try:
        expires_on = datetime.strptime(expiry_text, "%Y%m%d").replace(tzinfo=UTC).date()
    except ValueError:
        return KeyCheck(ok=False, problem=KeyProblem.MALFORMED)
    expected = _signature(secret, key_serial, feature, expires_on)
    if not hmac.compare_digest(expected, sig.upper()):
        return KeyCheck(ok=False, problem=KeyProblem.TAMPERED)
    if key_serial.upper() != serial.upper():
        return KeyCheck(ok=False, problem=KeyProblem.WRONG_SERIAL)
    if expires_on < (today or datetime.now(UTC).date()):
        return KeyCheck(ok=False, problem=KeyProblem.EXPIRED)
    return KeyCheck(ok=True, feature=feature, expires_on=expires_on)
