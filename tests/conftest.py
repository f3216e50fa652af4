"""Shared fixtures: an isolated store on each backend, and no writes outside tmp dirs."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet

from device_drivers.modeled_settings import reset as reset_modeled
from inventory.database import DatabaseTarget, resolve_db
from inventory.store import InventoryStore

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def pg_url() -> str:
    return os.environ.get("POLYFLEET_TEST_PG_URL", DEFAULT_PG_URL)


def pg_required() -> bool:
    """In CI (POLYFLEET_REQUIRE_PG=1) an unreachable PostgreSQL fails the test, never skips it."""
    return os.environ.get("POLYFLEET_REQUIRE_PG") == "1" or os.environ.get("CI") == "true"


async def _pg_execute(sql: str) -> None:
    conn = await asyncpg.connect(pg_url(), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep tests away from the user's store, config and key file."""
    monkeypatch.setenv("POLYFLEET_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("POLYFLEET_SECRET_KEY_FILE", str(tmp_path / "secret.key"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("POLYFLEET_DB", "POLYFLEET_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _default_modeled_parameters() -> Iterator[None]:
    """Every test starts and ends with the drivers' default modeled parameters."""
    reset_modeled()
    yield
    reset_modeled()


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A PostgreSQL schema of this test's own, dropped afterwards."""
    schema = f"pf_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg_execute(f'CREATE SCHEMA "{schema}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        if pg_required():
            pytest.fail(f"PostgreSQL at {pg_url()} is required here but unreachable: {exc}")
        pytest.skip(f"PostgreSQL at {pg_url()} unreachable: {exc}")
    try:
        yield schema
    finally:
        asyncio.run(_pg_execute(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_target(request: pytest.FixtureRequest, tmp_path: Path) -> DatabaseTarget:
    """The same tests on both backends: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return resolve_db(str(tmp_path / "polyfleet.db"))
    schema = request.getfixturevalue("pg_schema")
    return resolve_db(pg_url(), schema=schema)


@pytest.fixture
def db_url(db_target: DatabaseTarget) -> str:
    """The --db value a user would type for the same store."""
    if db_target.schema is None:
        return db_target.url.replace("sqlite+aiosqlite:///", "sqlite:///")
    return f"{pg_url()}?schema={db_target.schema}"


@pytest.fixture
async def pg_store(pg_schema: str) -> AsyncIterator[InventoryStore]:
    """A store on PostgreSQL alone, for what only that backend has (never skipped in CI)."""
    opened = await InventoryStore.open(resolve_db(pg_url(), schema=pg_schema))
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def store(db_target: DatabaseTarget) -> AsyncIterator[InventoryStore]:
    opened = await InventoryStore.open(db_target)
    try:
        yield opened
    finally:
        await opened.close()
