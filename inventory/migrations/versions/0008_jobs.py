"""Jobs and site agents: device work asked for through the API, claimed as leases.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from inventory.schema import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create `agents` and `jobs`."""
    op.create_table(
        "agents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("site", sa.String(128), nullable=False),
        sa.Column("token_id", sa.String(32)),
        sa.Column("enrolled_at", UTCDateTime()),
        sa.Column("last_seen_at", UTCDateTime()),
        sa.Column("version", sa.String(64)),
    )
    op.create_index("ix_agents_site", "agents", ["site"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("site", sa.String(128)),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(128)),
        sa.Column("lease_id", sa.String(32)),
        sa.Column("lease_agent", sa.String(64)),
        sa.Column("lease_expires_at", UTCDateTime()),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("progress", sa.JSON),
        sa.Column("result", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("started_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
    )
    op.create_index("ix_jobs_state_site", "jobs", ["state", "site"])


def downgrade() -> None:
    op.drop_index("ix_jobs_state_site", "jobs")
    op.drop_table("jobs")
    op.drop_index("ix_agents_site", "agents")
    op.drop_table("agents")
