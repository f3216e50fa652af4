"""The SQLite engine's return-to-pool reset: skipped when SQLite has no transaction open (a hop
to aiosqlite's thread saved per transaction), but a connection that comes back in the middle
of one is still rolled back, so the next user of the one pooled connection never inherits it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.util import greenlet_spawn

from inventory.database import DatabaseTarget, create_engine


async def test_a_connection_returned_mid_transaction_is_rolled_back_and_a_clean_one_kept(
    tmp_path: Path,
) -> None:
    engine = create_engine(DatabaseTarget(f"sqlite+aiosqlite:///{tmp_path / 'reset.db'}"))
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")

        def leave_a_write_open() -> None:
            pooled = engine.sync_engine.pool.connect()  # below Connection: no rollback of its own
            cursor = pooled.cursor()
            cursor.execute("BEGIN")
            cursor.execute("INSERT INTO t VALUES (1)")
            cursor.close()
            pooled.close()

        await greenlet_spawn(leave_a_write_open)
        async with engine.connect() as conn:  # the same (only) pooled connection
            assert driver_in_transaction(await conn.get_raw_connection()) is False
            assert (await conn.exec_driver_sql("SELECT count(*) FROM t")).scalar() == 0

        async with engine.begin() as conn:
            await conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("SELECT count(*) FROM t")).scalar() == 1
    finally:
        await engine.dispose()


def driver_in_transaction(raw: object) -> bool:
    driver = getattr(raw, "driver_connection", None)
    return bool(getattr(driver, "in_transaction", True))
