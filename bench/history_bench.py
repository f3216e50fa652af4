"""Observation history benchmark (issue 13, item 4): what appending every observation to its
device's history, and keeping only the newest N, costs the write path of a nightly scan.

In-process, the store alone: `ObservationStore.record` in batches of 200 (ScanRecorder's batch)
for every device, a few rounds (nights), on SQLite and, with `--pg`, PostgreSQL. Before the
rounds the history is filled to its steady state (N rows per device, one SQL statement), so every
round also drops one row per device, as every night after the first N does. One untimed night
comes first, so every timed night replaces stored statuses and licenses as a real one does (and,
on PostgreSQL, `ANALYZE` then stands for autovacuum, which a live store has had time to run: on
a fresh database the planner still takes the tables for empty). Run from a tree
without the history (the commit before it: copy this file there) it measures the latest-status
write alone, which is the "before" figure.

    .venv/bin/python bench/history_bench.py [--devices 100000] [--rounds 3] [--keep 50]
        [--pg postgresql://postgres@127.0.0.1:5432/DB]

Wall and CPU (time.process_time: this process and its SQLite thread; PostgreSQL's server
CPU is not in it) per round, medians; the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BATCH = 200
_FILL = """
WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < :keep)
INSERT INTO observation_history (serial, seq, observed_at, reachable, driver, licenses,
    license_read_ok, license_read_call, license_read_detail, license_read_modeled)
SELECT d.serial, n.k, :at, :yes, 'poly-uc', :licenses, :yes, 'GET /api/v1/mgmt/license/info',
    '2 feature(s) read', :no
FROM devices d CROSS JOIN n
"""


async def run(url: str, devices: int, rounds: int, keep: int) -> dict[str, Any]:
    import sqlalchemy as sa

    from inventory import schema
    from inventory.database import resolve_db
    from inventory.models import Device, License, LicenseRead, LicenseState
    from inventory.observation_store import DeviceObservation, ObservationStore
    from inventory.schema import UTCDateTime
    from inventory.store import InventoryStore

    history = getattr(schema, "observation_history", None)
    start = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    serials = [f"HH{index:08d}" for index in range(devices)]
    out: dict[str, Any] = {"history": history is not None}
    async with await InventoryStore.open(resolve_db(url)) as store:
        for at in range(0, devices, 5000):
            await store.upsert_devices(
                [Device(serial=s, mac=f"0004f2{i:06x}", model="VVX 450", site=f"site-{i % 100}")
                 for i, s in enumerate(serials[at : at + 5000], start=at)]
            )  # fmt: skip
        kwargs: dict[str, Any] = {}
        if history is not None:
            kwargs["keep"] = keep
            fill = sa.text(_FILL).bindparams(
                sa.bindparam("at", type_=UTCDateTime()),
                sa.bindparam("yes", type_=sa.Boolean()),
                sa.bindparam("no", type_=sa.Boolean()),
            )
            lics = (
                '[["base","active","2027-12-01T00:00:00+00:00"],'
                '["video","active","2027-12-01T00:00:00+00:00"]]'
            )  # licenses_json's form
            began = time.perf_counter()
            async with store.engine.begin() as conn:
                await conn.execute(
                    fill,
                    {"keep": keep, "at": start - timedelta(days=1), "licenses": lics,
                     "yes": True, "no": False},
                )  # fmt: skip
            out["fill_s"] = time.perf_counter() - began
        observations = ObservationStore(store.engine, **kwargs)
        read = LicenseRead(ok=True, call="GET /api/v1/mgmt/license/info", detail="2 read")
        walls, cpus = [], []
        for night in range(-1, rounds):  # night -1: untimed
            seen = start + timedelta(days=night + 1)
            batches = [
                [
                    DeviceObservation(
                        serial=s, observed_at=seen, reachable=True, driver="poly-uc",
                        licenses=[
                            License(serial=s, feature=f, state=LicenseState.ACTIVE,
                                    expires_at=seen + timedelta(days=365), source="poly-uc",
                                    observed_at=seen)
                            for f in ("base", "video")
                        ],
                        license_read=read,
                    )
                    for s in serials[at : at + BATCH]
                ]
                for at in range(0, devices, BATCH)
            ]  # fmt: skip
            wall, cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                await observations.record(batch)
            if night < 0:
                if store.engine.dialect.name == "postgresql":
                    async with store.engine.begin() as conn:
                        await conn.execute(sa.text("ANALYZE"))
                continue
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            print(f"  night {night + 1}: wall {walls[-1]:.2f} s, cpu {cpus[-1]:.2f} s", flush=True)
        out["walls"], out["cpus"] = walls, cpus
        if history is not None:
            async with store.engine.connect() as conn:
                count = sa.select(sa.func.count()).select_from(history)
                out["rows"] = (await conn.execute(count)).scalar()
            page = await observations.history(serials[0], limit=keep)  # the fill reads back
            if page.total != keep or not all(e.licenses for e in page.entries):
                raise SystemExit(f"the history does not read back: {page}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=int, default=50)
    parser.add_argument("--pg", help="an empty PostgreSQL database of your own (never `test`)")
    args = parser.parse_args()
    targets = []
    with tempfile.TemporaryDirectory(prefix="polyfleet-history-bench-") as tmp:
        targets.append(("SQLite", str(Path(tmp) / "history.db")))
        if args.pg:
            targets.append(("PostgreSQL", args.pg))
        for label, url in targets:
            load = os.getloadavg()[0]
            print(f"{label}: {args.devices:,} devices, keep {args.keep}, load {load:.1f}")
            result = asyncio.run(run(url, args.devices, args.rounds, args.keep))
            wall = statistics.median(result["walls"])
            cpu = statistics.median(result["cpus"])
            per = 1_000_000 / args.devices
            size = ""
            if label == "SQLite":
                files = Path(tmp).glob("history.db*")
                size = f", store {sum(f.stat().st_size for f in files) / 2**20:.0f} MiB"
            print(
                f"{label} ({'with' if result['history'] else 'without'} history): median night "
                f"wall {wall:.2f} s, cpu {cpu:.2f} s ({wall * per:.1f} / {cpu * per:.1f} ms per "
                f"1,000 devices); fill {result.get('fill_s', 0):.1f} s; history rows "
                f"{result.get('rows', '-')}{size}; load {load:.1f} -> {os.getloadavg()[0]:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
