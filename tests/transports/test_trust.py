"""Pin formats and first-use memory shared by the HTTP and SSH transports."""

from __future__ import annotations

from device_drivers.transports import TrustPolicy
from device_drivers.transports.trust import FirstUsePins, parse_sha256_pin, sha256_pin


def test_pin_formats() -> None:
    pin = sha256_pin(b"certificate")
    assert pin.startswith("sha256:")
    assert len(pin) == len("sha256:") + 64
    digest = parse_sha256_pin(pin)
    assert digest is not None
    assert parse_sha256_pin(pin.upper()) == digest
    colons = "SHA256:" + ":".join(digest.hex()[i : i + 2] for i in range(0, 64, 2))
    assert parse_sha256_pin(colons) == digest
    assert parse_sha256_pin("sha1:abcd") is None
    assert parse_sha256_pin("sha256:" + "zz" * 32) is None


async def test_first_use_is_reported_once_and_then_enforced() -> None:
    seen: list[str] = []

    async def remember(pin: str) -> None:
        seen.append(pin)

    pins = FirstUsePins()
    trust = TrustPolicy(on_first_use=remember)
    assert (
        await pins.remember("127.0.0.1", 443, "sha256:" + "a" * 64, trust) == "sha256:" + "a" * 64
    )
    assert (
        await pins.remember("127.0.0.1", 443, "sha256:" + "b" * 64, trust) == "sha256:" + "a" * 64
    )
    assert pins.get("127.0.0.1", 443) == "sha256:" + "a" * 64
    assert pins.get("127.0.0.1", 22) is None
    assert seen == ["sha256:" + "a" * 64]
