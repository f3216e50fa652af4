"""Several commands opening a store that is one migration behind, at once (cron jobs right after
an upgrade of polyfleet): one of them migrates it, the others wait and find it done."""

from __future__ import annotations

import asyncio
import sys

from sqlalchemy.engine import Connection

from inventory.database import DatabaseTarget, _alembic_config, create_engine
from inventory.migrations import HEAD
from inventory.store import InventoryStore


def _downgrade_one(connection: Connection) -> None:
    from alembic import command

    command.downgrade(_alembic_config(connection), "-1")


async def test_commands_opening_an_old_store_at_once_migrate_it_once(
    db_target: DatabaseTarget, db_url: str
) -> None:
    await (await InventoryStore.open(db_target)).close()
    engine = create_engine(db_target)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade_one)
    finally:
        await engine.dispose()
    # Commands that write (a read-only one refuses an old store instead of migrating it).
    command = (sys.executable, "-m", "controller.cli", "--db", db_url, "inventory", "add")
    pipe = asyncio.subprocess.PIPE
    processes = [
        await asyncio.create_subprocess_exec(*command, f"SN-RACE-{i}", stdout=pipe, stderr=pipe)
        for i in range(6)
    ]
    for process in processes:
        _, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
    async with await InventoryStore.open(db_target) as store, store.engine.connect() as conn:
        revision = await conn.exec_driver_sql("SELECT version_num FROM alembic_version")
        assert revision.scalar_one() == HEAD
