"""Signed confirmations: the key file, record signatures, checkpoints and the cross-check."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from controller.confirmations import (
    ChainReport,
    Checkpoint,
    CheckpointError,
    CheckpointForged,
    cross_check,
    record_message,
    verify_chain,
)
from inventory.errors import SecretError
from inventory.signing_key import SigningKey, VerifyKey, signing_key_file
from tests.unit.controller.test_confirmation_chain import _chain as unsigned_chain

T0 = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def _chain(length: int, key: SigningKey | None) -> list[dict[str, Any]]:
    """The chain tests' `length` linked records, of operations op-1…, signed with `key` unless
    it is None."""
    records = unsigned_chain(length)
    for seq, record in enumerate(records, start=1):
        record["reactivation_id"] = f"op-{seq}"
        record["signature"] = None if key is None else key.sign(record_message(record["hash"]))
    return records


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


def test_verify_names_the_first_unsigned_or_foreign_record() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    records = _chain(4, key)
    assert verify_chain(records, key=key.public).intact
    records[2]["signature"] = other.sign(record_message(records[2]["hash"]))
    problem = verify_chain(records, key=key.public).problem
    assert problem is not None
    assert (problem.number, problem.field) == (records[2]["number"], "signature")
    assert verify_chain(records).intact  # without a key only the hashes are checked

    legacy = _chain(3, None)
    problem = verify_chain(legacy, key=key.public).problem
    assert problem is not None
    assert (problem.seq, problem.field) == (1, "signature")
    assert verify_chain(legacy, key=key.public, unsigned_until=3).intact


def test_cross_check_names_the_first_missing_or_replaced_record() -> None:
    records = _chain(5, None)
    references = [(f"op-{n}", r["number"]) for n, r in enumerate(records, start=1)]
    assert cross_check(records, references) is None
    problem = cross_check(records[:3], references)
    assert problem is not None
    assert (problem.number, problem.field) == (records[3]["number"], "missing")
    problem = cross_check([], references)
    assert problem is not None
    assert problem.number == records[0]["number"]
    swapped = [*records[:4], {**records[4], "reactivation_id": "op-forged"}]
    problem = cross_check(swapped, references)
    assert problem is not None
    assert (problem.number, problem.field) == (records[4]["number"], "reactivation_id")


def _checkpoint(records: list[dict[str, Any]], key: SigningKey) -> Checkpoint:
    report = verify_chain(records, key=key.public)
    return Checkpoint.sign(report, records[-1]["number"] if records else None, key)


def test_checkpoint_round_trips_and_finds_deleted_or_rewritten_records() -> None:
    key = SigningKey.generate()
    records = _chain(5, key)
    made = _checkpoint(records, key)
    text = made.to_json()
    assert "\n" not in text
    read = Checkpoint.parse(text, key.public)
    assert read == made
    assert read.check(records) is None
    assert read.check([*records, *_chain(6, key)[5:]]) is None  # appended since: fine

    gone = read.check(records[:4])
    assert gone is not None
    assert (gone.number, gone.field) == (records[4]["number"], "missing")
    all_gone = read.check([])
    assert all_gone is not None
    assert (all_gone.seq, all_gone.field) == (1, "missing")

    rewritten = _chain(5, key)
    rewritten[4] = {**rewritten[4], "hash": "0" * 64}
    changed = read.check(rewritten)
    assert changed is not None
    assert (changed.number, changed.field) == (records[4]["number"], "hash")


def test_a_forged_or_foreign_checkpoint_is_rejected() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    records = _chain(5, key)
    text = _checkpoint(records, key).to_json()
    shortened = json.dumps({**json.loads(text), "count": 4})
    with pytest.raises(CheckpointForged, match="not valid"):
        Checkpoint.parse(shortened, key.public)
    with pytest.raises(CheckpointForged, match=f"signed by key {other.public.key_id}"):
        Checkpoint.parse(_checkpoint(_chain(5, other), other).to_json(), key.public)
    with pytest.raises(CheckpointError, match="not JSON"):
        Checkpoint.parse("count=5", key.public)
    with pytest.raises(CheckpointError, match="malformed"):
        Checkpoint.parse(json.dumps({**json.loads(text), "count": "5"}), key.public)
    tampered = ChainReport(2, "a" * 64, verify_chain([{"seq": 9}]).problem)
    with pytest.raises(CheckpointError, match="not intact"):
        Checkpoint.sign(tampered, None, key)


def test_a_key_that_cannot_be_written_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*_args: object, **_kwargs: object) -> tuple[int, str]:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(SecretError, match=r"cannot create the signing key file .*Read-only"):
        SigningKey.load_or_create(tmp_path / "k")
    assert not (tmp_path / "k").exists()
