"""Contracts in the store on SQLite and PostgreSQL, imported from the simulator's contracts CSV."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from controller.policy import default_policy
from controller.quoting import quote_device
from controller.reactivation_ledger import LocalLedger
from inventory.catalog import ProductGroup
from inventory.contract_files import parse_contract_file
from inventory.contract_store import ContractNotFound, ContractStore
from inventory.models import Contract, ContractKind, Device, Pricing
from inventory.schema import sites
from inventory.store import InventoryStore
from simulator.contracts import SimContract, generate_contracts, write_contracts_csv
from simulator.fleet import generate_fleet

TODAY = date(2026, 11, 23)


def simulated(tmp_path: Path) -> tuple[Path, list[SimContract]]:
    fleet = generate_fleet(60, seed=7, today=TODAY)
    contracts = generate_contracts(fleet, 7, today=TODAY)
    path = tmp_path / "fleet.contracts.csv"
    write_contracts_csv(path, contracts)
    return path, contracts


async def test_the_simulator_contracts_csv_imports_as_is(
    store: InventoryStore, tmp_path: Path
) -> None:
    path, expected = simulated(tmp_path)
    parsed = parse_contract_file(path)
    assert parsed.rejected == []
    assert parsed.warnings == []
    contracts = ContractStore(store.engine)
    report = await contracts.upsert_contracts(parsed.contracts)
    assert (report.inserted, report.updated, report.unchanged) == (len(expected), 0, 0)
    stored = {c.number: c for c in await contracts.list_contracts()}
    assert sorted(stored) == sorted(c.number for c in expected)
    for sim in expected:
        got = stored[sim.number]
        assert (got.kind.value, got.start, got.end) == (sim.kind.value, sim.start, sim.end)
        assert got.serials == sim.serials
        assert got.pricing is Pricing.PER_DEVICE
    active = await contracts.list_contracts(active_on=TODAY)
    assert {c.number for c in active} == {c.number for c in expected if c.active_on(TODAY)}
    assert 0 < len(active) < len(expected)  # the simulator lapses some contracts on purpose

    again = await contracts.upsert_contracts(parse_contract_file(path).contracts)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, len(expected))

    sim = expected[0]
    serial = sorted(sim.serials)[0]
    found = await contracts.contracts_for(serial, None)
    assert [c.number for c in found] == [c.number for c in expected if serial in c.serials]


async def test_reimport_replaces_a_contract_and_dry_run_writes_nothing(
    store: InventoryStore,
) -> None:
    contracts = ContractStore(store.engine)
    first = Contract(
        kind=ContractKind.SUPPORT,
        number="C-1",
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
        serials=frozenset({"SN1", "SN2"}),
    )
    await contracts.upsert_contracts([first])
    renewed = first.model_copy(
        update={"end": date(2027, 12, 31), "serials": frozenset({"SN1"}), "region": "emea"}
    )
    extra = first.model_copy(update={"number": "C-2"})
    preview = await contracts.upsert_contracts([renewed, extra], dry_run=True)
    assert (preview.inserted, preview.updated, preview.unchanged) == (1, 1, 0)
    assert await contracts.get_contract("C-1") == first
    assert await contracts.count_contracts() == 1
    await contracts.upsert_contracts([renewed, extra])
    assert await contracts.get_contract("C-1") == renewed
    assert await contracts.count_contracts() == 2
    with pytest.raises(ContractNotFound, match="'C-9'"):
        await contracts.get_contract("C-9")
    with pytest.raises(ValueError, match="given twice: C-2"):
        await contracts.upsert_contracts([extra, extra])


async def test_lookup_by_serial_or_product_group_is_exact(store: InventoryStore) -> None:
    contracts = ContractStore(store.engine)
    by_serial = Contract(
        kind=ContractKind.WARRANTY,
        number="W-1",
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
        serials=frozenset({"SN10", "SN1_%"}),
    )
    by_group = Contract(
        kind=ContractKind.EXTENDED_REACTIVATION,
        number="E-1",
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
        product_groups=frozenset({ProductGroup.SOUNDPOINT_IP}),
        pricing=Pricing.PER_TERM,
    )
    await contracts.upsert_contracts([by_serial, by_group])
    assert [c.number for c in await contracts.contracts_for("SN1", None)] == []  # not SN10
    assert [c.number for c in await contracts.contracts_for("SN1_%", None)] == ["W-1"]
    found = await contracts.contracts_for("SN1", ProductGroup.SOUNDPOINT_IP)
    assert found == [by_group]
    assert await contracts.contracts_for("SN10", ProductGroup.SOUNDPOINT_IP) == [
        by_group,
        by_serial,
    ]
    assert await contracts.contracts_for("SN1", ProductGroup.SOUNDPOINT_PRO) == []


async def test_sites_and_unknown_serials(store: InventoryStore) -> None:
    contracts = ContractStore(store.engine)
    await store.upsert_devices([Device(serial="SN1", model="VVX 450", site="hq")])
    assert await contracts.unknown_serials(["SN2", "SN1", "SN2"]) == ["SN2"]
    assert await contracts.get_site("hq") is None
    async with store.engine.begin() as conn:
        await conn.execute(sites.insert(), [{"name": "hq", "region": "amer", "country": "US"}])
    site = await contracts.get_site("hq")
    assert site is not None
    assert (site.country, site.region) == ("US", "amer")
    assert await contracts.get_site(None) is None


async def test_quote_device_uses_the_stored_contracts_and_site_record(
    store: InventoryStore,
) -> None:
    device = Device(serial="SN1", model="VVX 450", site="hq-berlin")
    await store.upsert_devices([device])
    covering = Contract(
        kind=ContractKind.EXTENDED_REACTIVATION,
        number="E-1",
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
        serials=frozenset({"SN1"}),
    )
    await ContractStore(store.engine).upsert_contracts([covering])
    wednesday = date(2026, 11, 25)
    quote = await quote_device(store.engine, device, default_policy(), wednesday)
    assert (quote.eligible, quote.contract, quote.sla_country) == (True, "E-1", "DE")
    assert quote.sla_due == date(2026, 11, 27)
    async with store.engine.begin() as conn:
        await conn.execute(sites.insert(), [{"name": "hq-berlin", "country": "US"}])
    quote = await quote_device(store.engine, device, default_policy(), wednesday, feature="x")
    assert (quote.sla_country, quote.sla_due, quote.feature) == ("US", date(2026, 11, 30), "x")


def _in_2026(number: str, kind: ContractKind, serials: set[str]) -> Contract:
    return Contract(
        kind=kind,
        number=number,
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
        serials=frozenset(serials),
    )


def _covering(all_contracts: list[Contract], serial: str, group: ProductGroup | None) -> list[str]:
    """What a look-up must find: every contract naming the serial or the group, by number."""
    return sorted(
        c.number
        for c in all_contracts
        if serial in c.serials or (group is not None and group in c.product_groups)
    )


async def test_a_batch_lookup_finds_each_devices_contracts_across_chunks(
    store: InventoryStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = simulated(tmp_path)
    contracts = ContractStore(store.engine)
    await contracts.upsert_contracts(parse_contract_file(path).contracts)
    lookalike = _in_2026("W-LIKE", ContractKind.WARRANTY, {"SN10", "SN1_%"})
    await contracts.upsert_contracts([lookalike])
    stored = await contracts.list_contracts()
    fleet = generate_fleet(60, seed=7, today=TODAY)
    policy = default_policy()
    wanted: dict[str, ProductGroup | None] = {
        d.serial: policy.product_group_for(Device(serial=d.serial, model=d.model))[0] for d in fleet
    }
    wanted |= {"SN1": None, "SN1_%": None, "SN-NOBODY": ProductGroup.SOUNDPOINT_PRO}
    monkeypatch.setattr("inventory.contract_store._MATCH_CHUNK", 7)  # several chunks
    found = await contracts.contracts_for_many(wanted)
    assert set(found) == set(wanted)
    for serial, group in wanted.items():
        assert [c.number for c in found[serial]] == _covering(stored, serial, group), serial
    assert [c.number for c in found["SN1_%"]] == ["W-LIKE"]  # not SN10's, nor SN1's
    assert any(found[d.serial] for d in fleet)  # the fleet's contracts were found


async def test_a_batch_is_quoted_from_one_read_of_contracts_and_sites(
    store: InventoryStore,
) -> None:
    """`reactivate --all-expired` quotes its targets before it starts (LocalLedger.prepare):
    the same quotes as one device at a time, with a few queries for the batch instead of two
    per device, and none when a device's turn comes."""
    devices = [
        Device(serial=f"SN{i}", model="VVX 450", site="hq-berlin" if i % 2 else "lab")
        for i in range(40)
    ]
    await store.upsert_devices(devices)
    await ContractStore(store.engine).upsert_contracts(
        [
            _in_2026(f"E-{i}", ContractKind.EXTENDED_REACTIVATION, {f"SN{i}"})
            for i in range(0, 40, 3)
        ]
    )
    async with store.engine.begin() as conn:
        await conn.execute(sites.insert(), [{"name": "lab", "country": "FR"}])
    wednesday = date(2026, 11, 25)
    targets = [(d, "productivity_suite") for d in devices]
    one_by_one = [await quote_device(store.engine, d, default_policy(), wednesday, feature=f)
                  for d, f in targets]  # fmt: skip
    ledger = LocalLedger(
        store, policy=default_policy(), provider=None, actor="test", today=lambda: wednesday
    )
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    sa.event.listen(store.engine.sync_engine, "before_cursor_execute", count)
    try:
        await ledger.prepare(targets)
        prepared = len(statements)
        quotes = [await ledger.quote(d, f) for d, f in targets]
    finally:
        sa.event.remove(store.engine.sync_engine, "before_cursor_execute", count)
    assert quotes == one_by_one
    assert [q.eligible for q in quotes] == [i % 3 == 0 for i in range(40)]
    assert {q.sla_country for q in quotes} == {"FR", "DE"}  # the site record, else the policy
    assert prepared == 2  # the contracts of 40 devices, then their sites
    assert len(statements) == prepared  # each device's turn asks the store nothing
