"""Entitlement data of a simulated fleet: warranties and service agreements by serial.

The licensing portal issues keys only where these allow, and `polyfleet simulate` writes them
as a CSV for `polyfleet contracts import`, so the controller and the portal agree on eligibility.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from simulator.state import SimDevice

CONTRACT_CSV_COLUMNS: tuple[str, ...] = ("number", "kind", "serial", "start", "end")
_DEVICES_PER_CONTRACT = 25


class ContractKind(StrEnum):
    """Kinds of entitlement the seed documents name."""

    WARRANTY = "warranty"
    SUPPORT = "support"
    EXTENDED_REACTIVATION = "extended-reactivation"


@dataclass(frozen=True, slots=True)
class SimContract:
    """One agreement covering some serials from `start` through `end` (inclusive)."""

    number: str
    kind: ContractKind
    start: date
    end: date
    serials: frozenset[str]

    def active_on(self, day: date) -> bool:
        """Whether the agreement is in force on `day`."""
        return self.start <= day <= self.end


DEFAULT_COVERAGE = 84
"""Percent of devices under an active agreement; the rest split evenly into lapsed and bare."""


def generate_contracts(
    devices: Sequence[SimDevice],
    seed: int,
    *,
    today: date | None = None,
    coverage: int = DEFAULT_COVERAGE,
) -> list[SimContract]:
    """Cover most devices with active agreements, some with lapsed ones and leave a few bare."""
    if not 0 <= coverage <= 100:
        raise ValueError(f"contract coverage must be a percentage, not {coverage}")
    day = today or datetime.now(UTC).date()
    rng = random.Random(f"contracts-{seed}")
    uncovered = (100 - coverage) / 100
    by_site: dict[str, list[str]] = {}
    for device in devices:
        roll = rng.random()
        if roll < uncovered / 2:
            continue  # not covered at all: the portal refuses and the quote says ineligible
        bucket = "lapsed" if roll < uncovered else "active"
        by_site.setdefault(f"{device.site}/{bucket}", []).append(device.serial)
    contracts: list[SimContract] = []
    for group in sorted(by_site):
        bucket = group.rsplit("/", 1)[1]
        serials = by_site[group]
        for offset in range(0, len(serials), _DEVICES_PER_CONTRACT):
            chunk = frozenset(serials[offset : offset + _DEVICES_PER_CONTRACT])
            kind = rng.choices(
                [ContractKind.SUPPORT, ContractKind.EXTENDED_REACTIVATION, ContractKind.WARRANTY],
                [45, 35, 20],
            )[0]
            if bucket == "active":
                start = day - timedelta(days=rng.randint(30, 500))
                end = day + timedelta(days=rng.randint(60, 900))
            else:
                end = day - timedelta(days=rng.randint(5, 300))
                start = end - timedelta(days=365 * rng.randint(1, 3))
            number = f"C{start:%y}-{len(contracts) + 1:06d}"
            contracts.append(SimContract(number, kind, start, end, chunk))
    return contracts


def contract_rows(contracts: Iterable[SimContract]) -> list[dict[str, str]]:
    """One row per covered serial, the shape `contracts import` reads."""
    rows: list[dict[str, str]] = []
    for contract in contracts:
        for serial in sorted(contract.serials):
            rows.append(
                {
                    "number": contract.number,
                    "kind": contract.kind.value,
                    "serial": serial,
                    "start": contract.start.isoformat(),
                    "end": contract.end.isoformat(),
                }
            )
    return rows


def write_contracts_csv(path: Path, contracts: Iterable[SimContract]) -> None:
    """Write the fleet's contracts for `polyfleet contracts import`."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CONTRACT_CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(contract_rows(contracts))


def contracts_to_json(contracts: Iterable[SimContract]) -> list[dict[str, object]]:
    """Serialisable form for the runner's state file."""
    return [
        {
            "number": c.number,
            "kind": c.kind.value,
            "start": c.start.isoformat(),
            "end": c.end.isoformat(),
            "serials": sorted(c.serials),
        }
        for c in contracts
    ]


def contracts_from_json(data: Iterable[dict[str, object]]) -> list[SimContract]:
    """Inverse of `contracts_to_json`."""
    result: list[SimContract] = []
    for item in data:
        serials = item["serials"]
        if not isinstance(serials, list):
            raise ValueError("contract serials must be a list")
        result.append(
            SimContract(
                number=str(item["number"]),
                kind=ContractKind(str(item["kind"])),
                start=date.fromisoformat(str(item["start"])),
                end=date.fromisoformat(str(item["end"])),
                serials=frozenset(str(s) for s in serials),
            )
        )
    return result
