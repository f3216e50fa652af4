"""InventoryStore.pin_first_use_many: a scan's batch of first-use pins in one transaction."""

from __future__ import annotations

import pytest

from inventory.models import Device
from inventory.store import InventoryStore

PHONE = Device(serial="0004F2AABB01", mac="0004f2aabb01", model="VVX 450", site="hq")
CODEC = Device(serial="822351972AB68B", mac="0004f20f6839", model="Group Series 500", site="hq")


async def test_pins_many_only_where_none_is_pinned(store: InventoryStore) -> None:
    await store.upsert_devices([PHONE, CODEC])
    assert await store.pin_first_use(PHONE.serial, "tls", "sha256:" + "a" * 64)
    await store.pin_first_use_many(
        [
            (PHONE.serial, "tls", "sha256:" + "b" * 64),  # already pinned: kept as it was
            (CODEC.serial, "ssh", "ssh-ed25519 AAAAC3Nz"),
            (CODEC.serial, "tls", "sha256:" + "c" * 64),
        ]
    )
    phone = await store.get_device(PHONE.serial)
    codec = await store.get_device(CODEC.serial)
    assert phone.tls_fingerprint == "sha256:" + "a" * 64
    assert codec.ssh_host_key == "ssh-ed25519 AAAAC3Nz"
    assert codec.tls_fingerprint == "sha256:" + "c" * 64
    await store.pin_first_use_many([])  # nothing to do is fine


async def test_pins_many_rejects_unknown_kinds_before_writing(store: InventoryStore) -> None:
    await store.upsert_devices([PHONE])
    with pytest.raises(ValueError, match="unknown pin kind"):
        await store.pin_first_use_many(
            [(PHONE.serial, "tls", "sha256:" + "d" * 64), (PHONE.serial, "x509", "?")]
        )
    assert (await store.get_device(PHONE.serial)).tls_fingerprint is None
