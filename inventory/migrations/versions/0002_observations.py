"""Observations: the last scan result per device, its licenses, and pending trust changes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from inventory.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add device_status and licenses; devices learn pending (not yet trusted) pins."""
    op.create_table(
        "device_status",
        sa.Column("serial", sa.String(64), primary_key=True),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.Column("reachable", sa.Boolean, nullable=False),
        sa.Column("driver", sa.String(64)),
        sa.Column("error_kind", sa.String(32)),
        sa.Column("error", sa.Text),
        sa.Column("reported_serial", sa.String(64)),
        sa.Column("reported_mac", sa.String(12)),
        sa.Column("reported_model", sa.String(128)),
        sa.Column("identity_mismatch", sa.Text),
        sa.ForeignKeyConstraint(
            ["serial"], ["devices.serial"], name="fk_status_device", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "licenses",
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("feature", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("expires_at", UTCDateTime()),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("serial", "feature", name="pk_licenses"),
        sa.ForeignKeyConstraint(
            ["serial"], ["devices.serial"], name="fk_licenses_device", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_licenses_state", "licenses", ["state"])
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("pending_tls_fingerprint", sa.String(128)))
        batch.add_column(sa.Column("pending_ssh_host_key", sa.Text))


def downgrade() -> None:
    """Drop what upgrade added."""
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("pending_ssh_host_key")
        batch.drop_column("pending_tls_fingerprint")
    op.drop_index("ix_licenses_state", table_name="licenses")
    op.drop_table("licenses")
    op.drop_table("device_status")
