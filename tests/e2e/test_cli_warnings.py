"""Library warnings never reach a user's terminal; polyfleet's own still do (issue 8)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

import controller

# Runs the real console-script entry point with a command whose loading raises two warnings:
# one attributed to a library (typer's source file), one to polyfleet's own code.
_SCRIPT = """
import sys, warnings
from controller.cli import app

real_load = app.load_command

def load_command(name):
    warnings.warn_explicit("a library's notice", UserWarning, {library!r}, 1)
    warnings.warn_explicit("our own notice", UserWarning, {own!r}, 1)
    return real_load(name)

app.load_command = load_command
sys.argv = ["polyfleet", *sys.argv[1:]]
app.main()
"""


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = _SCRIPT.format(
        library=typer.__file__, own=str(Path(controller.__file__).with_name("scan.py"))
    )
    return subprocess.run(
        [sys.executable, "-c", script, "--db", str(tmp_path / "w.db"), *args, "drivers", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_third_party_warnings_stay_off_stderr_but_ours_show(tmp_path: Path) -> None:
    done = _run(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "a library's notice" not in done.stderr
    assert "WARNING UserWarning: our own notice" in done.stderr


def test_third_party_warnings_are_logged_at_debug_level(tmp_path: Path) -> None:
    done = _run(tmp_path, "-v", "-v")
    assert done.returncode == 0, done.stderr
    assert "DEBUG third-party warning: UserWarning: a library's notice" in done.stderr
