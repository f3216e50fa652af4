"""The store's partial indexes, and with them the whole schema's `metadata`.

Declared apart from `inventory/schema.py` for start-up: SQLAlchemy checks an index's
`sqlite_where=` and `postgresql_where=` options by importing each dialect package they name,
the PostgreSQL one with every driver module it has (20-37 ms measured here), and the store's
queries never read an index. So a command that only queries (`polyfleet health`, `quote`)
imports neither dialect it does not connect with. What compares or walks the whole schema
imports `metadata` from here (ruff's TID251 refuses it from `inventory.schema`): the migration
environment, the grants of `inventory.app_role` and the test comparing the migrations with it,
which fails if an index here is missing from the metadata it compares.
"""

from __future__ import annotations

import sqlalchemy as sa

from inventory.schema import (
    LICENSE_INACTIVE,
    STATUS_PROBLEM,
    device_status,
    jobs,
    licenses,
    metadata,  # noqa: TID251 (the one module that completes it)
)

__all__ = ["metadata"]

# Health by status on a 100,000-device store (inventory.health_sql) reads these ranges only (the
# serial included: the index alone answers).
sa.Index(
    "ix_device_status_problem",
    device_status.c.serial,
    sqlite_where=STATUS_PROBLEM,
    postgresql_where=STATUS_PROBLEM,
)
sa.Index(
    "ix_licenses_inactive",
    licenses.c.serial,
    sqlite_where=LICENSE_INACTIVE,
    postgresql_where=LICENSE_INACTIVE,
)
# The claim's expiry sweep reads the expired leases only (migration 0012).
sa.Index(
    "ix_jobs_running_lease",
    jobs.c.lease_expires_at,
    sqlite_where=jobs.c.state == "running",
    postgresql_where=jobs.c.state == "running",
)
