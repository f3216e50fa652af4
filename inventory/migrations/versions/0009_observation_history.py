"""Observation history: every recorded observation of a device, not just the latest, so the
device detail can show how its reachability and licenses changed.

A new table; `device_status` and `licenses` are left as they are. Each device's latest stored
observation becomes its first history row (its licenses when that observation read them), so a
store that was scanned before the upgrade shows what it knew.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from inventory.schema import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_CHUNK = 500


def upgrade() -> None:
    """Create `observation_history` and seed it from `device_status`."""
    history = op.create_table(
        "observation_history",
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
    )
    assert history is not None
    op.create_index("ix_history_serial_seq", "observation_history", ["serial", "seq", "id"])
    _seed(op.get_bind(), history)


def _seed(conn: sa.Connection, history: sa.Table) -> None:
    """One history row per device_status row, in chunks of serials."""
    meta = sa.MetaData()
    status = sa.Table("device_status", meta, autoload_with=conn)
    licenses = sa.Table("licenses", meta, autoload_with=conn)
    serials = [s for (s,) in conn.execute(sa.select(status.c.serial).order_by(status.c.serial))]
    for start in range(0, len(serials), _CHUNK):
        chunk = serials[start : start + _CHUNK]
        features: dict[str, list[list[str | None]]] = {}
        for lic in conn.execute(
            sa.select(licenses)
            .where(licenses.c.serial.in_(chunk))
            .order_by(licenses.c.serial, licenses.c.feature)
        ).mappings():
            features.setdefault(lic["serial"], []).append(
                [lic["feature"], lic["state"], _iso(lic["expires_at"])]
            )
        rows = []
        for row in conn.execute(sa.select(status).where(status.c.serial.in_(chunk))).mappings():
            read = row["license_read_ok"]
            rows.append(
                {
                    "serial": row["serial"],
                    "seq": 1,
                    "observed_at": _aware(row["observed_at"]),
                    "reachable": row["reachable"],
                    "driver": row["driver"],
                    "error_kind": row["error_kind"],
                    "error": row["error"],
                    "identity_mismatch": row["identity_mismatch"],
                    "licenses": _compact(features.get(row["serial"], [])) if read else None,
                    "license_read_ok": read,
                    "license_read_call": row["license_read_call"],
                    "license_read_detail": row["license_read_detail"],
                    "license_read_modeled": row["license_read_modeled"],
                }
            )
        if rows:
            conn.execute(history.insert(), rows)


def _aware(value: datetime) -> datetime:
    """Reflected columns are plain DateTime: SQLite gives naive UTC values back."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _compact(features: list[list[str | None]]) -> str:
    """The `licenses` column's form (inventory.observation_history.licenses_json)."""
    return json.dumps(features, separators=(",", ":"))


def _iso(value: datetime | None) -> str | None:
    return _aware(value).astimezone(UTC).isoformat() if value is not None else None


def downgrade() -> None:
    op.drop_index("ix_history_serial_seq", "observation_history")
    op.drop_table("observation_history")
