"""The store's data generation (PostgreSQL): a sequence every write to what the device listing
reads advances, so an API response cache can tell, with the token check it runs anyway, that
its entry is still what the store would answer.

A statement-level AFTER trigger on `devices`, `device_status`, `licenses` and `sites` (INSERT,
UPDATE, DELETE, TRUNCATE) calls `nextval`: non-transactional and lock-free, so writers are not
serialised by it and a rolled-back write costs only a spurious miss. SQLite has no sequences;
there the controller does not cache (controller.api.response_cache).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SEQUENCE = "store_generation"
TABLES = ("devices", "device_status", "licenses", "sites")
"""What `GET /devices` reads (and the sites it is filtered by)."""
_FUNCTION = "bump_store_generation"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"CREATE SEQUENCE {SEQUENCE}")
    op.execute(f"SELECT nextval('{SEQUENCE}')")  # `last_value` counts from here on
    # Unqualified: a writer's search_path names the store's schema (its table names do too).
    op.execute(
        f"CREATE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN PERFORM nextval('{SEQUENCE}'); RETURN NULL; END $$"
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
            f" ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_generation ON {table}")
    op.execute(f"DROP FUNCTION {_FUNCTION}()")
    op.execute(f"DROP SEQUENCE {SEQUENCE}")
