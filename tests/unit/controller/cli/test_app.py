"""The root command lists its sub-commands without importing them, and says the same."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from controller.cli import app as root

ROOT = Path(__file__).resolve().parents[4]


@pytest.mark.parametrize("name", list(root.COMMANDS))
def test_summary_is_the_commands_own_help_line(name: str) -> None:
    """SUMMARIES stands in for the loaded command in the root's help: the same first paragraph
    (what typer's help shows of it), and nothing that would move it to another panel."""
    command = root.load_command(name)
    shown = inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0]
    assert root.SUMMARIES[name] == shown
    assert not command.hidden
    assert not command.deprecated
    assert not getattr(command, "rich_help_panel", None)


def test_every_command_has_a_summary() -> None:
    assert set(root.SUMMARIES) == set(root.COMMANDS)


def test_root_help_is_the_same_with_every_command_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    lazy = runner.invoke(root.app, ["--help"])
    monkeypatch.setattr(root, "SUMMARIES", {})  # no stand-ins: every command is loaded
    eager = runner.invoke(root.app, ["--help"])
    assert lazy.exit_code == eager.exit_code == 0
    assert lazy.output == eager.output
    assert "re-activate and audit it" in lazy.output


def test_root_help_imports_no_command_module() -> None:
    """The point of SUMMARIES: `polyfleet --help` took about 1 s importing every command."""
    code = (
        "import sys\n"
        "import controller.cli.app as root\n"
        "try:\n"
        "    root.app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = [m for m, _ in root.COMMANDS.values() if m in sys.modules]\n"
        "print('LOADED', loaded, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert "LOADED []" in result.stderr, result.stderr[-2000:]
    assert "Commands" in result.stdout


def test_a_stand_in_is_never_kept(capsys: pytest.CaptureFixture[str]) -> None:
    """After the root's help was built, the group still loads the real command."""
    group = typer.main.get_command(root.app)
    ctx = typer.Context(group)
    group.get_help(ctx)  # typer's rich help prints it
    assert "Device drivers" in capsys.readouterr().out
    drivers = group.get_command(ctx, "drivers")  # type: ignore[attr-defined]
    assert isinstance(drivers, TyperGroup)
    assert "list" in drivers.commands
