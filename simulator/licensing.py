"""License behaviour of a simulated device, shared by every protocol face.

Features per family and their names are modeled (no public Poly source lists them). A device
reports `expired` for an active feature whose expiry has passed, and loads a key only when
`check_key` accepts it for the device's own serial and the feature is one the family offers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from simulator.activation_keys import KeyProblem, check_key
from simulator.state import LicenseState, SimDevice, SimLicense, SimLicenseUpdate

FEATURES_BY_FAMILY: dict[str, tuple[str, ...]] = {
    "vvx": ("productivity_suite", "uc_features"),
    "trio": ("productivity_suite", "uc_features"),
    "ccx": ("productivity_suite", "uc_features"),
    "studiox": ("multipoint", "1080p", "software_update"),
    "gs": ("multipoint", "1080p", "software_update"),
    "dma": ("system",),
    "rprm": ("system",),
    "analog": (),
}
"""Modeled feature names (no '-' inside, because the key format uses '-' as separator)."""

UNKNOWN_FEATURE = "unknown_feature"
"""Reason given when a valid key names a feature the device family does not offer."""


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """What loading one key did: `reason` is a `KeyProblem` value or `UNKNOWN_FEATURE`."""

    ok: bool
    feature: str | None
    reason: str | None = None
    expires_at: datetime | None = None


def end_of_day(day: date) -> datetime:
    """A key is valid through its expiry date, so the license ends at that day's last second."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def effective_state(lic: SimLicense, now: datetime | None = None) -> LicenseState:
    """The state the device reports: an active feature past its expiry is expired."""
    moment = now or datetime.now(UTC)
    if lic.state is LicenseState.ACTIVE and lic.expires_at is not None and lic.expires_at < moment:
        return LicenseState.EXPIRED
    return lic.state


def apply_key(
    device: SimDevice, secret: bytes, key: str, *, now: datetime | None = None
) -> ApplyOutcome:
    """Check `key` against the device's serial and load it; a refused key changes nothing."""
    moment = now or datetime.now(UTC)
    check = check_key(secret, key, device.serial, today=moment.date())
    offered = FEATURES_BY_FAMILY.get(device.family, ())
    if not check.ok or check.feature is None or check.expires_on is None:
        problem = check.problem or KeyProblem.MALFORMED
        outcome = ApplyOutcome(ok=False, feature=check.feature, reason=problem.value)
    elif check.feature not in offered:
        outcome = ApplyOutcome(ok=False, feature=check.feature, reason=UNKNOWN_FEATURE)
    else:
        expires_at = end_of_day(check.expires_on)
        device.licenses[check.feature] = SimLicense(
            feature=check.feature, state=LicenseState.ACTIVE, expires_at=expires_at, key=key
        )
        device.applied_keys.append(key)
        outcome = ApplyOutcome(ok=True, feature=check.feature, expires_at=expires_at)
    device.last_license_update = SimLicenseUpdate(
        at=moment,
        result="loaded" if outcome.ok else "rejected",
        feature=outcome.feature,
        reason=outcome.reason,
    )
    return outcome


def key_reference(key: str | None) -> str | None:
    """A short, non-secret handle for an applied key (its signature tail), for status replies."""
    if not key:
        return None
    return key.rsplit("-", 1)[-1][-6:]
