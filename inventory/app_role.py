"""The least-privilege PostgreSQL role the application runs as.

Only a table's owner (or a superuser) can `ALTER TABLE … DISABLE TRIGGER`, so an application that
connects as the owner can switch off the append-only guards of `confirmations` itself. The owner
therefore only runs `polyfleet db upgrade`; the application connects as a role that owns nothing
and gets, per table, just what the commands need (`RIGHTS`): no UPDATE, DELETE or TRUNCATE on
`confirmations`, no DELETE of re-activation operations, only SELECT on `alembic_version`, and no
CREATE on the schema. Run `grant` again after every upgrade, so tables
a new revision adds are covered too.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.compiler import IdentifierPreparer

from inventory.async_engine import AsyncEngine
from inventory.errors import StoreError
from inventory.partial_indexes import metadata

RIGHTS = {
    "alembic_version": "SELECT",
    "confirmations": "SELECT, INSERT",
    "reactivation_events": "SELECT, INSERT",
    "reactivations": "SELECT, INSERT, UPDATE",
}
"""Tables the application may not change freely: the audit record and the operations history
it is cross-checked against are never deleted from. Every other table: SELECT, INSERT, UPDATE,
DELETE."""
_DEFAULT_RIGHTS = "SELECT, INSERT, UPDATE, DELETE"


def grant_statements(role: str, schema: str, quote: IdentifierPreparer) -> list[str]:
    """The GRANT statements that give `role` what the application needs in `schema`."""
    who, where = quote.quote(role), quote.quote_schema(schema)
    statements = [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {where} FROM {who}",
        f"GRANT USAGE ON SCHEMA {where} TO {who}",
    ]
    for name in sorted({*metadata.tables, *RIGHTS}):
        rights = RIGHTS.get(name, _DEFAULT_RIGHTS)
        statements.append(f"GRANT {rights} ON {where}.{quote.quote(name)} TO {who}")
    statements.append(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {where} TO {who}")
    return statements


async def grant(engine: AsyncEngine, role: str, schema: str | None) -> str:
    """Grant `role` the application's rights in `schema` (default: the connection's current
    schema), run as the tables' owner; returns the schema. Refuses a role that could undo the
    guards: a superuser, the owner itself, or one that owns or can act as the owner."""
    if engine.dialect.name != "postgresql":
        raise StoreError("an application role applies to PostgreSQL only (SQLite has no roles)")
    async with engine.begin() as conn:
        schema = schema or str((await conn.execute(sa.text("SELECT current_schema()"))).scalar())
        found = (
            await conn.execute(
                sa.text(
                    "SELECT r.rolsuper, pg_has_role(:role, c.relowner, 'USAGE')"
                    " FROM pg_roles r, pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE r.rolname = :role AND n.nspname = :schema"
                    " AND c.relname = 'confirmations'"
                ),
                {"role": role, "schema": schema},
            )
        ).first()
        if found is None:
            exists = await conn.execute(
                sa.text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}
            )
            if exists.first() is None:
                raise StoreError(f"no PostgreSQL role {role!r}: create it first (CREATE ROLE)")
            raise StoreError(f"no polyfleet tables in schema {schema!r}: run `db upgrade` first")
        superuser, acts_as_owner = found
        if superuser or acts_as_owner:
            raise StoreError(
                f"role {role!r} is a superuser or can act as the tables' owner, so it could "
                "disable the audit triggers: use a role that owns nothing"
            )
        quote = conn.dialect.identifier_preparer
        for statement in grant_statements(role, schema, quote):
            await conn.execute(sa.text(statement))
    return schema
