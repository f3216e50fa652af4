"""The confirmation record's reads for the CLI and the API: pages of it, and its audit."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError

from controller.confirmations import (
    ChainReport,
    Checkpoint,
    confirmation_store,
    cross_check,
    verify_chain,
)
from inventory.async_engine import AsyncEngine
from inventory.errors import StoreError
from inventory.models import Confirmation
from inventory.signing_key import VerifyKey


async def audit_store(
    engine: AsyncEngine,
    key: VerifyKey | None,
    *,
    unsigned_until: int = 0,
    trusted: Checkpoint | None = None,
) -> tuple[ChainReport, list[dict[str, Any]]]:
    """Verify the chain (signatures too, given `key`), then cross-check the re-activations and
    `trusted`; returns the report and the rows."""
    confirmations = confirmation_store(engine)
    try:
        rows, references = await confirmations.rows(), await confirmations.references()
    except DBAPIError as exc:  # e.g. a role without SELECT: one line, not a traceback
        raise StoreError(f"cannot read the confirmations: {exc.orig}") from exc
    report = verify_chain(rows, key=key, unsigned_until=unsigned_until)
    if report.intact:
        problem = cross_check(rows, references) or (trusted and trusted.check(rows))
        if problem:
            report = ChainReport(report.count, report.head_hash, problem)
    return report, rows


async def confirmation_page(
    engine: AsyncEngine, *, limit: int, offset: int
) -> tuple[int, list[Confirmation]]:
    """(how many there are, the page [offset, offset+limit) in chain order)."""
    confirmations = confirmation_store(engine)
    return await confirmations.count(), await confirmations.list(limit=limit, offset=offset)
