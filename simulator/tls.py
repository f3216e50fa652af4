"""Self-signed TLS certificates for the simulated HTTPS faces, cheap enough for 1,000 devices.

One ECDSA P-256 key pair per fleet seed signs every device certificate (ECDSA halves the server's
handshake cost against RSA, performance-baselines.md section 2), with deterministic signatures, so
the same seed presents the same certificates after a restart and pinning clients stay happy.
Phones carry their MAC as the CN, as real phones do. A "certificate changed" fault swaps in a
certificate made with a second key pair during the handshake.
"""

from __future__ import annotations

import hashlib
import ssl
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from simulator.state import SimDevice

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_NOT_BEFORE = datetime(2024, 1, 1, tzinfo=UTC)
_NOT_AFTER = datetime(2044, 1, 1, tzinfo=UTC)
NORMAL = "normal"
CHANGED = "changed"


def _derived_key(seed: int, variant: str) -> ec.EllipticCurvePrivateKey:
    digest = hashlib.sha256(f"polyfleet-sim-tls|{seed}|{variant}".encode()).digest()
    scalar = int.from_bytes(digest, "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def common_name_for(device: SimDevice) -> str:
    """Phones present their MAC as CN (poly-device-apis.md 1.1); other devices their name."""
    if device.family in {"vvx", "trio", "ccx"} and device.mac:
        return device.mac
    return device.system_name


class CertificateFactory:
    """Builds and caches one SSL context per (common name, variant); `close()` removes files."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._dir = tempfile.TemporaryDirectory(prefix="polyfleet-sim-tls-")
        self._keys: dict[str, tuple[ec.EllipticCurvePrivateKey, Path]] = {}
        self._contexts: dict[tuple[str, str], ssl.SSLContext] = {}

    def close(self) -> None:
        """Remove the PEM files; contexts already loaded keep working."""
        self._dir.cleanup()

    def _key(self, variant: str) -> tuple[ec.EllipticCurvePrivateKey, Path]:
        if variant not in self._keys:
            key = _derived_key(self._seed, variant)
            path = Path(self._dir.name) / f"{variant}.key.pem"
            path.touch(mode=0o600)
            path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            self._keys[variant] = (key, path)
        return self._keys[variant]

    def certificate(self, common_name: str, variant: str = NORMAL) -> x509.Certificate:
        """The certificate a device with this CN presents (same inputs, same bytes)."""
        key, _ = self._key(variant)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Polycom"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        serial = int.from_bytes(hashlib.sha256(f"{common_name}|{variant}".encode()).digest()[:16])
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(serial >> 1 or 1)
            .not_valid_before(_NOT_BEFORE)
            .not_valid_after(_NOT_AFTER)
            .sign(key, hashes.SHA256(), ecdsa_deterministic=True)
        )

    def context(self, common_name: str, variant: str = NORMAL) -> ssl.SSLContext:
        """A server context presenting this CN's certificate, built once and reused."""
        cache_key = (common_name, variant)
        if cache_key not in self._contexts:
            _, key_path = self._key(variant)
            digest = hashlib.sha256(f"{common_name}|{variant}".encode()).hexdigest()[:24]
            cert_path = Path(self._dir.name) / f"{digest}.crt.pem"
            cert = self.certificate(common_name, variant)
            cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            ctx = _server_context()
            ctx.load_cert_chain(cert_path, key_path)
            self._contexts[cache_key] = ctx
        return self._contexts[cache_key]

    def device_context(self, device: SimDevice) -> ssl.SSLContext:
        """The device's listening context; while its `tls_cert_changed` fault is on it shows
        another certificate.

        Only a bare context is made here (about 0.1 ms); the device's certificate is signed and
        loaded at its first handshake and cached, so thousands of devices start quickly
        (signing, writing and loading a certificate costs about 1 ms each, twice per device).
        """
        common_name = common_name_for(device)
        front = _server_context()
        front.sni_callback = _select(
            lambda: CHANGED if device.faults.tls_cert_changed else NORMAL,
            lambda variant: self.context(common_name, variant),
        )
        return front


def _server_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _select(
    variant: Callable[[], str], context_for: Callable[[str], ssl.SSLContext]
) -> Callable[[ssl.SSLObject, str | None, ssl.SSLContext], None]:
    # OpenSSL runs the servername callback for every ClientHello, with or without SNI, before
    # it picks a certificate, so the switch works for clients that connect by IP address too.
    def callback(ssl_object: ssl.SSLObject, _server_name: str | None, _ctx: ssl.SSLContext) -> None:
        ssl_object.context = context_for(variant())

    return callback
