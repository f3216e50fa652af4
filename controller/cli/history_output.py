"""A device's kept observations as `inventory show` prints them: JSON keys as the API's
`ObservationOut`, and a table for people with one line of license state per observation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controller.cli.context import OutputFormat
from controller.cli.output import emit_rows
from inventory.observation_history import HistoryEntry, HistoryPage

if TYPE_CHECKING:  # rich only when a table is printed, not for `-o json`
    from rich.console import Console

COLUMNS = ("observed_at", "reachable", "licenses", "error")


def observation_record(entry: HistoryEntry) -> dict[str, Any]:
    """One observation with the API's keys; `licenses` is null when it did not read them."""
    read = entry.license_read
    return {
        "observed_at": entry.observed_at,
        "reachable": entry.reachable,
        "driver": entry.driver,
        "error_kind": entry.error_kind,
        "error": entry.error,
        "identity_mismatch": entry.identity_mismatch,
        "licenses": None
        if entry.licenses is None
        else [
            {"feature": f.feature, "state": f.state, "expires_at": f.expires_at}
            for f in entry.licenses
        ],
        "license_read": read.to_json() if read else None,
    }


def license_summary(entry: HistoryEntry) -> str:
    """`base active until 2027-12-01; video expired`, or why the state is unknown."""
    if entry.licenses is not None:
        parts = [
            f"{f.feature} {f.state.value}"
            + (f" until {f.expires_at.date().isoformat()}" if f.expires_at else "")
            for f in entry.licenses
        ]
        return "; ".join(parts) or "no licensed feature"
    read = entry.license_read
    if read is not None and not read.ok:
        return f"unknown: {read.call or 'no call'}: {read.detail or 'nothing came back'}"
    return "unknown: not read" + ("" if entry.reachable else " (unreachable)")


def emit_history(history: HistoryPage, console: Console) -> None:
    """The table of `history` (newest first) under the device's table."""
    rows = [
        {
            "observed_at": e.observed_at,
            "reachable": "yes" if e.reachable else "no",
            "licenses": license_summary(e),
            "error": e.error,
        }
        for e in history.entries
    ]
    title = f"last {len(rows)} of {history.total} observation(s), newest first"
    emit_rows(rows, COLUMNS, OutputFormat.TABLE, console=console, title=title)
