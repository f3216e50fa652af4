"""API tokens, and indexes for the API's device filters.

`api_tokens` holds the SHA-256 of each bearer token (never the token), its role and, for an
agent, its site. `GET /devices?model=` and `?product_group=` on 100,000 devices need an index
each, as `site` already has.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from inventory.schema import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(12), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("site", sa.String(128)),
        sa.Column("name", sa.String(128)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime()),
        sa.Column("revoked_at", UTCDateTime()),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_hash"),
    )
    op.create_index("ix_devices_model", "devices", ["model"])
    op.create_index("ix_devices_product_group", "devices", ["product_group"])


def downgrade() -> None:
    op.drop_index("ix_devices_product_group", "devices")
    op.drop_index("ix_devices_model", "devices")
    op.drop_table("api_tokens")
