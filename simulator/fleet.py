"""Deterministic generation of a simulated Poly fleet: same seed and day, same fleet.

Identity follows Poly facts where public sources give them (UC phone serial = MAC, MACs inside
Poly's OUIs, VideoOS serials like `8L200353429AFC`); firmware, sites and the license mix are
plausible values so that scans, health checks and reactivation have something to find.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from inventory.catalog import MODEL_FAMILIES, POLY_OUIS, ModelFamily
from simulator.errors import SimulatorError
from simulator.licensing import FEATURES_BY_FAMILY, end_of_day
from simulator.state import LicenseState, SimCredentials, SimDevice, SimLicense

DEFAULT_MIX: dict[str, int] = {
    "vvx": 40,
    "trio": 15,
    "ccx": 10,
    "studiox": 10,
    "gs": 10,
    "dma": 5,
    "analog": 10,
}
SITES: tuple[str, ...] = (
    "hq-berlin",
    "branch-munich",
    "branch-hamburg",
    "lab-zurich",
    "remote-vienna",
)
UC_FAMILIES = frozenset({"vvx", "trio", "ccx"})
FAMILIES: dict[str, ModelFamily] = {family.key: family for family in MODEL_FAMILIES}
MAX_DEVICES = 65_000
"""Bounded by the loopback addresses one fleet counts up through."""

_FIRMWARE: dict[str, tuple[str, ...]] = {
    "vvx": ("5.9.7.3480", "6.3.1.8427", "6.4.3.5123", "6.4.6.2035"),
    "trio": ("5.9.5.3197", "7.2.2.1094", "7.2.6.0019"),
    "ccx": ("8.1.3.1301", "8.2.1.0120", "9.0.0.2061"),
    "studiox": ("3.12.0", "4.0.1", "4.1.2", "4.2.0"),
    "gs": ("6.2.2.8-460003", "6.2.2.12-460045"),
    "dma": ("10.2.1", "10.3.0"),
    "rprm": ("10.10.0", "10.11.1"),
    "analog": ("",),
}
_FIRMWARE_BY_MODEL_PREFIX: dict[str, tuple[str, ...]] = {
    # Older lines stopped at older releases (SoundPoint IP / SoundStation IP: UC Software 4.0).
    "SoundPoint IP": ("4.0.15.1009", "4.0.11.0582"),
    "SoundStation IP": ("4.0.15.1009", "4.0.11.0582"),
    "HDX": ("3.1.14-8711", "3.1.13-5607"),
    "Group Series": ("6.2.2.8-460003", "6.2.2.12-460045"),
}
_SERIAL_PREFIX: dict[str, str] = {
    "studiox": "8L",
    "gs": "82",
    "dma": "9D",
    "rprm": "9R",
    "analog": "0F",
}
_HTTPS_PORT: dict[str, int | None] = {
    "vvx": 443,
    "trio": 443,
    "ccx": 443,
    "studiox": 443,
    "gs": None,
    "dma": 8443,
    "rprm": 8443,
    "analog": None,
}
"""Infrastructure REST lives on 8443 (`https://<host>:8443/api/rest/…`, Clariti API docs)."""

# Device-level license categories (weights): most active, some expiring soon, some expired.
DEFAULT_LICENSE_MIX: dict[str, int] = {
    "active": 70,
    "expiring": 12,
    "expired": 13,
    "deactivated": 5,
}
"""`--license-mix`: the share of devices whose first feature is in each category."""


class MixError(SimulatorError, ValueError):
    """A `--mix` value that cannot be used; the message says which part and why."""


def parse_mix(text: str) -> dict[str, int]:
    """Parse `vvx=40,trio=15,...` (percentages, `%` optional) into a mix for `generate_fleet`."""
    return _parse_shares(text, FAMILIES, "family")


def parse_license_mix(text: str) -> dict[str, int]:
    """Parse `active=0,expired=100` (weights of DEFAULT_LICENSE_MIX's categories, missing = 0)."""
    return _parse_shares(text, DEFAULT_LICENSE_MIX, "license category")


def _parse_shares(text: str, known_keys: Mapping[str, object], what: str) -> dict[str, int]:
    mix: dict[str, int] = {}
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep:
            raise MixError(f"{part!r}: expected {what.split()[-1].upper()}=PERCENT")
        if key not in known_keys:
            known = ", ".join(sorted(known_keys))
            raise MixError(f"{key!r}: unknown {what} (known: {known})")
        if key in mix:
            raise MixError(f"{key!r}: given twice")
        number = value.strip().removesuffix("%").strip()
        if not number.isdigit():
            raise MixError(f"{part!r}: percentage must be a whole number >= 0")
        mix[key] = int(number)
    if not mix or sum(mix.values()) <= 0:
        raise MixError(f"mix must give at least one {what} a share above 0")
    return mix


def _allocate(count: int, mix: Mapping[str, int]) -> dict[str, int]:
    """Split `count` by the mix with the largest-remainder method, so counts add up exactly."""
    total = sum(mix.values())
    exact = {key: count * share / total for key, share in mix.items()}
    counts = {key: int(value) for key, value in exact.items()}
    leftover = count - sum(counts.values())
    by_remainder = sorted(exact, key=lambda key: (-(exact[key] - counts[key]), key))
    for key in by_remainder[:leftover]:
        counts[key] += 1
    return counts


@dataclass(slots=True)
class _Uniques:
    macs: set[str]
    serials: set[str]


def _new_mac(rng: random.Random, seen: _Uniques) -> str:
    ouis = sorted(POLY_OUIS)
    for _ in range(1000):
        mac = rng.choice(ouis) + f"{rng.getrandbits(24):06x}"
        if mac not in seen.macs:
            seen.macs.add(mac)
            return mac
    raise RuntimeError("could not find a free MAC address")  # pragma: no cover


def _new_serial(rng: random.Random, family: str, seen: _Uniques) -> str:
    prefix = _SERIAL_PREFIX[family]
    for _ in range(1000):
        serial = (
            f"{prefix}{rng.randint(19, 25):02d}{rng.randint(1, 52):02d}{rng.getrandbits(32):08X}"
        )
        if serial not in seen.serials:
            seen.serials.add(serial)
            return serial
    raise RuntimeError("could not find a free serial number")  # pragma: no cover


def _licenses(
    rng: random.Random, family: str, today: date, license_mix: Mapping[str, int]
) -> dict[str, SimLicense]:
    features = FEATURES_BY_FAMILY.get(family, ())
    if not features:
        return {}
    categories = list(DEFAULT_LICENSE_MIX)
    category = rng.choices(categories, [license_mix.get(c, 0) for c in categories])[0]
    licenses: dict[str, SimLicense] = {}
    for index, feature in enumerate(features):
        kind = category if index == 0 else "active"
        if kind == "active":
            state, expiry = LicenseState.ACTIVE, today + timedelta(days=rng.randint(60, 720))
        elif kind == "expiring":
            state, expiry = LicenseState.ACTIVE, today + timedelta(days=rng.randint(1, 29))
        elif kind == "expired":
            state, expiry = LicenseState.EXPIRED, today - timedelta(days=rng.randint(1, 400))
        else:
            state, expiry = LicenseState.DEACTIVATED, today - timedelta(days=rng.randint(1, 200))
        licenses[feature] = SimLicense(feature=feature, state=state, expires_at=end_of_day(expiry))
    return licenses


def _firmware_choices(family: str, model: str) -> tuple[str, ...]:
    for prefix, versions in _FIRMWARE_BY_MODEL_PREFIX.items():
        if model.startswith(prefix):
            return versions
    return _FIRMWARE[family]


def _credentials(family: str, password: str) -> SimCredentials:
    # UC phones log in as `Polycom`; VideoOS and infrastructure REST use `admin`.
    http_user = "Polycom" if family in UC_FAMILIES else "admin"
    return SimCredentials(http_user=http_user, http_password=password, ssh_password=password)


def _short_model(model: str) -> str:
    return "".join(part for part in model.split() if part not in {"RealPresence", "Series"})


def _hosts(base_address: str) -> ipaddress.IPv4Address:
    base = ipaddress.IPv4Address(base_address)
    if not base.is_loopback:
        raise ValueError(f"{base_address}: the simulated fleet lives on loopback (127.0.0.0/8)")
    return base


def next_address(address: ipaddress.IPv4Address) -> ipaddress.IPv4Address:
    """The next loopback address, skipping .0 and .255 so every address looks like a host."""
    candidate = address + 1
    while candidate.packed[-1] in (0, 255):
        candidate += 1
    if not candidate.is_loopback or candidate == ipaddress.IPv4Address("127.255.255.255"):
        raise ValueError("ran out of loopback addresses")
    return candidate


def generate_fleet(
    count: int,
    mix: Mapping[str, int] | None = None,
    seed: int = 1,
    base_address: str = "127.20.0.1",
    *,
    password: str = "456",
    today: date | None = None,
    license_mix: Mapping[str, int] | None = None,
) -> list[SimDevice]:
    """Build `count` devices; networked ones get consecutive loopback addresses from the base.

    `license_mix` weighs the category of each device's first feature (DEFAULT_LICENSE_MIX)."""
    if not 0 <= count <= MAX_DEVICES:
        raise ValueError(f"device count must be between 0 and {MAX_DEVICES}")
    shares = dict(DEFAULT_MIX if mix is None else mix)
    unknown = set(shares) - set(FAMILIES)
    if unknown:
        raise MixError(f"unknown families in mix: {', '.join(sorted(unknown))}")
    license_shares = dict(DEFAULT_LICENSE_MIX if license_mix is None else license_mix)
    if set(license_shares) - set(DEFAULT_LICENSE_MIX) or sum(license_shares.values()) <= 0:
        raise MixError(f"license mix needs a positive share of {', '.join(DEFAULT_LICENSE_MIX)}")
    day = today or datetime.now(UTC).date()
    rng = random.Random(seed)
    families = [key for key, n in sorted(_allocate(count, shares).items()) for _ in range(n)]
    rng.shuffle(families)
    seen = _Uniques(macs=set(), serials=set())
    address = _hosts(base_address)
    devices: list[SimDevice] = []
    for key in families:
        family = FAMILIES[key]
        model = rng.choice(family.models)
        networked = family.networked
        mac = _new_mac(rng, seen) if networked else None
        if key in UC_FAMILIES and mac is not None:
            serial = mac.upper()
            seen.serials.add(serial)
        else:
            serial = _new_serial(rng, key, seen)
        site = SITES[rng.randrange(len(SITES))]
        host = ""
        if networked:
            host = str(address)
            address = next_address(address)
        devices.append(
            SimDevice(
                serial=serial,
                mac=mac,
                model=model,
                family=key,
                firmware=rng.choice(_firmware_choices(key, model)),
                host=host,
                system_name=f"{site}-{_short_model(model)}-{serial[-6:].lower()}",
                site=site,
                snmp_port=161 if networked else None,
                https_port=_HTTPS_PORT[key],
                ssh_port=22 if key == "gs" else None,
                licenses=_licenses(rng, key, day, license_shares),
                credentials=_credentials(key, password),
            )
        )
    return devices
