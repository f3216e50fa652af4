"""The root command: --version, db upgrade, config precedence, the installed console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.cli import polyfleet


def test_db_upgrade_creates_then_reports_nothing_to_do(db_url: str) -> None:
    first = polyfleet(db_url, "db", "upgrade")
    assert first.code == 0
    assert "upgraded from empty to" in first.stderr
    second = polyfleet(db_url, "db", "upgrade")
    assert "nothing to do" in second.stderr


def test_unsupported_database_url_is_a_clear_error(tmp_path: Path) -> None:
    result = polyfleet("mysql://localhost/x", "inventory", "list")
    assert result.code == 1
    assert "unsupported database 'mysql'" in result.stderr


def test_console_script_keeps_json_on_stdout_and_messages_on_stderr(tmp_path: Path) -> None:
    env = {**os.environ, "POLYFLEET_DB": str(tmp_path / "cli.db")}
    exe = Path(sys.executable).with_name("polyfleet")
    added = subprocess.run(
        [exe, "inventory", "add", "A1", "--site", "hq", "-o", "json"],
        capture_output=True, text=True, env=env, check=False, timeout=60,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.lstrip().startswith("[")
    assert "\x1b[" not in added.stdout + added.stderr  # no colour without a TTY
    version = subprocess.run(
        [exe, "--version"], capture_output=True, text=True, check=True, timeout=60
    )
    assert version.stdout.startswith("polyfleet ")


def test_config_file_names_the_store_and_env_overrides_it(tmp_path: Path) -> None:
    config = tmp_path / "polyfleet.toml"
    config.write_text(f'db = "{tmp_path / "from-file.db"}"\n', encoding="utf-8")
    env = {**os.environ, "POLYFLEET_CONFIG": str(config)}
    env.pop("POLYFLEET_DB", None)
    exe = Path(sys.executable).with_name("polyfleet")
    subprocess.run([exe, "inventory", "add", "F1"], env=env, check=True, timeout=60)
    assert (tmp_path / "from-file.db").exists()
    env["POLYFLEET_DB"] = str(tmp_path / "from-env.db")
    subprocess.run([exe, "inventory", "add", "E1"], env=env, check=True, timeout=60)
    assert (tmp_path / "from-env.db").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text("db = [", encoding="utf-8")
    broken = subprocess.run(
        [exe, "--config", str(bad), "inventory", "list"],
        capture_output=True, text=True, env=env, check=False, timeout=60,
    )  # fmt: skip
    assert broken.returncode == 2
    assert "not valid TOML" in broken.stderr


def test_help_shows_no_value_placeholder_after_flags(tmp_path: Path) -> None:
    """`--quiet` and `-v` take no value, so help must not suggest one (`<bool>`, `<int>`)."""
    from controller.cli.app import COMMANDS

    db = str(tmp_path / "h.db")
    screens = [polyfleet(db, "--help").stdout]
    screens += [polyfleet(db, name, "--help").stdout for name in COMMANDS]
    screens.append(polyfleet(db, "inventory", "import", "--help").stdout)
    for screen in screens:
        assert "<bool>" not in screen
    root = screens[0]
    verbose_row = next(line for line in root.splitlines() if "--verbose" in line)
    assert "<int>" not in verbose_row
    assert "<str>" in root  # options that take a value still show it (`--db <str>`)
