"""Indexes in the order the API reads: a site's devices by serial, a site's queue by age.

`GET /devices?site=S` reads one page of a site ordered by serial: with the site alone indexed,
the database fetched every device of the site and sorted them for each page (2 ms of
PostgreSQL per request on a 1,000-device site); (site, serial) reads the page's entries in
order. An agent's claim takes the oldest queued job of its site: with (state, site) every
queued job of the site was sorted per claim (6 ms with 3,000 queued); (state, site,
created_at) yields the oldest first. Each new index serves every lookup the old one did.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Replace the site and queue indexes by ones that also give the order."""
    op.create_index("ix_devices_site_serial", "devices", ["site", "serial"])
    op.drop_index("ix_devices_site", table_name="devices")
    op.create_index("ix_jobs_state_site_created", "jobs", ["state", "site", "created_at"])
    op.drop_index("ix_jobs_state_site", table_name="jobs")


def downgrade() -> None:
    op.create_index("ix_jobs_state_site", "jobs", ["state", "site"])
    op.drop_index("ix_jobs_state_site_created", table_name="jobs")
    op.create_index("ix_devices_site", "devices", ["site"])
    op.drop_index("ix_devices_site_serial", table_name="devices")
