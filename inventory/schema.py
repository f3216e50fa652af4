"""The store's tables (SQLAlchemy Core), one definition for SQLite and PostgreSQL.

Migrations in `inventory/migrations` create these; the store's queries use them. Timestamps are
kept as UTC and always come back timezone-aware, whatever the backend keeps.

The partial indexes are not here but in `inventory/partial_indexes.py`, and the whole schema (to
compare with the migrations, or to list every table) is `inventory.partial_indexes.metadata`:
SQLAlchemy checks a `sqlite_where=`/`postgresql_where=` option by importing that dialect
package, and every command importing this module would import both (the PostgreSQL one with
all its drivers: 20-37 ms of a SQLite command's start-up), though queries never read an index.
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
    sa.Column("pending_tls_fingerprint", sa.String(128)),
    sa.Column("pending_ssh_host_key", sa.Text),
    sa.UniqueConstraint("serial", name="uq_devices_serial"),
    sa.UniqueConstraint("mac", name="uq_devices_mac"),
    # A site's devices in serial order: the API's first page of a site reads 50 index entries
    # instead of sorting the whole site (migration 0010).
    sa.Index("ix_devices_site_serial", "site", "serial"),
    sa.Index("ix_devices_model", "model"),
    sa.Index("ix_devices_product_group", "product_group"),
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

device_status = sa.Table(
    "device_status",
    metadata,
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
    sa.Column("license_read_ok", sa.Boolean),
    sa.Column("license_read_call", sa.Text),
    sa.Column("license_read_detail", sa.Text),
    sa.Column("license_read_modeled", sa.Boolean),
    sa.ForeignKeyConstraint(
        ["serial"], ["devices.serial"], name="fk_status_device", ondelete="CASCADE"
    ),
)

observation_history = sa.Table(
    "observation_history",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("serial", sa.String(64), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("observed_at", UTCDateTime(), nullable=False),
    sa.Column("reachable", sa.Boolean, nullable=False),
    sa.Column("driver", sa.String(64)),
    sa.Column("error_kind", sa.String(32)),
    sa.Column("error", sa.Text),
    sa.Column("identity_mismatch", sa.Text),
    sa.Column("licenses", sa.Text),
    sa.Column("license_read_ok", sa.Boolean),
    sa.Column("license_read_call", sa.Text),
    sa.Column("license_read_detail", sa.Text),
    sa.Column("license_read_modeled", sa.Boolean),
    sa.ForeignKeyConstraint(
        ["serial"], ["devices.serial"], name="fk_history_device", ondelete="CASCADE"
    ),
    sa.Index("ix_history_serial_seq", "serial", "seq", "id"),
)
"""Every observation `ObservationStore.record` wrote (scans by the CLI, the controller or an
agent; re-activation checks), where `device_status` keeps only the latest. `seq` numbers a
device's observations (1, 2, ...), so dropping all but its newest N is one range delete (`seq <=
last - N`, see `inventory.observation_history`). `licenses` is compact JSON `[[feature, state,
expires_at], ...]`, NULL when that observation did not read them. Two writers of one device at
once may give two rows one `seq`: both are kept, `id` orders them."""

licenses = sa.Table(
    "licenses",
    metadata,
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
    sa.Index("ix_licenses_state", "state"),
)

STATUS_PROBLEM = sa.or_(
    device_status.c.reachable.is_(False),
    device_status.c.error.is_not(None),
    device_status.c.identity_mismatch.is_not(None),
    device_status.c.license_read_ok.is_(False),
)
"""The latest observation did not read the device cleanly: unreached, an error, another
identity, or the license state unread. Few rows: a partial index holds just them."""
LICENSE_INACTIVE = licenses.c.state != "active"
"""A license not active (expired, deactivated, missing, unknown): few, indexed apart."""
# Health by status on a 100,000-device store (inventory.health_sql) reads these ranges only
# (the serial included: the index alone answers). The partial indexes over STATUS_PROBLEM and
# LICENSE_INACTIVE are declared in inventory/partial_indexes.py.
sa.Index("ix_device_status_observed_at", device_status.c.observed_at, device_status.c.serial)
sa.Index("ix_licenses_expires_at", licenses.c.expires_at, licenses.c.serial)

contracts = sa.Table(
    "contracts",
    metadata,
    sa.Column("number", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("start", sa.Date, nullable=False),
    sa.Column("end", sa.Date, nullable=False),
    sa.Column("serials", sa.JSON, nullable=False),
    sa.Column("product_groups", sa.JSON, nullable=False),
    sa.Column("pricing", sa.String(16), nullable=False),
    sa.Column("region", sa.String(64)),
    sa.Column("imported_at", UTCDateTime(), nullable=False),
)

activation_keys = sa.Table(
    "activation_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("serial", sa.String(64), nullable=False),
    sa.Column("feature", sa.String(64), nullable=False),
    sa.Column("key_ref", sa.String(32), nullable=False),
    sa.Column("sealed_key", sa.Text, nullable=False),
    sa.Column("expires_at", UTCDateTime()),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("imported_at", UTCDateTime(), nullable=False),
    sa.Column("used_at", UTCDateTime()),
    sa.Column("used_by", sa.String(64)),
    sa.UniqueConstraint("serial", "feature", "key_ref", name="uq_keys_serial_feature_ref"),
    sa.Index("ix_keys_serial_feature", "serial", "feature"),
)

reactivations = sa.Table(
    "reactivations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("serial", sa.String(64), nullable=False),
    sa.Column("feature", sa.String(64), nullable=False),
    sa.Column("state", sa.String(24), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("state_before", sa.String(16)),
    sa.Column("state_after", sa.String(16)),
    sa.Column("driver", sa.String(64)),
    sa.Column("fee", sa.Numeric(12, 2)),
    sa.Column("currency", sa.String(3)),
    sa.Column("contract", sa.String(64)),
    sa.Column("key_id", sa.Integer),
    sa.Column("key_ref", sa.String(32)),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("requested_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("confirmation", sa.String(16)),
    sa.Column("open_key", sa.String(160)),
    sa.Column("claimed_by", sa.String(200)),
    sa.Column("claimed_until", UTCDateTime()),
    sa.UniqueConstraint("open_key", name="uq_reactivations_open"),
    sa.Index("ix_reactivations_serial", "serial", "feature"),
)
"""One re-activation operation. `open_key` is `serial|feature` while the operation is not
finished (NULL once confirmed or failed), so two runs can never work on the same feature;
`claimed_by` / `claimed_until` name the run driving it and its lease (see OperationStore.claim)."""

reactivation_events = sa.Table(
    "reactivation_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("reactivation_id", sa.String(64), nullable=False),
    sa.Column("state", sa.String(24), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("detail", sa.Text),
    sa.ForeignKeyConstraint(
        ["reactivation_id"], ["reactivations.id"], name="fk_events_reactivation"
    ),
    sa.Index("ix_events_reactivation", "reactivation_id"),
)

confirmations = sa.Table(
    "confirmations",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("number", sa.String(16), nullable=False),
    sa.Column("reactivation_id", sa.String(64), nullable=False),
    sa.Column("serial", sa.String(64), nullable=False),
    sa.Column("mac", sa.String(12)),
    sa.Column("feature", sa.String(64), nullable=False),
    sa.Column("state_before", sa.String(16), nullable=False),
    sa.Column("state_after", sa.String(16), nullable=False),
    sa.Column("key_ref", sa.String(32), nullable=False),
    sa.Column("driver", sa.String(64), nullable=False),
    sa.Column("fee", sa.Numeric(12, 2), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("contract", sa.String(64)),
    sa.Column("requested_at", UTCDateTime(), nullable=False),
    sa.Column("confirmed_at", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("prev_hash", sa.String(64)),
    sa.Column("signature", sa.String(128)),
    sa.UniqueConstraint("number", name="uq_confirmations_number"),
    sa.UniqueConstraint("reactivation_id", name="uq_confirmations_reactivation"),
)
"""Append-only, hash-chained and signed: `seq` orders the chain; triggers refuse UPDATE, DELETE,
TRUNCATE (PostgreSQL) and REPLACE (SQLite); `signature` signs `hash` (NULL before revision 0004)."""

api_tokens = sa.Table(
    "api_tokens",
    metadata,
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
"""Bearer tokens of the HTTP API. Only the SHA-256 of a token is kept: the token is 256 bits of
randomness, so a fast hash cannot be brute-forced, and a copy of the store grants nothing."""

agents = sa.Table(
    "agents",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("site", sa.String(128), nullable=False),
    sa.Column("token_id", sa.String(32)),
    sa.Column("enrolled_at", UTCDateTime()),
    sa.Column("last_seen_at", UTCDateTime()),
    sa.Column("version", sa.String(64)),
    sa.Index("ix_agents_site", "site"),
)
"""A site agent: created with its token (`POST /agents`), enrolled when it first calls in;
`last_seen_at` tells whether the site has a live agent or the controller runs its jobs."""

jobs = sa.Table(
    "jobs",
    metadata,
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
    sa.Index("ix_jobs_state_site_created", "state", "site", "created_at"),
)
"""A unit of device work asked for through the API. A claim is a lease (`lease_id`, until
`lease_expires_at`); a lease run out puts the job back to `queued`; a result is stored once."""
# The claim's expiry sweep reads the running jobs' leases only: a partial index (migration 0012)
# in inventory/partial_indexes.py.
