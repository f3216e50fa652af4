"""The `license_read_*` columns that `device_status` and `observation_history` share: whether an
observation read the license state, else the call that failed and what came back."""

from __future__ import annotations

from typing import Any

from inventory.models import LicenseRead


def license_read_row(read: LicenseRead | None) -> dict[str, Any]:
    """The `license_read_*` columns of a row."""
    return {
        "license_read_ok": read.ok if read else None,
        "license_read_call": read.call if read else None,
        "license_read_detail": read.detail if read else None,
        "license_read_modeled": read.modeled if read else None,
    }


def license_read_from_row(row: Any) -> LicenseRead | None:
    """The LicenseRead of a row (a mapping), None where none was recorded."""
    if row["license_read_ok"] is None:
        return None
    return LicenseRead(
        ok=bool(row["license_read_ok"]),
        call=row["license_read_call"],
        detail=row["license_read_detail"],
        modeled=bool(row["license_read_modeled"]),
    )
