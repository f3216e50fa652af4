"""Credential profiles in the store: settings in clear, secrets sealed by the SecretBox.

A listing can say which secrets a profile holds without decrypting them; only a driver that is
about to log in opens them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr

from inventory.async_engine import AsyncEngine
from inventory.errors import InventoryError
from inventory.models import SECRET_FIELDS, CredentialProfile
from inventory.schema import credential_profiles
from inventory.secret_box import SecretBox


class ProfileNotFound(InventoryError, LookupError):
    """No credential profile has that name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no credential profile named {name!r}")


class CredentialStore:
    """Save, load, list and remove credential profiles."""

    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self.engine = engine
        self.box = box

    async def put(self, profile: CredentialProfile) -> None:
        """Create or replace a profile."""
        dumped = profile.model_dump(exclude={"name", *SECRET_FIELDS})
        secrets = {
            name: value.get_secret_value()
            for name in SECRET_FIELDS
            if (value := getattr(profile, name)) is not None
        }
        row = {
            "name": profile.name,
            "settings": dumped,
            "secrets": self.box.seal(secrets),
            "updated_at": datetime.now(UTC),
        }
        async with self.engine.begin() as conn:
            exists = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(credential_profiles)
                .where(credential_profiles.c.name == profile.name)
            )
            if exists:
                await conn.execute(
                    credential_profiles.update()
                    .where(credential_profiles.c.name == profile.name)
                    .values(row)
                )
            else:
                await conn.execute(credential_profiles.insert().values(row))

    async def get(self, name: str) -> CredentialProfile:
        """The profile with its secrets decrypted (for drivers, never for printing)."""
        async with self.engine.connect() as conn:
            row = (
                (
                    await conn.execute(
                        sa.select(credential_profiles).where(credential_profiles.c.name == name)
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise ProfileNotFound(name)
        secrets = self.box.open(row["secrets"], what=f"credential profile {name!r}")
        data: dict[str, Any] = {**row["settings"], "name": name}
        data.update({key: SecretStr(value) for key, value in secrets.items()})
        return CredentialProfile.model_validate(data)

    async def list(self) -> list[tuple[CredentialProfile, list[str]]]:
        """Every profile without its secrets, with the names of the secrets it holds."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(credential_profiles).order_by(credential_profiles.c.name)
                )
            ).mappings()
            listed = []
            for row in rows:
                secrets = self.box.open(row["secrets"], what=f"credential profile {row['name']!r}")
                profile = CredentialProfile.model_validate({**row["settings"], "name": row["name"]})
                listed.append((profile, sorted(secrets)))
        return listed

    async def exists(self, name: str) -> bool:
        async with self.engine.connect() as conn:
            count = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(credential_profiles)
                .where(credential_profiles.c.name == name)
            )
        return bool(count)

    async def remove(self, name: str) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                credential_profiles.delete().where(credential_profiles.c.name == name)
            )
        if result.rowcount == 0:
            raise ProfileNotFound(name)
