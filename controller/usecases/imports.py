"""Import use cases (devices, activation keys, contracts): one protocol for all three.

Rows are parsed first; the write happens in one transaction that is kept only when it should
be: never on a dry run, and not at all under `strict` when any row was rejected. The result
says what was (or would have been) written, so a dry run and the real run report alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, TypeVar, cast

from pydantic import BaseModel, ConfigDict

from inventory.contract_files import ParsedContracts
from inventory.contract_store import ContractStore
from inventory.importer import ParsedImport
from inventory.key_files import ParsedKeyFile
from inventory.key_store import KeyStore, NewKey
from inventory.secret_box import SecretBox
from inventory.store import InventoryStore

T = TypeVar("T")


class RowProblem(Protocol):
    """A rejected row as the parsers report it."""

    @property
    def line(self) -> int: ...
    @property
    def column(self) -> str | None: ...
    @property
    def reason(self) -> str: ...


class ImportMode(BaseModel):
    """`dry_run`: write nothing; `strict`: write nothing if any row is rejected."""

    model_config = ConfigDict(frozen=True)

    dry_run: bool = False
    strict: bool = False

    def writes(self, rejected: bool) -> bool:
        return not self.dry_run and not (self.strict and rejected)


class RejectedRow(BaseModel):
    """One problem of a rejected row (a row with several problems has one entry per problem)."""

    line: int
    column: str | None
    reason: str


def rejected_rows(problems: Sequence[RowProblem]) -> list[RejectedRow]:
    return [RejectedRow(line=p.line, column=p.column, reason=p.reason) for p in problems]


class UpsertImportResult(BaseModel):
    """What an import that inserts or replaces records by key did (or would do)."""

    file: str
    written: bool
    inserted: int
    updated: int
    unchanged: int
    rejected_rows: int
    rejected: list[RejectedRow]


class ContractImportResult(UpsertImportResult):
    serials_not_in_inventory: list[str]


class UnknownSerial(BaseModel):
    line: int
    serial: str


class KeyImportResult(BaseModel):
    """What a key import did (or would do); a key already stored is skipped, never replaced."""

    file: str
    written: bool
    imported: int
    already_stored: int
    rejected_rows: int
    rejected: list[RejectedRow]
    already_stored_lines: list[int]
    unknown_serials: list[UnknownSerial]


async def import_devices(
    store: InventoryStore,
    file: Path,
    batches: Iterator[ParsedImport],
    mode: ImportMode,
    *,
    on_warning: Callable[[int, str], None] | None = None,
) -> UpsertImportResult:
    """Upsert the devices of `batches` (a streamed parse of `file`) in one transaction."""
    rejected: list[RejectedRow] = []
    async with store.bulk_upsert() as bulk:
        async for batch in _read_ahead(batches):
            rejected.extend(rejected_rows(batch.rejected))
            for warning in batch.warnings:
                if on_warning is not None:
                    on_warning(warning.line, warning.message)
            conflicts = await bulk.add(batch.devices, distinct=True)  # dups: rejected
            rejected.extend(
                RejectedRow(
                    line=batch.accepted[c.index].line,
                    column="mac",
                    reason=f"identity conflict: {c.error}",
                )
                for c in conflicts
            )
        rejected.sort(key=lambda r: r.line)
        written = mode.writes(bool(rejected))
        if written:
            bulk.keep()
        report = bulk.report
    return UpsertImportResult(
        file=str(file),
        written=written,
        inserted=report.inserted,
        updated=report.updated,
        unchanged=report.unchanged,
        rejected_rows=len({r.line for r in rejected}),
        rejected=rejected,
    )


async def import_keys(
    store: InventoryStore, file: Path, parsed: ParsedKeyFile, mode: ImportMode
) -> KeyImportResult:
    """Store the parsed keys (encrypted), skipping those already stored."""
    rejected = rejected_rows(parsed.rejected)
    source = f"file:{file.name}"[:64]
    keys = KeyStore(store.engine, SecretBox.from_environment())
    known = await keys.known_serials([row.serial for row in parsed.accepted])
    new = [
        NewKey(row.serial, row.feature, row.key, row.expires_at, source) for row in parsed.accepted
    ]
    write = mode.writes(bool(rejected))
    report = await keys.add_many(new, dry_run=not write)
    duplicates = [parsed.accepted[i] for i in report.duplicates]
    return KeyImportResult(
        file=str(file),
        written=write,
        imported=report.inserted,
        already_stored=len(duplicates),
        rejected_rows=len(parsed.rejected_lines),
        rejected=rejected,
        already_stored_lines=[row.line for row in duplicates],
        unknown_serials=[
            UnknownSerial(line=row.line, serial=row.serial)
            for row in parsed.accepted
            if row.serial not in known
        ],
    )


async def import_contracts(
    store: InventoryStore, file: Path, parsed: ParsedContracts, mode: ImportMode
) -> ContractImportResult:
    """Insert or replace the parsed contracts by number."""
    rejected = rejected_rows(parsed.rejected)
    write = mode.writes(bool(rejected))
    contracts = ContractStore(store.engine)
    report = await contracts.upsert_contracts(parsed.contracts, dry_run=not write)
    serials = [s for contract in parsed.contracts for s in contract.serials]
    unknown = await contracts.unknown_serials(serials)
    return ContractImportResult(
        file=str(file),
        written=write,
        inserted=report.inserted,
        updated=report.updated,
        unchanged=report.unchanged,
        rejected_rows=len({r.line for r in rejected}),
        rejected=rejected,
        serials_not_in_inventory=unknown,
    )


async def _read_ahead(items: Iterator[T]) -> AsyncIterator[T]:
    """The items of `items`, each next one made in a worker thread while the caller handles
    this one: parsing batch N+1 overlaps writing batch N (SQLite works without the GIL)."""
    loop = asyncio.get_running_loop()
    end = object()
    pending = loop.run_in_executor(None, next, items, end)
    while (item := await pending) is not end:
        pending = loop.run_in_executor(None, next, items, end)
        yield cast(T, item)
