"""The confirmation signing key: its file (made once, 0600, beside the secret key), PEM round
trips, and which signatures it accepts."""

from __future__ import annotations

import errno
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from inventory.errors import SecretError
from inventory.signing_key import SigningKey, VerifyKey, signing_key_file


def test_the_key_is_made_once_0600_beside_the_secret_key() -> None:
    path = signing_key_file()
    assert path.parent == Path(os.environ["POLYFLEET_SECRET_KEY_FILE"]).parent
    assert SigningKey.load() is None  # checking never mints a key
    made = SigningKey.load_or_create()
    assert path.stat().st_mode & 0o777 == 0o600
    again = SigningKey.load_or_create()
    assert again.public.key_id == made.public.key_id
    loaded = SigningKey.load()
    assert loaded is not None
    assert loaded.public.key_id == made.public.key_id


def test_processes_racing_to_make_the_key_all_end_up_with_the_same_one() -> None:
    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: SigningKey.load_or_create().public.key_id, range(16)))
    assert len(ids) == 1
    assert [p.name for p in signing_key_file().parent.iterdir() if "signing" in p.name] == [
        signing_key_file().name
    ]  # no temporary file left behind


def test_a_key_file_others_can_read_is_refused_with_the_fix() -> None:
    SigningKey.load_or_create()
    signing_key_file().chmod(0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        SigningKey.load()


def test_a_corrupt_key_file_is_an_error_not_a_new_key(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text("not a key")
    path.chmod(0o600)
    with pytest.raises(SecretError, match="Ed25519"):
        SigningKey.load_or_create(path)
    assert path.read_text() == "not a key"


def test_public_key_round_trips_through_pem_and_checks_only_its_own_signatures() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    public = VerifyKey.from_pem(key.public.pem().encode(), source="pem")
    assert public.key_id == key.public.key_id
    assert "PRIVATE" not in key.public.pem()
    signature = key.sign(b"m")
    assert public.check(b"m", signature) is None
    does_not_verify = f"the signature does not verify with key {public.key_id}"
    assert public.check(b"n", signature) == does_not_verify
    assert public.check(b"m", other.sign(b"m")) == (
        f"signed by key {other.public.key_id}, not by the trusted key {public.key_id}"
    )
    borrowed_id = f"{public.key_id}:{other.sign(b'm').partition(':')[2]}"
    assert public.check(b"m", borrowed_id) == does_not_verify
    assert public.check(b"m", "garbage") is not None
    with pytest.raises(SecretError, match="not an Ed25519 public key"):
        VerifyKey.from_pem(b"-----BEGIN PUBLIC KEY-----\nxx\n", source="f")


def test_a_key_that_cannot_be_written_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*_args: object, **_kwargs: object) -> tuple[int, str]:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(SecretError, match=r"cannot create the signing key file .*Read-only"):
        SigningKey.load_or_create(tmp_path / "k")
    assert not (tmp_path / "k").exists()
