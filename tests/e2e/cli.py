"""Running `polyfleet` in-process the way a user runs it, with stdout and stderr kept apart."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from typer.testing import CliRunner

from controller.cli.app import app


@dataclass(frozen=True)
class Outcome:
    """Exit code and the two output streams of one command."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def polyfleet(db: str, *args: str, stdin: str | None = None) -> Outcome:
    """`polyfleet --db DB ARGS…` with `stdin` fed in."""
    result = CliRunner().invoke(app, ["--db", db, *args], input=stdin, catch_exceptions=False)
    return Outcome(result.exit_code, result.stdout, result.stderr)
