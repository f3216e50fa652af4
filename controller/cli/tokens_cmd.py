"""`polyfleet tokens …`: the API's Bearer tokens. A token is printed once, at creation; the
store keeps only its SHA-256, so a lost token is revoked and replaced, never recovered."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer

from controller.cli.context import ExitCode, OutputFormat, fail, get_context, run
from controller.cli.output import emit_json, emit_rows
from inventory.token_store import ApiToken, Role, TokenStore

app = typer.Typer(help="Bearer tokens of the HTTP API (polyfleet serve).", no_args_is_help=True)

LIST_COLUMNS = ("id", "role", "site", "name", "created_at", "last_used_at", "revoked_at")
OutputOption = Annotated[
    OutputFormat, typer.Option("--output", "-o", help="table for people, json or csv for scripts")
]


def token_record(token: ApiToken) -> dict[str, Any]:
    """A token as listings show it (an ApiToken holds no secret)."""
    record = {**asdict(token), "role": token.role.value}
    del record["store_generation"]  # what the store's data was at, not the token's
    return record


@app.command()
def create(
    ctx: typer.Context,
    role: Annotated[Role, typer.Option(help="viewer < technician < admin; agent: one site")],
    site: Annotated[str | None, typer.Option(help="the site of an agent token")] = None,
    name: Annotated[str | None, typer.Option(help="who or what uses it")] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Create a token and print it once on stdout (store it now: it cannot be shown again)."""
    cli = get_context(ctx)
    if role is Role.AGENT and not site:
        fail("an agent token is bound to one site: give --site", ExitCode.UNUSABLE_INPUT)
    if output is OutputFormat.CSV:
        fail("tokens create prints table or json, not csv", ExitCode.UNUSABLE_INPUT)

    async def make() -> tuple[ApiToken, str]:
        async with cli.store() as store:
            return await TokenStore(store.engine).create(role, site=site, name=name)

    token, secret = run(make)
    if output is OutputFormat.JSON:
        emit_json({**token_record(token), "token": secret})
        return
    cli.info(f"token {token.id} ({token.role}) created; it is shown this once:")
    typer.echo(secret)


@app.command("list")
def list_(ctx: typer.Context, output: OutputOption = OutputFormat.TABLE) -> None:
    """Every token with its role, site and use (revoked ones too); never a secret."""
    cli = get_context(ctx)

    async def fetch() -> list[ApiToken]:
        async with cli.store(read_only=True) as store:
            return await TokenStore(store.engine).list()

    tokens = run(fetch)
    emit_rows(
        [token_record(t) for t in tokens], LIST_COLUMNS, output, console=cli.out, title="API tokens"
    )


@app.command()
def revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(metavar="ID", help="the token's id (tokens list)")],
) -> None:
    """Revoke a token: the API refuses it from the next request on."""
    cli = get_context(ctx)

    async def apply() -> ApiToken:
        async with cli.store() as store:
            return await TokenStore(store.engine).revoke(token_id)

    token = run(apply)  # an unknown id: exit 1 naming it
    cli.info(f"token {token.id} ({token.role}) revoked")
