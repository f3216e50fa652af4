"""Activation keys in the store: the key sealed by the SecretBox, a short `key_ref` in clear.

Listings and confirmations name a key by its `key_ref` (first 12 hex digits of its SHA-256), so
no output ever needs the key itself; only the workflow that applies a key opens it. A key is
used by at most one re-activation operation (`used_by`); marking it is idempotent for that
operation, so a resumed operation never needs a second key.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.exc import IntegrityError

from inventory.async_engine import AsyncConnection, AsyncEngine
from inventory.errors import InventoryError
from inventory.identifiers import normalize_serial
from inventory.key_files import check_feature, key_ref
from inventory.schema import activation_keys, devices
from inventory.secret_box import SecretBox

_SECRET_FIELD = "key"  # noqa: S105 - the name of the sealed field, not a secret
_CHUNK = 500


class KeyNotFound(InventoryError, LookupError):
    """No stored activation key has that id."""

    def __init__(self, key_id: int) -> None:
        self.key_id = key_id
        super().__init__(f"no activation key with id {key_id}")


class KeyInUse(InventoryError):
    """The key is already used by another re-activation operation."""

    def __init__(self, key_id: int, key_ref: str, used_by: str) -> None:
        self.key_id = key_id
        self.key_ref = key_ref
        self.used_by = used_by
        super().__init__(f"activation key {key_ref} is already used by operation {used_by}")


class DuplicateKey(InventoryError):
    """The same key for the same serial and feature is stored already."""

    def __init__(self, serial: str, feature: str, key_ref: str) -> None:
        self.serial = serial
        self.feature = feature
        self.key_ref = key_ref
        super().__init__(f"key {key_ref} for {serial} {feature} is already stored")


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key to store; `serial` and `feature` are normalised and checked by `KeyStore.add`."""

    serial: str
    feature: str
    key: SecretStr
    expires_at: datetime | None
    source: str


class UnusedKey(NamedTuple):
    """A key ready for use: unpacks as (key_id, key_ref, key_secret, expires_at)."""

    key_id: int
    key_ref: str
    key_secret: SecretStr
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A stored key as listings show it: everything but the key."""

    key_id: int
    serial: str
    feature: str
    key_ref: str
    expires_at: datetime | None
    source: str
    imported_at: datetime
    used_at: datetime | None
    used_by: str | None


@dataclass(slots=True)
class AddReport:
    """What `add_many` wrote (or would write): new keys and the indexes of duplicates."""

    inserted: int = 0
    duplicates: list[int] = field(default_factory=list)


def _ref_triple(key: NewKey) -> tuple[str, str, str]:
    return (key.serial, key.feature, key_ref(key.key.get_secret_value()))


def _validated(key: NewKey) -> NewKey:
    secret = key.key.get_secret_value().strip()
    if not secret:
        raise ValueError("an activation key cannot be empty")
    if key.expires_at is not None and key.expires_at.tzinfo is None:
        raise ValueError("expires_at must carry a timezone")
    source = key.source.strip()
    if not source:
        raise ValueError("the source of a key cannot be empty")
    return NewKey(
        normalize_serial(key.serial),
        check_feature(key.feature),
        SecretStr(secret),
        key.expires_at,
        source[:64],
    )


class KeyStore:
    """Add, list, pick and mark activation keys; only `next_unused` and `get` open a secret."""

    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self.engine = engine
        self.box = box

    def _row(self, key: NewKey, now: datetime) -> dict[str, Any]:
        secret = key.key.get_secret_value()
        return {
            "serial": key.serial,
            "feature": key.feature,
            "key_ref": key_ref(secret),
            "sealed_key": self.box.seal({_SECRET_FIELD: secret}),
            "expires_at": key.expires_at,
            "source": key.source,
            "imported_at": now,
        }

    async def add(self, key: NewKey, *, now: datetime | None = None) -> KeyInfo:
        """Store one key; DuplicateKey if that serial+feature+key_ref is stored already."""
        key = _validated(key)
        moment = now or datetime.now(UTC)
        row = self._row(key, moment)
        try:
            async with self.engine.begin() as conn:
                key_id = (
                    await conn.execute(
                        activation_keys.insert().values(row).returning(activation_keys.c.id)
                    )
                ).scalar_one()
        except IntegrityError:
            raise DuplicateKey(key.serial, key.feature, row["key_ref"]) from None
        return KeyInfo(
            key_id, key.serial, key.feature, row["key_ref"], key.expires_at, key.source,
            moment, None, None,
        )  # fmt: skip

    async def add_many(
        self, keys: Sequence[NewKey], *, dry_run: bool = False, now: datetime | None = None
    ) -> AddReport:
        """Store new keys in one transaction; duplicates of stored keys are skipped and named."""
        checked = [_validated(k) for k in keys]
        moment = now or datetime.now(UTC)
        report = AddReport()
        async with self.engine.begin() as conn:
            stored = await self._stored_refs(conn, {k.serial for k in checked})
            rows = []
            for index, key in enumerate(checked):
                triple = _ref_triple(key)
                if triple in stored:
                    report.duplicates.append(index)
                    continue
                stored.add(triple)
                rows.append(self._row(key, moment))
            report.inserted = len(rows)
            if rows and not dry_run:
                await conn.execute(activation_keys.insert(), rows)
        return report

    async def _stored_refs(
        self, conn: AsyncConnection, serials: set[str]
    ) -> set[tuple[str, str, str]]:
        found: set[tuple[str, str, str]] = set()
        ordered = sorted(serials)
        c = activation_keys.c
        for start in range(0, len(ordered), _CHUNK):
            result = await conn.execute(
                sa.select(c.serial, c.feature, c.key_ref).where(
                    c.serial.in_(ordered[start : start + _CHUNK])
                )
            )
            found.update((r.serial, r.feature, r.key_ref) for r in result)
        return found

    async def known_serials(self, serials: Sequence[str]) -> set[str]:
        """Which of these (normalised) serials are devices in the inventory."""
        ordered = sorted(set(serials))
        found: set[str] = set()
        async with self.engine.connect() as conn:
            for start in range(0, len(ordered), _CHUNK):
                chunk = ordered[start : start + _CHUNK]
                result = await conn.execute(
                    sa.select(devices.c.serial).where(devices.c.serial.in_(chunk))
                )
                found.update(result.scalars())
        return found

    async def next_unused(
        self, serial: str, feature: str, *, now: datetime | None = None
    ) -> UnusedKey | None:
        """The unused, unexpired key for serial+feature that expires first (keys without expiry
        last), or None."""
        moment = now or datetime.now(UTC)
        c = activation_keys.c
        query = (
            sa.select(c.id, c.key_ref, c.sealed_key, c.expires_at)
            .where(
                c.serial == normalize_serial(serial),
                c.feature == feature.strip(),
                c.used_by.is_(None),
                sa.or_(c.expires_at.is_(None), c.expires_at > moment),
            )
            .order_by(c.expires_at.is_(None), c.expires_at, c.id)
            .limit(1)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return self._unsealed(row.id, row.key_ref, row.sealed_key, row.expires_at)

    def _unsealed(
        self, key_id: int, ref: str, sealed: str, expires_at: datetime | None
    ) -> UnusedKey:
        secret = self.box.open(sealed, what=f"activation key {ref}")[_SECRET_FIELD]
        return UnusedKey(key_id, ref, SecretStr(secret), expires_at)

    async def get(self, key_id: int) -> UnusedKey:
        """A key by id with its secret (for resuming an operation that recorded `key_id`)."""
        c = activation_keys.c
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(c.id, c.key_ref, c.sealed_key, c.expires_at).where(c.id == key_id)
                )
            ).first()
        if row is None:
            raise KeyNotFound(key_id)
        return self._unsealed(row.id, row.key_ref, row.sealed_key, row.expires_at)

    async def used_by_operation(
        self, operation_id: str, serial: str, feature: str
    ) -> UnusedKey | None:
        """The key this operation already claimed for serial+feature, if any (crash resume)."""
        c = activation_keys.c
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(c.id, c.key_ref, c.sealed_key, c.expires_at)
                    .where(
                        c.used_by == operation_id,
                        c.serial == normalize_serial(serial),
                        c.feature == feature.strip(),
                    )
                    .order_by(c.id)
                    .limit(1)
                )
            ).first()
        if row is None:
            return None
        return self._unsealed(row.id, row.key_ref, row.sealed_key, row.expires_at)

    async def find(self, serial: str, feature: str, ref: str) -> KeyInfo | None:
        """The stored key with that serial, feature and key_ref, without its secret."""
        c = activation_keys.c
        query = sa.select(activation_keys).where(
            c.serial == normalize_serial(serial), c.feature == feature.strip(), c.key_ref == ref
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _info(row)

    async def mark_used(
        self, key_id: int, operation_id: str, *, now: datetime | None = None
    ) -> None:
        """Record that `operation_id` uses the key; repeating it for the same operation is a
        no-op, another operation gets KeyInUse."""
        if not operation_id.strip():
            raise ValueError("operation_id cannot be empty")
        c = activation_keys.c
        async with self.engine.begin() as conn:
            result = await conn.execute(
                activation_keys.update()
                .where(c.id == key_id, c.used_by.is_(None))
                .values(used_at=now or datetime.now(UTC), used_by=operation_id)
            )
            if result.rowcount == 1:
                return
            row = (
                await conn.execute(sa.select(c.key_ref, c.used_by).where(c.id == key_id))
            ).first()
        if row is None:
            raise KeyNotFound(key_id)
        if row.used_by != operation_id:
            raise KeyInUse(key_id, row.key_ref, row.used_by)

    async def list(
        self, *, serial: str | None = None, unused_only: bool = False
    ) -> builtins.list[KeyInfo]:
        """Stored keys without their secrets, by serial, feature and expiry."""
        c = activation_keys.c
        query = sa.select(activation_keys).order_by(c.serial, c.feature, c.expires_at, c.id)
        if serial is not None:
            query = query.where(c.serial == normalize_serial(serial))
        if unused_only:
            query = query.where(c.used_by.is_(None))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_info(row) for row in rows]


def _info(row: sa.RowMapping) -> KeyInfo:
    return KeyInfo(
        key_id=row["id"],
        serial=row["serial"],
        feature=row["feature"],
        key_ref=row["key_ref"],
        expires_at=row["expires_at"],
        source=row["source"],
        imported_at=row["imported_at"],
        used_at=row["used_at"],
        used_by=row["used_by"],
    )
