"""Inventory: devices, sites and credential profiles.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from inventory.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the inventory tables with their lookup indexes (serial, MAC, site)."""
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(12), nullable=True),
        sa.Column("model", sa.String(128)),
        sa.Column("product_group", sa.String(32)),
        sa.Column("driver", sa.String(64)),
        sa.Column("host", sa.String(255)),
        sa.Column("snmp_port", sa.Integer),
        sa.Column("https_port", sa.Integer),
        sa.Column("ssh_port", sa.Integer),
        sa.Column("site", sa.String(128)),
        sa.Column("firmware", sa.String(128)),
        sa.Column("credentials", sa.String(64)),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("tls_fingerprint", sa.String(128)),
        sa.Column("ssh_host_key", sa.Text),
        sa.Column("first_seen", UTCDateTime()),
        sa.Column("last_seen", UTCDateTime()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("serial", name="uq_devices_serial"),
        sa.UniqueConstraint("mac", name="uq_devices_mac"),
    )
    op.create_index("ix_devices_site", "devices", ["site"])
    op.create_table(
        "sites",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("region", sa.String(64)),
        sa.Column("country", sa.String(2)),
    )
    op.create_table(
        "credential_profiles",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("secrets", sa.Text, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    """Drop the inventory tables."""
    op.drop_table("credential_profiles")
    op.drop_table("sites")
    op.drop_index("ix_devices_site", table_name="devices")
    op.drop_table("devices")
