"""Opening the store: one async engine for SQLite (aiosqlite) or PostgreSQL (asyncpg).

`--db` / `POLYFLEET_DB` take a URL (`sqlite:///path`, `postgresql://user@host/db`) or a plain file
path; the default is a SQLite file in the user data dir. Migrations run automatically on open, so
a fresh file or database is usable at once, and `polyfleet db upgrade` runs the same step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from platformdirs import user_data_dir
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState

from inventory.async_engine import AsyncEngine, create_async_engine
from inventory.errors import StoreError
from inventory.migrations import HEAD

if TYPE_CHECKING:
    from alembic.config import Config

APP_NAME = "polyfleet"
SUPPORTED_SCHEMES = (
    "SQLite (sqlite:///FILE, or a file path) or PostgreSQL (postgresql://USER@HOST/DB)"
)
MIGRATIONS = Path(__file__).with_name("migrations")
PG_POOL_SIZE = 20
"""PostgreSQL connections a process keeps open once it has needed them (serve's concurrency)."""
PG_POOL_OVERFLOW = 10
"""More, opened for a burst beyond the pool and closed when it has passed."""


def default_db_path() -> Path:
    """Where the SQLite store lives when neither --db nor POLYFLEET_DB is given."""
    return Path(user_data_dir(APP_NAME, appauthor=False)) / "polyfleet.db"


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    """A resolved store location: the SQLAlchemy async URL plus an optional PostgreSQL schema."""

    url: str
    schema: str | None = None

    @property
    def dialect(self) -> str:
        return make_url(self.url).get_backend_name()

    def display(self) -> str:
        """The URL with any password masked, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)


def resolve_db(value: str | None, *, schema: str | None = None) -> DatabaseTarget:
    """Turn a --db value (URL or path, or None for the default) into a DatabaseTarget."""
    if not value:
        path = default_db_path()
        return DatabaseTarget(f"sqlite+aiosqlite:///{path}")
    if "://" not in value:
        return DatabaseTarget(f"sqlite+aiosqlite:///{Path(value).expanduser().resolve()}")
    try:
        url = make_url(value)
    except ArgumentError as exc:
        raise StoreError(f"--db {value!r} is not a database URL or a file path") from exc
    backend = url.get_backend_name()
    if backend == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    elif backend == "postgresql":
        # `?schema=NAME` keeps polyfleet's tables in their own schema of a shared database.
        schema = url.query.get("schema", schema)  # type: ignore[assignment]
        url = url.difference_update_query(["schema"]).set(drivername="postgresql+asyncpg")
    else:
        raise StoreError(
            f"unsupported database {backend!r} in --db / POLYFLEET_DB: polyfleet "
            f"stores in {SUPPORTED_SCHEMES}"
        )
    return DatabaseTarget(url.render_as_string(hide_password=False), schema)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    """WAL lets readers (health, list) run while a scan writes; foreign keys are off by default."""
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
        "PRAGMA busy_timeout=10000",
    ):
        cursor.execute(pragma)
    cursor.close()


def _sqlite_reset(
    dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry, state: PoolResetState
) -> None:
    """Rollback-on-return, skipped when SQLite says no transaction is open: the usual case, as
    every `begin()` block has committed and every read rolled back before the connection comes
    back. Each skipped rollback is a hop to aiosqlite's thread (eleven per re-activated device)."""
    if state.terminate_only or not state.asyncio_safe or state.transaction_was_reset:
        return  # discarded, or as SQLAlchemy's own reset would leave it
    driver = getattr(dbapi_connection, "driver_connection", None)
    try:
        idle = driver is not None and not driver.in_transaction
    except ValueError:  # aiosqlite: the connection is closed already
        return
    if not idle:
        dbapi_connection.rollback()


def create_engine(target: DatabaseTarget) -> AsyncEngine:
    """An async engine for the target; SQLite's parent directory is created if missing."""
    kwargs: dict[str, Any] = {}
    if target.dialect == "sqlite":
        database = make_url(target.url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            # One connection: SQLite has one writer at a time anyway, so concurrent tasks of a
            # process (a batch re-activation's 16) queue for it in asyncio instead of sleeping in
            # SQLite's busy handler, and no overflow connection (a thread each) is opened and
            # closed per burst. A quarter of `reactivate --all-expired`'s CPU went to that.
            kwargs |= {"pool_size": 1, "max_overflow": 0}
        kwargs["pool_reset_on_return"] = None  # _sqlite_reset does it
    else:
        # `serve` has dozens of requests in flight: with SQLAlchemy's default 5 pooled
        # connections every burst opened overflow connections (a PostgreSQL backend each) and
        # closed them again at check-in, a connection set-up per request. Connections are
        # opened only when needed, so a one-shot command still opens one.
        kwargs |= {"pool_size": PG_POOL_SIZE, "max_overflow": PG_POOL_OVERFLOW}
        if target.schema:
            kwargs["connect_args"] = {"server_settings": {"search_path": target.schema}}
    engine = create_async_engine(target.url, **kwargs)
    if target.dialect == "sqlite":
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine.sync_engine, "reset", _sqlite_reset)
    return engine


def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config  # only when a migration is due

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def script_head() -> str | None:
    """The head revision according to the migration scripts themselves."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def _stored_revision(connection: Connection) -> str | None:
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _schema_denied(connection: Connection, schema: str | None) -> bool:
    """PostgreSQL: the schema exists but this role may not use it, so its tables look absent."""
    if connection.dialect.name != "postgresql":
        return False
    allowed = connection.execute(
        sa.text(
            "SELECT has_schema_privilege(oid, 'USAGE') FROM pg_catalog.pg_namespace"
            " WHERE nspname = :name"
        ),
        {"name": schema or "public"},
    ).scalar()
    return allowed is False


_MIGRATION_LOCK_ID = 0x706F6C79  # "poly": serialises concurrent first opens on PostgreSQL


def _upgrade(connection: Connection, schema: str | None) -> tuple[str | None, str | None]:
    before = _stored_revision(connection)
    if before == HEAD:
        return before, HEAD
    from alembic import command  # only when a migration is due

    if connection.dialect.name == "postgresql":
        connection.execute(sa.text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})"))
        if schema:
            quoted = connection.dialect.identifier_preparer.quote_identifier(schema)
            connection.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
        before = _stored_revision(connection)  # another process may have migrated meanwhile
    elif connection.dialect.name == "sqlite":
        # One migrator: the write lock up front (others wait out the busy timeout), then look
        # again, as on PostgreSQL: two commands opening an old store at once migrate it once.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        before = _stored_revision(connection)
    if before != HEAD:
        command.upgrade(_alembic_config(connection), "head")
    return before, HEAD


async def require_current(engine: AsyncEngine, target: DatabaseTarget) -> None:
    """Refuse, without creating anything, a store whose tables are missing or not at head.

    For commands that only read: on a shared PostgreSQL database the schema belongs to whoever
    runs `polyfleet db upgrade`, and a listing must not create it as a side effect.
    """
    try:
        async with engine.connect() as conn:
            revision = await conn.run_sync(_stored_revision)
            denied = revision is None and await conn.run_sync(_schema_denied, target.schema)
    except (OperationalError, DBAPIError, OSError) as exc:
        raise StoreError(f"cannot open the store: {exc.__class__.__name__}: {exc}") from exc
    if revision == HEAD:
        return
    where = target.display() + (f" (schema {target.schema})" if target.schema else "")
    if denied:
        raise StoreError(
            f"{where}: permission denied for this role on the schema; its owner grants it with "
            "`polyfleet db grant-app-role ROLE` (README: The audit record)"
        )
    if revision is None:
        raise StoreError(
            f"{where} has no polyfleet tables yet: run `polyfleet db upgrade` to create them "
            "(this command only reads, so it creates nothing)"
        )
    raise StoreError(
        f"{where} is at schema revision {revision}, this polyfleet needs {HEAD}: run "
        "`polyfleet db upgrade`"
    )


async def upgrade(engine: AsyncEngine, schema: str | None = None) -> tuple[str | None, str | None]:
    """Apply pending migrations; returns (revision before, head). Safe to call on every open."""
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(_upgrade, schema)
    except (OperationalError, DBAPIError, OSError) as exc:
        raise StoreError(f"cannot open the store: {exc.__class__.__name__}: {exc}") from exc
