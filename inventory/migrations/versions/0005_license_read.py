"""License read outcome per observation: whether a scan read the license state, else which call
failed and what came back, so health never takes "nothing read" for "nothing licensed".

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the license_read_* columns to device_status (NULL: recorded before this revision)."""
    with op.batch_alter_table("device_status") as batch:
        batch.add_column(sa.Column("license_read_ok", sa.Boolean))
        batch.add_column(sa.Column("license_read_call", sa.Text))
        batch.add_column(sa.Column("license_read_detail", sa.Text))
        batch.add_column(sa.Column("license_read_modeled", sa.Boolean))


def downgrade() -> None:
    """Drop what upgrade added."""
    with op.batch_alter_table("device_status") as batch:
        batch.drop_column("license_read_modeled")
        batch.drop_column("license_read_detail")
        batch.drop_column("license_read_call")
        batch.drop_column("license_read_ok")
