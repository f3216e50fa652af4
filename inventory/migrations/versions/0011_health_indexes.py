"""Indexes that let the store pick the devices whose health needs weighing (inventory.health_sql):
observations that did not read the device cleanly, observations by age, inactive licenses,
licenses by expiry (the last three with the serial, so the index alone answers).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# The predicates as inventory.schema states them: SQLite uses a partial index only for a query
# that repeats its WHERE, so both are built the same way (the same SQL on each backend).
_PROBLEM = sa.or_(
    sa.column("reachable").is_(False),
    sa.column("error").is_not(None),
    sa.column("identity_mismatch").is_not(None),
    sa.column("license_read_ok").is_(False),
)
_INACTIVE = sa.column("state") != "active"


def upgrade() -> None:
    """Create the four indexes."""
    op.create_index(
        "ix_device_status_problem",
        "device_status",
        ["serial"],
        sqlite_where=_PROBLEM,
        postgresql_where=_PROBLEM,
    )
    op.create_index("ix_device_status_observed_at", "device_status", ["observed_at", "serial"])
    op.create_index(
        "ix_licenses_inactive",
        "licenses",
        ["serial"],
        sqlite_where=_INACTIVE,
        postgresql_where=_INACTIVE,
    )
    op.create_index("ix_licenses_expires_at", "licenses", ["expires_at", "serial"])


def downgrade() -> None:
    op.drop_index("ix_licenses_expires_at", "licenses")
    op.drop_index("ix_licenses_inactive", "licenses")
    op.drop_index("ix_device_status_observed_at", "device_status")
    op.drop_index("ix_device_status_problem", "device_status")
