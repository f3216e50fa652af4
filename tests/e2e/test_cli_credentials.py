"""`polyfleet credentials …`: secrets in from stdin, encrypted at rest, never printed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from inventory.credential_store import CredentialStore
from inventory.database import DatabaseTarget
from inventory.errors import SecretError
from inventory.models import CredentialProfile
from inventory.secret_box import SecretBox
from inventory.store import InventoryStore
from tests.e2e.cli import polyfleet

SECRETS = "http_password=Hunter2-http\nsnmp_community=c0mmunity-s3cret\n# comment\n\n"


def test_set_from_stdin_stores_encrypted_and_never_prints(
    db_url: str, db_target: DatabaseTarget
) -> None:
    result = polyfleet(
        db_url, "credentials", "set", "site-a", "--http-user", "Polycom", "--from-stdin",
        stdin=SECRETS,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    listed = polyfleet(db_url, "credentials", "list", "-o", "json")
    assert listed.json() == [
        {
            "name": "site-a",
            "http_user": "Polycom",
            "ssh_user": None,
            "snmp_version": "2c",
            "snmp_user": None,
            "secrets": ["http_password", "snmp_community"],
        }
    ]
    for out in (result, listed, polyfleet(db_url, "credentials", "list")):
        assert "Hunter2" not in out.stdout + out.stderr
        assert "c0mmunity" not in out.stdout + out.stderr

    async def raw_row() -> str:
        async with await InventoryStore.open(db_target) as store, store.engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT * FROM credential_profiles"))).all()
        return repr(rows)

    raw = asyncio.run(raw_row())
    assert "Hunter2" not in raw
    assert "c0mmunity" not in raw


async def test_profile_round_trips_and_a_wrong_key_is_named(db_target: DatabaseTarget) -> None:
    profile = CredentialProfile.model_validate(
        {"name": "p", "ssh_user": "admin", "ssh_password": "pw-123456"}
    )
    async with await InventoryStore.open(db_target) as store:
        await CredentialStore(store.engine, SecretBox.from_environment()).put(profile)
        loaded = await CredentialStore(store.engine, SecretBox.from_environment()).get("p")
        assert loaded.ssh_password is not None
        assert loaded.ssh_password.get_secret_value() == "pw-123456"
        other = CredentialStore(store.engine, SecretBox(Fernet.generate_key()))
        with pytest.raises(SecretError, match="another secret key"):
            await other.get("p")


def test_bad_stdin_and_bad_values_are_refused_and_store_nothing(db_url: str) -> None:
    assert polyfleet(db_url, "db", "upgrade").code == 0  # `list` only reads: it creates no tables
    unknown = polyfleet(db_url, "credentials", "set", "p", "--from-stdin", stdin="password=x\n")
    assert unknown.code == 1
    assert "unknown secret 'password'" in unknown.stderr
    short = polyfleet(
        db_url, "credentials", "set", "p", "--snmp-version", "3", "--snmp-user", "u",
        "--from-stdin", stdin="snmp_auth_key=short\n",
    )  # fmt: skip
    assert short.code == 1
    assert "at least 8 characters" in short.stderr
    assert "short" not in short.stderr.replace("at least", "")
    assert polyfleet(db_url, "credentials", "list", "-o", "json").json() == []


def test_prompting_without_a_terminal_is_a_clear_error(db_url: str) -> None:
    result = polyfleet(db_url, "credentials", "set", "p", "--http-user", "Polycom", stdin="")
    assert result.code == 1
    assert "--from-stdin" in result.stderr


def test_import_a_profiles_file_and_remove(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "creds.toml"
    path.write_text(
        '[profiles.fleet]\nhttp_user = "Polycom"\nhttp_password = "456"\n'
        'snmp_version = "3"\nsnmp_user = "pf"\nsnmp_auth_key = "authkey-1"\n'
        'snmp_priv_key = "privkey-1"\n',
        encoding="utf-8",
    )
    assert polyfleet(db_url, "credentials", "import", str(path)).code == 0
    listed = polyfleet(db_url, "credentials", "list", "-o", "json").json()
    assert listed[0]["secrets"] == ["http_password", "snmp_auth_key", "snmp_priv_key"]
    assert polyfleet(db_url, "credentials", "remove", "fleet").code == 0
    missing = polyfleet(db_url, "credentials", "remove", "fleet")
    assert missing.code == 1
    assert "no credential profile named 'fleet'" in missing.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[profiles.x\n", encoding="utf-8")
    assert polyfleet(db_url, "credentials", "import", str(broken)).code == 2
