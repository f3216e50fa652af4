"""Re-activation: contracts, activation keys, operations (state machine) and confirmations.

Confirmations are append-only: the store refuses updates and deletes, and on PostgreSQL a
trigger refuses them too, so even a hand-written UPDATE cannot rewrite the audit record.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from inventory.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_PG_GUARD = """
CREATE OR REPLACE FUNCTION polyfleet_confirmations_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'confirmations are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""
_PG_TRIGGER = """
CREATE TRIGGER confirmations_append_only
BEFORE UPDATE OR DELETE ON confirmations
FOR EACH ROW EXECUTE FUNCTION polyfleet_confirmations_append_only();
"""
_SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER confirmations_no_update BEFORE UPDATE ON confirmations
    BEGIN SELECT RAISE(ABORT, 'confirmations are append-only: UPDATE refused'); END;
    """,
    """
    CREATE TRIGGER confirmations_no_delete BEFORE DELETE ON confirmations
    BEGIN SELECT RAISE(ABORT, 'confirmations are append-only: DELETE refused'); END;
    """,
)


def upgrade() -> None:
    """Create the re-activation tables and the append-only guard on confirmations."""
    op.create_table(
        "contracts",
        sa.Column("number", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("start", sa.Date, nullable=False),
        sa.Column("end", sa.Date, nullable=False),
        sa.Column("serials", sa.JSON, nullable=False),
        sa.Column("product_groups", sa.JSON, nullable=False),
        sa.Column("pricing", sa.String(16), nullable=False),
        sa.Column("region", sa.String(64)),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "activation_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("feature", sa.String(64), nullable=False),
        sa.Column("key_ref", sa.String(32), nullable=False),
        sa.Column("sealed_key", sa.Text, nullable=False),
        sa.Column("expires_at", UTCDateTime()),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime()),
        sa.Column("used_by", sa.String(64)),
        sa.UniqueConstraint("serial", "feature", "key_ref", name="uq_keys_serial_feature_ref"),
    )
    op.create_index("ix_keys_serial_feature", "activation_keys", ["serial", "feature"])
    op.create_table(
        "reactivations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("feature", sa.String(64), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("state_before", sa.String(16)),
        sa.Column("state_after", sa.String(16)),
        sa.Column("driver", sa.String(64)),
        sa.Column("fee", sa.Numeric(12, 2)),
        sa.Column("currency", sa.String(3)),
        sa.Column("contract", sa.String(64)),
        sa.Column("key_id", sa.Integer),
        sa.Column("key_ref", sa.String(32)),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("confirmation", sa.String(16)),
        sa.Column("open_key", sa.String(160)),
        sa.UniqueConstraint("open_key", name="uq_reactivations_open"),
    )
    op.create_index("ix_reactivations_serial", "reactivations", ["serial", "feature"])
    op.create_table(
        "reactivation_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("reactivation_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("detail", sa.Text),
        sa.ForeignKeyConstraint(
            ["reactivation_id"], ["reactivations.id"], name="fk_events_reactivation"
        ),
    )
    op.create_index("ix_events_reactivation", "reactivation_events", ["reactivation_id"])
    op.create_table(
        "confirmations",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("reactivation_id", sa.String(64), nullable=False),
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(12)),
        sa.Column("feature", sa.String(64), nullable=False),
        sa.Column("state_before", sa.String(16), nullable=False),
        sa.Column("state_after", sa.String(16), nullable=False),
        sa.Column("key_ref", sa.String(32), nullable=False),
        sa.Column("driver", sa.String(64), nullable=False),
        sa.Column("fee", sa.Numeric(12, 2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("contract", sa.String(64)),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("confirmed_at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64)),
        sa.UniqueConstraint("number", name="uq_confirmations_number"),
        sa.UniqueConstraint("reactivation_id", name="uq_confirmations_reactivation"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_GUARD)
        op.execute(_PG_TRIGGER)
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    """Drop the re-activation tables (and the guard with them)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS confirmations_append_only ON confirmations")
        op.execute("DROP FUNCTION IF EXISTS polyfleet_confirmations_append_only()")
    op.drop_table("confirmations")
    op.drop_index("ix_events_reactivation", table_name="reactivation_events")
    op.drop_table("reactivation_events")
    op.drop_index("ix_reactivations_serial", table_name="reactivations")
    op.drop_table("reactivations")
    op.drop_index("ix_keys_serial_feature", table_name="activation_keys")
    op.drop_table("activation_keys")
    op.drop_table("contracts")
