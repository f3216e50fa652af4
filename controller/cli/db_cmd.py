"""`polyfleet db …`: store maintenance."""

from __future__ import annotations

import typer

from controller.cli.context import get_context, run
from inventory.database import DatabaseTarget, create_engine, resolve_db, upgrade

app = typer.Typer(help="The store (SQLite file or PostgreSQL database).", no_args_is_help=True)


@app.command("upgrade")
def upgrade_(ctx: typer.Context) -> None:
    """Apply pending schema migrations (they also run on first use)."""
    cli = get_context(ctx)
    targets: list[DatabaseTarget] = []

    async def migrate() -> tuple[str | None, str | None]:
        target = resolve_db(cli.db_url())  # here, so a bad URL is an error message, not a crash
        targets.append(target)
        engine = create_engine(target)
        try:
            return await upgrade(engine, target.schema)
        finally:
            await engine.dispose()

    before, head = run(migrate)
    target = targets[0]
    if before == head:
        cli.info(f"{target.display()} is at revision {head}: nothing to do")
    else:
        cli.info(f"{target.display()} upgraded from {before or 'empty'} to {head}")
