"""What every `… import FILE` command shares: refusing unusable files, reporting rows, exit codes.

`inventory import`, `contracts import` and `keys import` follow one contract (PRODUCT.md): an
unusable file exits 2 with nothing written; each rejected row is printed with its line, column
and reason; `--strict` writes nothing when a row is rejected; exit 1 when any row was rejected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer

from controller.cli.context import CliContext, ExitCode, OutputFormat, fail
from controller.cli.output import emit_json
from inventory.errors import ImportRefused
from inventory.input_files import ReadLimits

T = TypeVar("T")


FileFormat = Literal["csv", "json"]
FORMATS: dict[str, FileFormat] = {"csv": "csv", "json": "json"}

MaxBytesOption = Annotated[
    int | None,
    typer.Option(
        "--max-bytes",
        metavar="N",
        min=1,
        help="refuse files larger than N bytes (default: setting import_max_bytes, 1 GiB)",
    ),
]


def import_limits(cli: CliContext, max_bytes: int | None) -> ReadLimits:
    """The read limits of an import: `--max-bytes` over the settings (env, config file)."""
    settings = cli.settings
    return ReadLimits(
        max_bytes=max_bytes or settings.import_max_bytes,
        max_row=settings.import_max_row_bytes,
    )


def check_format(fmt: str | None) -> FileFormat | None:
    """`--format` takes csv or json (or nothing: by file extension); anything else exits 2."""
    if fmt is not None and fmt not in FORMATS:
        fail(f"--format must be csv or json, not {fmt!r}", ExitCode.UNUSABLE_INPUT)
    return FORMATS.get(fmt) if fmt is not None else None


def parse_or_exit(parse: Callable[[], T]) -> T:
    """Run a file parser; an unusable file ends the command with exit 2, nothing written."""
    try:
        return parse()
    except ImportRefused as exc:
        fail(str(exc), ExitCode.UNUSABLE_INPUT)


def finish_import(
    cli: CliContext,
    file: Path,
    summary: Mapping[str, Any],
    *,
    strict: bool,
    dry_run: bool,
    output: OutputFormat,
    done: str,
) -> None:
    """Print rejected rows, the JSON summary and one summary line; exit 1 if rows were rejected.

    `done` says what was imported (e.g. "12 key(s); 3 already stored"); `summary` must carry
    `rejected` (list of row records) and `rejected_rows` (how many rows).
    """
    rejected = summary["rejected"]
    for row in rejected:
        column = f" column {row['column']}" if row["column"] else ""
        cli.err.print(f"{file}:{row['line']}:{column} rejected: {row['reason']}", highlight=False)
    if output is OutputFormat.JSON:
        emit_json(summary)
    if strict and rejected:
        cli.info(f"--strict: nothing imported, {summary['rejected_rows']} row(s) rejected")
    else:
        verb = "would import" if dry_run else "imported"
        cli.info(f"{verb} {done}; {summary['rejected_rows']} row(s) rejected")
    if rejected:
        raise typer.Exit(ExitCode.FAILED)
