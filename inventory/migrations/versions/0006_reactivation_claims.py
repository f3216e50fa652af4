"""Re-activation claims: which run works on an unfinished operation, and until when.

Two runs on the same devices (overlapping cron jobs, two admins) must not both drive one
operation; `claimed_by` names the run (host/pid/run id) and `claimed_until` ends its lease.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from inventory.schema import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the claim columns (NULL: nobody holds the operation)."""
    with op.batch_alter_table("reactivations") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(200)))
        batch.add_column(sa.Column("claimed_until", UTCDateTime()))


def downgrade() -> None:
    with op.batch_alter_table("reactivations") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
