"""Encryption of stored secrets (device passwords, SNMP communities and keys, API tokens).

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) with a key from `POLYFLEET_SECRET_KEY`,
else from a key file created on first use with mode 0600 beside the default store. Losing the
key makes stored secrets unreadable, which is reported as such, never as "wrong password".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from platformdirs import user_config_dir

from inventory.errors import SecretError

KEY_ENV = "POLYFLEET_SECRET_KEY"
KEY_FILE_ENV = "POLYFLEET_SECRET_KEY_FILE"


def default_key_file() -> Path:
    """Where the generated key lives when POLYFLEET_SECRET_KEY is not set."""
    override = os.environ.get(KEY_FILE_ENV)
    if override:
        return Path(override).expanduser()
    return Path(user_config_dir("polyfleet", appauthor=False)) / "secret.key"


def _read_private(path: Path) -> bytes:
    """The key file's bytes, refused if its group or others may read or change it.

    Anyone who can read the key can decrypt every stored password; a key file copied with a
    default umask (0644) must be fixed before use, not used silently.
    """
    with path.open("rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if os.name == "posix" and mode & 0o077:
            raise SecretError(
                f"the secret key file {path} is open to other users (mode {mode & 0o777:04o}): "
                f"run `chmod 600 {path}`, and if others may have read it, rotate the key and "
                "re-enter the credentials"
            )
        return handle.read().strip()


def _load_or_create_key(path: Path) -> bytes:
    try:
        return _read_private(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise SecretError(f"cannot read the secret key file {path}: {exc.strerror}") from exc
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return _read_private(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return key


class SecretBox:
    """Encrypts a mapping of secret fields to one opaque token and back."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError as exc:
            raise SecretError(
                f"the secret key is not a valid Fernet key (32 url-safe base64 bytes): {exc}"
            ) from None

    @classmethod
    def from_environment(cls) -> SecretBox:
        """The box for this user: POLYFLEET_SECRET_KEY, else the (created if missing) key file."""
        key = os.environ.get(KEY_ENV)
        if key:
            return cls(key.strip().encode())
        return cls(_load_or_create_key(default_key_file()))

    def seal(self, secrets: dict[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(secrets, sort_keys=True).encode()).decode()

    def open(self, token: str, *, what: str) -> dict[str, str]:
        try:
            plain = self._fernet.decrypt(token.encode())
        except InvalidToken:
            raise SecretError(
                f"cannot decrypt the secrets of {what}: they were stored with another secret key "
                f"(set {KEY_ENV} or restore the key file)"
            ) from None
        data = json.loads(plain)
        if not isinstance(data, dict):
            raise SecretError(f"the stored secrets of {what} are corrupt")
        return {str(k): str(v) for k, v in data.items()}
