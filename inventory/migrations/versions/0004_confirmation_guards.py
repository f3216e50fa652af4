"""Confirmations: refuse TRUNCATE (PostgreSQL) and REPLACE (SQLite); a signature per record.

0003's row triggers cover UPDATE and DELETE only. On PostgreSQL TRUNCATE skips row triggers, so a
statement-level trigger refuses it. On SQLite `REPLACE INTO` / `INSERT OR REPLACE` deletes the
clashing row without firing DELETE triggers (unless `recursive_triggers` is on, a per-connection
pragma an attacker's own connection would not set), so a BEFORE INSERT trigger refuses any insert
whose number, sequence or operation is already recorded. `signature` holds the Ed25519 signature
of the record's hash (see controller.confirmations); records written before this revision have
none.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_PG_NO_TRUNCATE = """
CREATE TRIGGER confirmations_no_truncate
BEFORE TRUNCATE ON confirmations
FOR EACH STATEMENT EXECUTE FUNCTION polyfleet_confirmations_append_only();
"""
_SQLITE_NO_REPLACE = """
CREATE TRIGGER confirmations_no_replace BEFORE INSERT ON confirmations
WHEN EXISTS (
    SELECT 1 FROM confirmations
    WHERE seq = NEW.seq OR number = NEW.number OR reactivation_id = NEW.reactivation_id
)
BEGIN SELECT RAISE(ABORT, 'confirmations are append-only: REPLACE refused'); END;
"""


def upgrade() -> None:
    """Add the signature column and the TRUNCATE / REPLACE guards."""
    op.add_column("confirmations", sa.Column("signature", sa.String(128)))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_NO_TRUNCATE)
    else:
        op.execute(_SQLITE_NO_REPLACE)


def downgrade() -> None:
    """Drop the guards and the signature column."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS confirmations_no_truncate ON confirmations")
    else:
        op.execute("DROP TRIGGER IF EXISTS confirmations_no_replace")
    op.drop_column("confirmations", "signature")
