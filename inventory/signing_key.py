"""The Ed25519 key pair that signs confirmation records and checkpoints of the chain head.

The private key is made on first use and kept beside the secret key file (`secret.key`, see
`inventory.secret_box`) as `confirmations-signing.key`, PKCS#8 PEM, mode 0600; a file that
others can read is refused rather than used. The public key is not secret: `polyfleet
confirmations public-key` prints it (SubjectPublicKeyInfo PEM) for an auditor to keep, and
`verify --public-key FILE` checks with it instead of the local key.

Signed messages carry a domain prefix (`polyfleet-confirmation-v1` or
`polyfleet-checkpoint-v1`), so a record signature can never be replayed as a checkpoint's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from inventory.errors import SecretError
from inventory.secret_box import default_key_file

SIGNING_KEY_NAME = "confirmations-signing.key"


def signing_key_file() -> Path:
    """Where the private signing key lives: beside the secret key file."""
    return default_key_file().with_name(SIGNING_KEY_NAME)


class VerifyKey:
    """An Ed25519 public key and its short id (first 16 hex digits of SHA-256 of the raw key)."""

    def __init__(self, key: Ed25519PublicKey) -> None:
        self._key = key
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]

    @classmethod
    def from_pem(cls, data: bytes, *, source: str) -> VerifyKey:
        """A public key from PEM; a private key PEM is accepted too (its public half)."""
        try:
            loaded = serialization.load_pem_public_key(data)
        except ValueError:
            try:
                private = serialization.load_pem_private_key(data, password=None)
            except (ValueError, TypeError):
                raise SecretError(f"{source} is not an Ed25519 public key in PEM") from None
            if not isinstance(private, Ed25519PrivateKey):
                raise SecretError(f"{source} is not an Ed25519 key") from None
            return cls(private.public_key())
        if not isinstance(loaded, Ed25519PublicKey):
            raise SecretError(f"{source} is not an Ed25519 public key")
        return cls(loaded)

    def pem(self) -> str:
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def check(self, message: bytes, signature: str) -> str | None:
        """None if `signature` (`KEYID:BASE64`) is this key's over `message`, else why not."""
        key_id, sep, encoded = signature.partition(":")
        if not sep:
            return "the signature is malformed (expected KEYID:BASE64)"
        if key_id != self.key_id:
            return f"signed by key {key_id}, not by the trusted key {self.key_id}"
        try:
            raw = base64.b64decode(encoded, validate=True)
            self._key.verify(raw, message)
        except (binascii.Error, ValueError, InvalidSignature):
            return f"the signature does not verify with key {self.key_id}"
        return None


class SigningKey:
    """The private half: signs records and checkpoints as `KEYID:BASE64`."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public = VerifyKey(key.public_key())

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path | None = None) -> SigningKey:
        """The key at `path` (default `signing_key_file()`), created 0600 if missing."""
        path = path or signing_key_file()
        try:
            return cls._load(path)
        except FileNotFoundError:
            pass
        key = cls.generate()
        # Written whole to a private temporary file, then linked into place: a process racing
        # us never reads a half-written key, and the first link wins (the loser uses it).
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        except OSError as exc:
            raise SecretError(f"cannot create the signing key file {path}: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(key._private_pem())
                handle.flush()
                os.fsync(handle.fileno())
            os.link(temp, path)
        except FileExistsError:
            return cls._load(path)
        except OSError as exc:
            raise SecretError(f"cannot write the signing key file {path}: {exc.strerror}") from exc
        finally:
            os.unlink(temp)
        return key

    @classmethod
    def load(cls, path: Path | None = None) -> SigningKey | None:
        """The existing key at `path`, or None when there is none yet (never creates one)."""
        try:
            return cls._load(path or signing_key_file())
        except FileNotFoundError:
            return None

    @classmethod
    def _load(cls, path: Path) -> SigningKey:
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise SecretError(
                    f"the signing key file {path} is accessible by others "
                    f"(mode {stat.S_IMODE(mode):04o}): run `chmod 600 {path}`"
                )
            data = path.read_bytes()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise SecretError(f"cannot read the signing key file {path}: {exc.strerror}") from exc
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, Ed25519PrivateKey):
            raise SecretError(f"the signing key file {path} does not hold an Ed25519 private key")
        return cls(key)

    def _private_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sign(self, message: bytes) -> str:
        encoded = base64.b64encode(self._key.sign(message)).decode("ascii")
        return f"{self.public.key_id}:{encoded}"
