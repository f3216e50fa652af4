"""The least-privilege PostgreSQL role: the owner upgrades, the application runs as a role that
owns nothing, and that role cannot switch off or get around the audit record's guards."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from controller.confirmations import confirmation_store
from inventory.database import resolve_db
from inventory.reactivation_store import OperationStore, OpState
from inventory.store import InventoryStore
from tests.conftest import pg_url
from tests.e2e.cli import polyfleet
from tests.integration.test_confirmation_store import draft


async def _as_superuser(*statements: str) -> None:
    conn = await asyncpg.connect(pg_url(), timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _url_as(role: str, schema: str) -> str:
    return f"{make_url(pg_url()).set(username=role).render_as_string(False)}?schema={schema}"


@pytest.fixture
def roles() -> Iterator[tuple[str, str, str]]:
    """(owner role, application role, schema): two fresh login roles, the schema the owner's."""
    tag = uuid.uuid4().hex[:10]
    owner, app, schema = f"pf_owner_{tag}", f"pf_app_{tag}", f"pf_roles_{tag}"
    database = make_url(pg_url()).database
    try:
        asyncio.run(
            _as_superuser(
                f'CREATE ROLE "{owner}" LOGIN',
                f'CREATE ROLE "{app}" LOGIN',
                f'CREATE SCHEMA "{schema}" AUTHORIZATION "{owner}"',
                f'GRANT CREATE ON DATABASE "{database}" TO "{owner}"',
            )
        )
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.fail(f"PostgreSQL at {pg_url()} is required here: {exc}")
    try:
        yield owner, app, schema
    finally:
        asyncio.run(
            _as_superuser(
                f'DROP SCHEMA "{schema}" CASCADE',
                f'DROP OWNED BY "{owner}", "{app}"',
                f'DROP ROLE "{app}"',
                f'DROP ROLE "{owner}"',
            )
        )


async def _confirm_one(url: str) -> str:
    """The application's normal path, as the limited role: open an operation, advance it,
    append its confirmation and record the number on the operation."""
    async with await InventoryStore.open(resolve_db(url)) as store:
        operations = OperationStore(store.engine)
        op, _ = await operations.open("SN-1", "productivity_suite", "tech")
        for state in list(OpState)[1:]:
            if state in (OpState.INELIGIBLE, OpState.CONFIRMED, OpState.FAILED):
                continue
            op = await operations.advance(op, state)
        record = await confirmation_store(store.engine).append(draft(op.id, serial="SN-1"))
        await operations.advance(op, OpState.CONFIRMED, confirmation=record.number)
    return record.number


async def _refused(role: str, schema: str, statement: str) -> str:
    """The error PostgreSQL gives `role` for `statement` ('' if it was allowed)."""
    conn = await asyncpg.connect(pg_url(), user=role, timeout=5)
    try:
        await conn.execute(f'SET search_path = "{schema}"')
        await conn.execute(statement)
    except asyncpg.PostgresError as exc:
        return str(exc)
    finally:
        await conn.close()
    return ""


@pytest.mark.postgres
def test_the_app_role_works_but_cannot_touch_the_guards(roles: tuple[str, str, str]) -> None:
    owner, app, schema = roles
    as_owner, as_app = _url_as(owner, schema), _url_as(app, schema)
    upgraded = polyfleet(as_owner, "db", "upgrade")
    assert upgraded.code == 0, upgraded.stderr
    assert polyfleet(as_owner, "db", "grant-app-role", owner).code == 1  # the owner is refused
    ungranted = polyfleet(as_app, "confirmations", "verify")
    assert ungranted.code == 1
    assert "permission denied" in ungranted.stderr
    assert "Traceback" not in ungranted.stderr
    granted = polyfleet(as_owner, "db", "grant-app-role", app)
    assert granted.code == 0, granted.stderr
    assert f"role {app} may now use schema {schema}" in granted.stderr

    number = asyncio.run(_confirm_one(as_app))
    listed = polyfleet(as_app, "confirmations", "list", "-o", "json")
    assert [r["number"] for r in listed.json()] == [number]
    intact = polyfleet(as_app, "confirmations", "verify")
    assert intact.code == 0, intact.stderr
    assert "intact: 1 record(s)" in intact.stdout
    assert polyfleet(as_app, "confirmations", "checkpoint").code == 0

    for statement, error in [
        ("ALTER TABLE confirmations DISABLE TRIGGER ALL", "must be owner"),
        ("ALTER TABLE confirmations DISABLE TRIGGER confirmations_no_truncate", "must be owner"),
        ("DROP TRIGGER confirmations_append_only ON confirmations", "must be owner"),
        ("TRUNCATE confirmations", "permission denied"),
        ("UPDATE confirmations SET fee = 0", "permission denied"),
        ("DELETE FROM confirmations", "permission denied"),
        ("DELETE FROM reactivations", "permission denied"),
        ("UPDATE reactivation_events SET detail = 'x'", "permission denied"),
        ("SET session_replication_role = replica", "permission denied"),
        ("CREATE TABLE sneaky (x int)", "permission denied"),
    ]:
        assert error in asyncio.run(_refused(app, schema, statement)), statement
    assert asyncio.run(_refused(app, schema, "SELECT count(*) FROM confirmations")) == ""
    assert polyfleet(as_app, "confirmations", "verify").code == 0


@pytest.mark.postgres
def test_grant_app_role_explains_what_it_cannot_do(roles: tuple[str, str, str]) -> None:
    owner, _app, schema = roles
    as_owner = _url_as(owner, schema)
    missing = polyfleet(as_owner, "db", "grant-app-role", "no_such_role_x")
    assert missing.code == 1
    assert "no PostgreSQL role 'no_such_role_x'" in missing.stderr
    superuser = polyfleet(as_owner, "db", "grant-app-role", "postgres")
    assert superuser.code == 1
    assert "could disable the audit triggers" in superuser.stderr
    assert "Traceback" not in missing.stderr + superuser.stderr


def test_grant_app_role_is_for_postgresql_only(tmp_path: Path) -> None:
    refused = polyfleet(str(tmp_path / "polyfleet.db"), "db", "grant-app-role", "app")
    assert refused.code == 1
    assert "PostgreSQL only" in refused.stderr
