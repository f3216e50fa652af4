"""`polyfleet db …`: store maintenance."""

from __future__ import annotations

from typing import Annotated

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


@app.command("grant-app-role")
def grant_app_role(
    ctx: typer.Context,
    role: Annotated[str, typer.Argument(help="an existing PostgreSQL role that owns nothing")],
) -> None:
    """Give ROLE what the application needs and no more (PostgreSQL; run as the owner).

    The application should connect as ROLE: it cannot then disable the triggers that keep the
    confirmations append-only, nor TRUNCATE, UPDATE or DELETE them. Repeat after `db upgrade`.
    """
    from inventory.app_role import grant

    cli = get_context(ctx)
    target = resolve_db(cli.db_url())

    async def apply() -> str:
        engine = create_engine(target)
        try:
            await upgrade(engine, target.schema)
            return await grant(engine, role, target.schema)
        finally:
            await engine.dispose()

    schema = run(apply)
    cli.info(f"role {role} may now use schema {schema} of {target.display()} as the application")
