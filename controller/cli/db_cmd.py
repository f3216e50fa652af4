"""`polyfleet db …`: store maintenance."""

from __future__ import annotations

import typer

from controller.cli.context import fail, get_context, run
from inventory.database import create_engine, resolve_db, upgrade
from inventory.errors import StoreError

app = typer.Typer(help="The store (SQLite file or PostgreSQL database).", no_args_is_help=True)


@app.command("upgrade")
def upgrade_(ctx: typer.Context) -> None:
    """Create or migrate the tables (commands that write also do this on first use)."""
    cli = get_context(ctx)
    try:
        target = resolve_db(cli.db_url())
    except StoreError as exc:  # an unsupported or malformed --db
        fail(str(exc))

    async def migrate() -> tuple[str | None, str | None]:
        engine = create_engine(target)
        try:
            return await upgrade(engine, target.schema)
        finally:
            await engine.dispose()

    before, head = run(migrate)
    if before == head:
        cli.info(f"{target.display()} is at revision {head}: nothing to do")
    else:
        cli.info(f"{target.display()} upgraded from {before or 'empty'} to {head}")
