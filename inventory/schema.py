"""The store's tables (SQLAlchemy Core), one definition for SQLite and PostgreSQL.

Migrations in `inventory/migrations` create these; the store's queries use them. Timestamps are
kept as UTC and always come back timezone-aware, whatever the backend keeps.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A DateTime that refuses naive input and returns aware UTC values on every backend."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; timestamps must carry a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

devices = sa.Table(
    "devices",
    metadata,
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
    sa.Index("ix_devices_site", "site"),
)

sites = sa.Table(
    "sites",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("region", sa.String(64)),
    sa.Column("country", sa.String(2)),
)

credential_profiles = sa.Table(
    "credential_profiles",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("secrets", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)
