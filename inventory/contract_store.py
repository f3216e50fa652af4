"""Contracts and warranties in the store: the eligibility source of quotes and re-activations.

A contract is keyed by its number; importing a contract again replaces the stored one as a whole
(the file is the authority for the contracts it lists), and a whole import is one transaction.
Serials and product groups are JSON lists; lookups for one device narrow by text match in SQL
and confirm in Python, which is exact on both backends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from inventory.async_engine import AsyncConnection, AsyncEngine
from inventory.catalog import ProductGroup
from inventory.errors import InventoryError
from inventory.models import Contract, Site
from inventory.schema import contracts, devices, sites

_CHUNK = 900
_MATCH_CHUNK = 200
"""Serials per contract look-up: each is a text match every contract row is tested against."""


class ContractNotFound(InventoryError, LookupError):
    """No contract has that number."""

    def __init__(self, number: str) -> None:
        self.number = number
        super().__init__(f"no contract numbered {number!r}")


@dataclass(slots=True)
class ContractImportReport:
    """What an import did (or, on a dry run, would do), counted in contracts."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


def contract_to_row(contract: Contract) -> dict[str, Any]:
    """The `contracts` row of a Contract (without imported_at); lists sorted for stable text."""
    return {
        "number": contract.number,
        "kind": contract.kind.value,
        "start": contract.start,
        "end": contract.end,
        "serials": sorted(contract.serials),
        "product_groups": sorted(group.value for group in contract.product_groups),
        "pricing": contract.pricing.value,
        "region": contract.region,
    }


def row_to_contract(row: sa.RowMapping) -> Contract:
    """A Contract from a `contracts` row; values were validated on the way in."""
    return Contract.model_validate(
        {
            "number": row["number"],
            "kind": row["kind"],
            "start": row["start"],
            "end": row["end"],
            "serials": row["serials"],
            "product_groups": row["product_groups"],
            "pricing": row["pricing"],
            "region": row["region"],
        }
    )


class ContractStore:
    """Save, list and look up contracts on an engine migrated to head (see InventoryStore)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def upsert_contracts(
        self, incoming: Sequence[Contract], *, dry_run: bool = False
    ) -> ContractImportReport:
        """Insert new contracts and replace changed ones in one transaction.

        A number given twice in `incoming` is a caller error (the parser merges rows first).
        With `dry_run` the same counts are returned and nothing is written.
        """
        numbers = [contract.number for contract in incoming]
        if len(set(numbers)) != len(numbers):
            duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
            raise ValueError(f"contract numbers given twice: {', '.join(duplicates)}")
        report = ContractImportReport()
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            stored = await self._load(conn, numbers)
            inserts: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            for contract in incoming:
                current = stored.get(contract.number)
                row = {**contract_to_row(contract), "imported_at": now}
                if current is None:
                    inserts.append(row)
                    report.inserted += 1
                elif current == contract:
                    report.unchanged += 1
                else:
                    updates.append({**row, "_number": contract.number})
                    report.updated += 1
            if dry_run:
                await conn.rollback()
                return report
            if updates:
                values: dict[str, Any] = {
                    name: sa.bindparam(name) for name in updates[0] if name != "_number"
                }
                statement = (
                    contracts.update()
                    .where(contracts.c.number == sa.bindparam("_number"))
                    .values(values)
                )
                await conn.execute(statement, updates)
            if inserts:
                await conn.execute(contracts.insert(), inserts)
        return report

    async def _load(self, conn: AsyncConnection, numbers: Sequence[str]) -> dict[str, Contract]:
        found: dict[str, Contract] = {}
        ordered = sorted(set(numbers))
        for offset in range(0, len(ordered), _CHUNK):
            chunk = ordered[offset : offset + _CHUNK]
            query = sa.select(contracts).where(contracts.c.number.in_(chunk))
            for row in (await conn.execute(query)).mappings():
                found[row["number"]] = row_to_contract(row)
        return found

    async def get_contract(self, number: str) -> Contract:
        """The contract with this number; ContractNotFound names it otherwise."""
        async with self.engine.connect() as conn:
            row = (
                (await conn.execute(sa.select(contracts).where(contracts.c.number == number)))
                .mappings()
                .one_or_none()
            )
        if row is None:
            raise ContractNotFound(number)
        return row_to_contract(row)

    async def list_contracts(self, *, active_on: date | None = None) -> list[Contract]:
        """Contracts ordered by number; with `active_on`, only those in force on that day."""
        query = sa.select(contracts).order_by(contracts.c.number)
        if active_on is not None:
            query = query.where(contracts.c.start <= active_on, contracts.c.end >= active_on)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [row_to_contract(row) for row in rows]

    async def contracts_for(
        self, serial: str, product_group: ProductGroup | None
    ) -> list[Contract]:
        """Every contract (active or not) naming the serial or the product group, by number."""
        return (await self.contracts_for_many({serial: product_group}))[serial]

    async def contracts_for_many(
        self, wanted: Mapping[str, ProductGroup | None]
    ) -> dict[str, list[Contract]]:
        """`contracts_for` of every serial in `wanted` (serial -> its product group, or None),
        a query per _MATCH_CHUNK serials instead of one per serial (a batch's quotes)."""
        if not wanted:
            return {}
        text_serials = sa.cast(contracts.c.serials, sa.Text)
        text_groups = sa.cast(contracts.c.product_groups, sa.Text)
        serials = sorted(wanted)
        groups = sorted({g.value for g in wanted.values() if g is not None})
        by_group = [text_groups.contains(f'"{g}"', autoescape=True) for g in groups]
        found: dict[str, Contract] = {}
        async with self.engine.connect() as conn:
            for offset in range(0, len(serials), _MATCH_CHUNK):
                chunk = serials[offset : offset + _MATCH_CHUNK]
                by_serial = [text_serials.contains(f'"{s}"', autoescape=True) for s in chunk]
                query = sa.select(contracts).where(sa.or_(*by_serial, *by_group))
                for row in (await conn.execute(query)).mappings():
                    contract = row_to_contract(row)
                    found[contract.number] = contract
        ordered = [found[number] for number in sorted(found)]
        return {
            serial: [
                c
                for c in ordered
                if serial in c.serials or (group is not None and group in c.product_groups)
            ]
            for serial, group in wanted.items()
        }

    async def count_contracts(self) -> int:
        async with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(contracts)
            return int((await conn.execute(query)).scalar_one())

    async def unknown_serials(self, serials: Sequence[str]) -> list[str]:
        """Those of `serials` that are not in the inventory (worth a warning, not an error)."""
        wanted = sorted(set(serials))
        known: set[str] = set()
        async with self.engine.connect() as conn:
            for offset in range(0, len(wanted), _CHUNK):
                chunk = wanted[offset : offset + _CHUNK]
                query = sa.select(devices.c.serial).where(devices.c.serial.in_(chunk))
                known.update((await conn.execute(query)).scalars())
        return [serial for serial in wanted if serial not in known]

    async def get_site(self, name: str | None) -> Site | None:
        """The `sites` record of a site (its country picks the SLA holiday calendar), if any."""
        if name is None:
            return None
        return (await self.sites_named([name])).get(name)

    async def sites_named(self, names: Iterable[str | None]) -> dict[str, Site]:
        """The `sites` records of those of `names` that have one, by name."""
        wanted = sorted({name for name in names if name is not None})
        found: dict[str, Site] = {}
        if not wanted:
            return found
        async with self.engine.connect() as conn:
            for offset in range(0, len(wanted), _CHUNK):
                chunk = wanted[offset : offset + _CHUNK]
                query = sa.select(sites).where(sites.c.name.in_(chunk))
                for row in (await conn.execute(query)).mappings():
                    site = Site.model_validate(dict(row))
                    found[site.name] = site
        return found
