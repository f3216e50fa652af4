"""A small simulated fleet served by the test process, and a store that manages it via the CLI.

The fleet runs in this process (`run_fleet`, every face on 127.0.0.1), so a test can look at the
simulated devices' state while the `polyfleet` commands under test talk to them over the network:
in-process through `tests.e2e.cli.polyfleet` on a worker thread (fast), or as a real subprocess
when the process must be able to die (the crash-safety test).
"""

from __future__ import annotations

import asyncio
import csv
import os
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from inventory.database import DatabaseTarget
from inventory.observation_store import ObservationStore
from inventory.reactivation_store import OperationStore
from inventory.schema import reactivations
from inventory.store import InventoryStore
from simulator.contracts import ContractKind, SimContract
from simulator.fleet import SITES, generate_fleet
from simulator.licensing import FEATURES_BY_FAMILY, end_of_day
from simulator.outputs import write_credentials_toml, write_inventory_csv, write_portal_toml
from simulator.runner import RunningFleet, run_fleet
from simulator.state import LicenseState, SimDevice, SimLicense
from tests.e2e.cli import Outcome, polyfleet

TODAY = datetime.now(UTC).date()
CONTRACT = "C-REACT-1"
SUBPROCESS_TIMEOUT_S = 120.0


def expired_feature(device: SimDevice) -> str:
    """The feature these tests let expire: the family's first one."""
    return FEATURES_BY_FAMILY[device.family][0]


def make_devices(count: int, *, expired: int, seed: int = 21) -> list[SimDevice]:
    """`count` phones and cameras, every license active for months except the first feature of
    the first `expired` devices, which expired last week (independent of the generator's mix).
    Even-numbered devices are at site SITES[0], odd-numbered ones at SITES[1]."""
    devices = generate_fleet(count, {"vvx": 60, "studiox": 40}, seed=seed)
    for index, device in enumerate(devices):
        device.site = SITES[index % 2]
        for feature in FEATURES_BY_FAMILY[device.family]:
            device.licenses[feature] = SimLicense(
                feature, LicenseState.ACTIVE, end_of_day(TODAY + timedelta(days=300))
            )
        if index < expired:
            feature = expired_feature(device)
            device.licenses[feature] = SimLicense(
                feature, LicenseState.EXPIRED, end_of_day(TODAY - timedelta(days=7))
            )
    return devices


def contract_covering(serials: Sequence[str]) -> SimContract:
    """One active support agreement (the portal issues keys under it; policy counts it)."""
    return SimContract(
        CONTRACT,
        ContractKind.SUPPORT,
        TODAY - timedelta(days=100),
        TODAY + timedelta(days=265),
        frozenset(serials),
    )


def write_contracts(path: Path, contract: SimContract, pricing: str = "per-device") -> Path:
    """The contract as `polyfleet contracts import` reads it, with its pricing basis."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["number", "kind", "serial", "start", "end", "pricing"])
        for serial in sorted(contract.serials):
            writer.writerow(
                [
                    contract.number,
                    contract.kind.value,
                    serial,
                    contract.start.isoformat(),
                    contract.end.isoformat(),
                    pricing,
                ]
            )
    return path


@dataclass(frozen=True, slots=True)
class ManagedFleet:
    """The running fleet and the store (`db`) that has imported and scanned it."""

    running: RunningFleet
    db: str
    target: DatabaseTarget
    config: Path
    work: Path

    def device(self, serial: str) -> SimDevice:
        return self.running.device(serial)

    async def cli(self, *args: str, portal: bool = True) -> Outcome:
        """`polyfleet [--config PORTAL] ARGS` in this process, on a worker thread so the fleet
        (served by this thread's event loop) can answer it."""
        head = ("--config", str(self.config)) if portal else ()
        return await asyncio.to_thread(polyfleet, self.db, *head, *args)

    async def spawn(
        self, *args: str, env: Mapping[str, str] | None = None, stdin: int | None = None
    ) -> asyncio.subprocess.Process:
        """Start `polyfleet --config PORTAL ARGS` as a subprocess (see `finish`); stdin is
        /dev/null unless a file descriptor is given."""
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "controller.cli", "--db", self.db,
            "--config", str(self.config), *args,
            stdin=asyncio.subprocess.DEVNULL if stdin is None else stdin,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )  # fmt: skip

    async def run(self, *args: str, env: Mapping[str, str] | None = None) -> Outcome:
        """`polyfleet --config PORTAL ARGS` as a subprocess, to its end."""
        return await finish(await self.spawn(*args, env=env))


async def finish(process: asyncio.subprocess.Process) -> Outcome:
    """Wait for a subprocess; its exit code is negative when a signal ended it (-9: SIGKILL)."""
    out, err = await asyncio.wait_for(process.communicate(), SUBPROCESS_TIMEOUT_S)
    assert process.returncode is not None
    return Outcome(process.returncode, out.decode(), err.decode())


@dataclass(frozen=True, slots=True)
class StoredOperation:
    """A re-activation operation as its table holds it, with the states of its event log."""

    id: str
    feature: str
    state: str
    confirmation: str | None
    events: list[str]
    details: list[str | None]


async def operations(db: DatabaseTarget, serial: str) -> list[StoredOperation]:
    """Every re-activation operation of a device, oldest first (read straight from the store)."""
    async with await InventoryStore.open(db) as store:
        ops = OperationStore(store.engine)
        async with store.engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        sa.select(reactivations)
                        .where(reactivations.c.serial == serial)
                        .order_by(reactivations.c.requested_at)
                    )
                )
                .mappings()
                .all()
            )
        found = []
        for row in rows:
            events = await ops.events(row["id"])
            found.append(
                StoredOperation(
                    row["id"],
                    row["feature"],
                    row["state"],
                    row["confirmation"],
                    [state for state, _, _ in events],
                    [detail for _, _, detail in events],
                )
            )
        return found


def issued_keys(fleet: ManagedFleet, serial: str) -> list[str]:
    """Keys the simulated licensing portal issued for a serial."""
    return [k.key for k in fleet.running.portal.issued if k.serial == serial]


@asynccontextmanager
async def managed_fleet(
    work: Path,
    db: str,
    devices: list[SimDevice],
    covered: Sequence[str],
    *,
    target: DatabaseTarget,
    pricing: str = "per-device",
    site_credentials: bool = False,
) -> AsyncIterator[ManagedFleet]:
    """Serve `devices`; import credentials, inventory and the contract covering `covered` into
    `db`, and scan once, as an admin would before anyone re-activates. With `site_credentials`
    the credentials file (`work/fleet.credentials.toml`) is the site agents' alone: it is not
    imported, and nothing is scanned."""
    contract = contract_covering(covered)
    async with run_fleet(
        devices, contracts=[contract], loopback_only=True, snmp=True, ssh=False
    ) as running:
        inventory = work / "fleet.csv"
        credentials = work / "fleet.credentials.toml"
        config = work / "fleet.portal.toml"
        write_inventory_csv(inventory, devices, running.endpoints)
        write_credentials_toml(credentials, "456")
        write_portal_toml(config, running.portal_url, running.secrets.portal_token)
        contracts = write_contracts(work / "fleet.contracts.csv", contract, pricing)
        fleet = ManagedFleet(running, db, target, config, work)
        steps: list[tuple[str, ...]] = [
            ("inventory", "import", str(inventory)),
            ("contracts", "import", str(contracts)),
        ]
        if not site_credentials:
            steps = [("credentials", "import", str(credentials)), *steps, ("scan",)]
        for args in steps:
            done = await fleet.cli(*args)
            assert done.code == 0, (args, done.stderr)
        if not site_credentials:
            assert await observed_states(target) == {
                d.serial: {f: lic.state.value for f, lic in d.licenses.items()} for d in devices
            }, ("the scan did not record every device's licenses", done.stderr)
        yield fleet


async def observed_states(db: DatabaseTarget) -> dict[str, dict[str, str]]:
    """The license states the store holds per device (what --all-expired goes by)."""
    async with await InventoryStore.open(db) as store:
        statuses = await ObservationStore(store.engine).statuses()
    return {
        serial: {lic.feature: lic.state.value for lic in status.licenses}
        for serial, status in statuses.items()
    }
