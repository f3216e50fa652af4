"""`polyfleet credentials …`: device credential profiles, secrets never taken from argv.

Secrets come from hidden prompts, or with `--from-stdin` as KEY=VALUE lines, and are stored
encrypted; no command prints them (listings say which secrets a profile holds, not what).
"""

from __future__ import annotations

import getpass
import sys
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import ValidationError

from controller.cli.context import ExitCode, OutputFormat, fail, get_context, run
from controller.cli.output import emit_rows
from inventory.input_files import parse_toml, read_small_text
from inventory.models import SECRET_FIELDS, CredentialProfile

app = typer.Typer(help="Device credential profiles (HTTP, SNMP, SSH).", no_args_is_help=True)


def parse_secret_lines(text: str) -> dict[str, str]:
    """KEY=VALUE lines (blank lines and # comments skipped); unknown keys are an error."""
    secrets: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        key = key.strip()
        if not sep:
            fail(f"stdin line {number}: expected KEY=VALUE")
        if key not in SECRET_FIELDS:
            fail(f"stdin line {number}: unknown secret {key!r}; known: {', '.join(SECRET_FIELDS)}")
        secrets[key] = value
    return secrets


def _wanted_secrets(
    http_user: str | None, ssh_user: str | None, snmp_version: str, snmp_user: str | None
) -> list[str]:
    wanted = []
    if http_user:
        wanted.append("http_password")
    if ssh_user:
        wanted.append("ssh_password")
    if snmp_version == "2c":
        wanted.append("snmp_community")
    elif snmp_user:
        wanted += ["snmp_auth_key", "snmp_priv_key"]
    return wanted


def _prompt_secrets(wanted: list[str]) -> dict[str, str]:
    if not sys.stdin.isatty():
        fail("no terminal to prompt for secrets: pass them with --from-stdin as KEY=VALUE lines")
    secrets = {}
    for name in wanted:
        value = getpass.getpass(f"{name.replace('_', ' ')} (empty to skip): ")
        if value:
            secrets[name] = value
    return secrets


@app.command("set")
def set_(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="profile name")],
    http_user: Annotated[str | None, typer.Option(help="HTTP(S) API user, e.g. Polycom")] = None,
    ssh_user: Annotated[str | None, typer.Option()] = None,
    ssh_key_file: Annotated[Path | None, typer.Option(help="private key for SSH")] = None,
    snmp_version: Annotated[Literal["2c", "3"], typer.Option()] = "2c",
    snmp_user: Annotated[str | None, typer.Option(help="SNMPv3 user")] = None,
    snmp_auth: Annotated[Literal["sha", "sha256"], typer.Option()] = "sha",
    snmp_priv: Annotated[Literal["aes", "aes256"], typer.Option()] = "aes",
    from_stdin: Annotated[
        bool, typer.Option("--from-stdin", help="read secrets as KEY=VALUE lines from stdin")
    ] = False,
) -> None:
    """Create or replace a credential profile; secrets are prompted for, hidden."""
    cli = get_context(ctx)
    if from_stdin:
        secrets = parse_secret_lines(sys.stdin.read())
    else:
        secrets = _prompt_secrets(_wanted_secrets(http_user, ssh_user, snmp_version, snmp_user))
    try:
        profile = CredentialProfile.model_validate(
            {
                "name": name,
                "http_user": http_user,
                "ssh_user": ssh_user,
                "ssh_key_file": str(ssh_key_file) if ssh_key_file else None,
                "snmp_version": snmp_version,
                "snmp_user": snmp_user,
                "snmp_auth_protocol": snmp_auth,
                "snmp_priv_protocol": snmp_priv,
                **secrets,
            }
        )
    except ValidationError as exc:
        fail(_profile_error(name, exc))

    async def save() -> None:
        async with cli.credentials() as store:
            await store.put(profile)

    run(save)
    held = ", ".join(profile.secret_fields_set()) or "no secrets"
    cli.info(f"saved credential profile {name!r} ({held})")


def _profile_error(name: str, exc: ValidationError) -> str:
    # pydantic echoes the input value in its messages: never let a secret through.
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "profile"
        parts.append(f"{where}: {error['msg']}")
    return f"invalid credential profile {name!r}: " + "; ".join(parts)


@app.command("list")
def list_(
    ctx: typer.Context,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.TABLE,
) -> None:
    """List profiles with which secrets each holds (never their values)."""
    cli = get_context(ctx)

    async def fetch() -> list[tuple[CredentialProfile, list[str]]]:
        async with cli.credentials(read_only=True) as store:
            return await store.list()

    rows: list[dict[str, Any]] = []
    for profile, secrets in run(fetch):
        rows.append(
            {
                "name": profile.name,
                "http_user": profile.http_user,
                "ssh_user": profile.ssh_user,
                "snmp_version": profile.snmp_version,
                "snmp_user": profile.snmp_user,
                "secrets": secrets,
            }
        )
    columns = ("name", "http_user", "ssh_user", "snmp_version", "snmp_user", "secrets")
    emit_rows(rows, columns, output, console=cli.out)


@app.command()
def remove(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    """Remove a credential profile."""
    cli = get_context(ctx)

    async def delete() -> None:
        async with cli.credentials() as store:
            await store.remove(name)

    run(delete)
    cli.info(f"removed credential profile {name!r}")


def load_profiles_file(path: Path) -> list[CredentialProfile]:
    """Profiles from a TOML file: one table per profile (`[name]` or `[profiles.name]`)."""
    try:
        data = parse_toml(read_small_text(path))
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", ExitCode.UNUSABLE_INPUT)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        fail(f"{path} is not valid TOML: {exc}", ExitCode.UNUSABLE_INPUT)
    tables = data.get("profiles", data)
    if not isinstance(tables, dict) or not tables:
        fail(f"{path} holds no profiles", ExitCode.UNUSABLE_INPUT)
    profiles = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            fail(f"{path}: profile {name!r} is not a table")
        try:
            profiles.append(CredentialProfile.model_validate({**table, "name": name}))
        except ValidationError as exc:
            fail(f"{path}: " + _profile_error(name, exc))
    return profiles


@app.command("import")
def import_(ctx: typer.Context, file: Annotated[Path, typer.Argument()]) -> None:
    """Import profiles from a TOML file (as `polyfleet simulate` writes); all or nothing."""
    cli = get_context(ctx)
    profiles = load_profiles_file(file)

    async def save() -> None:
        async with cli.credentials() as store:
            for profile in profiles:
                await store.put(profile)

    run(save)
    cli.info(f"imported {len(profiles)} credential profile(s)")
