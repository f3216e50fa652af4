"""Hostile and careless input (issue 9, points 7-9): one clear line and the documented exit code,
never a traceback, and nothing written that the user did not ask for."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from inventory import importer
from tests.conftest import pg_url
from tests.e2e.cli import Outcome, polyfleet

DEEP_JSON = "[" * 100_000 + "]" * 100_000
DEEP_TOML = "a = " + "[" * 100_000 + "]" * 100_000 + "\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def one_error_line(result: Outcome, *parts: str) -> None:
    """stderr is a single `error:` line naming every part, and no traceback."""
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    for part in parts:
        assert part in lines[0]


def serials(db_url: str) -> list[str]:
    listed = polyfleet(db_url, "inventory", "list", "-o", "json")
    assert listed.code == 0, listed.stderr
    return [d["serial"] for d in listed.json()]


# --- item 7: bounded, streaming import ---------------------------------------------------------


def test_dev_zero_is_refused_with_exit_2_and_nothing_written(db_url: str, tmp_path: Path) -> None:
    seed = write(tmp_path, "a.csv", "serial\nA1\n")
    assert polyfleet(db_url, "inventory", "import", str(seed)).code == 0
    result = polyfleet(db_url, "inventory", "import", "/dev/zero", "--format", "csv")
    assert result.code == 2
    one_error_line(result, "/dev/zero", "line 1 is longer than the row limit of 1 MiB")
    assert serials(db_url) == ["A1"]


def test_max_bytes_refuses_a_larger_file(db_url: str, tmp_path: Path) -> None:
    path = write(tmp_path, "f.csv", "serial\n" + "".join(f"S{i}\n" for i in range(100)))
    for command in ("inventory", "contracts", "keys"):
        result = polyfleet(db_url, command, "import", str(path), "--max-bytes", "100")
        assert result.code == 2, command
        one_error_line(result, "larger than the import limit of 100 bytes", "--max-bytes")
    assert polyfleet(db_url, "inventory", "import", str(path), "--max-bytes", "1000").code == 0


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 3 rows, so a dozen-row file crosses several batch (and transaction) steps."""
    monkeypatch.setattr(importer, "BATCH_ROWS", 3)


def _rows(count: int) -> str:
    return "".join(f"SN{i:03d},0004f2000{i:03x}\n" for i in range(1, count + 1))


@pytest.mark.usefixtures("small_batches")
def test_strict_and_dry_run_write_nothing_across_batches(db_url: str, tmp_path: Path) -> None:
    late_bad = write(tmp_path, "late.csv", "serial,mac\n" + _rows(10) + "BAD,zz\n")
    strict = polyfleet(db_url, "inventory", "import", str(late_bad), "--strict")
    assert strict.code == 1
    assert f"{late_bad}:12: column mac rejected" in strict.stderr
    dry = polyfleet(db_url, "inventory", "import", str(late_bad), "--dry-run", "-o", "json")
    assert dry.code == 1
    assert (dry.json()["inserted"], dry.json()["written"]) == (10, False)
    assert serials(db_url) == []
    assert polyfleet(db_url, "inventory", "import", str(late_bad)).code == 1
    assert len(serials(db_url)) == 10


@pytest.mark.usefixtures("small_batches")
def test_a_refusal_after_written_batches_leaves_the_store_as_it_was(
    db_url: str, tmp_path: Path
) -> None:
    seed = write(tmp_path, "a.csv", "serial\nA1\n")
    assert polyfleet(db_url, "inventory", "import", str(seed)).code == 0
    broken = write(tmp_path, "b.csv", "serial,mac\n" + _rows(10) + 'X1,"never closed\n')
    result = polyfleet(db_url, "inventory", "import", str(broken))
    assert result.code == 2
    one_error_line(result, "broken CSV quoting in the record starting on line 12")
    assert serials(db_url) == ["A1"]


@pytest.mark.usefixtures("small_batches")
def test_later_batches_see_earlier_ones_and_keep_their_line_numbers(
    db_url: str, tmp_path: Path
) -> None:
    """A MAC released by a row in one batch may be taken by a row of a later batch, exactly as
    in one big batch; a conflict found in batch 3 is reported with its own line."""
    stored = write(tmp_path, "a.csv", "serial,mac\nOLD1,0004f2aaaaa1\nOLD2,0004f2aaaaa2\n")
    assert polyfleet(db_url, "inventory", "import", str(stored)).code == 0
    rows = [
        "OLD1,0004f2bbbbb1",  # line 2: OLD1 gives up ...aaa1
        "N1,0004f2ccccc1",
        "N2,0004f2ccccc2",
        "NEW,0004f2aaaaa1",  # line 5, batch 2: takes the MAC OLD1 released
        "N3,0004f2ccccc3",
        "N4,0004f2ccccc4",
        "N5,0004f2ccccc5",
        "THIEF,0004f2aaaaa2",  # line 9, batch 3: OLD2 still holds this MAC
    ]
    incoming = write(tmp_path, "b.csv", "serial,mac\n" + "\n".join(rows))
    result = polyfleet(db_url, "inventory", "import", str(incoming), "-o", "json")
    assert result.code == 1
    summary = result.json()
    assert [(r["line"], r["column"]) for r in summary["rejected"]] == [(9, "mac")]
    assert (summary["inserted"], summary["updated"]) == (6, 1)
    assert "NEW" in serials(db_url)


# --- item 6: errors for every bad input --------------------------------------------------------


def test_deeply_nested_import_files_exit_2_with_one_line(db_url: str, tmp_path: Path) -> None:
    deep = write(tmp_path, "deep.json", DEEP_JSON)
    for command in (["inventory", "import"], ["contracts", "import"]):
        result = polyfleet(db_url, *command, str(deep))
        assert result.code == 2, command
        one_error_line(result, str(deep), "nested too deeply")
    toml = write(tmp_path, "deep.toml", DEEP_TOML)
    result = polyfleet(db_url, "credentials", "import", str(toml))
    assert result.code == 2
    one_error_line(result, str(toml), "nested too deeply")


def test_deeply_nested_config_and_policy_are_clear_errors(db_url: str, tmp_path: Path) -> None:
    deep = write(tmp_path, "deep.toml", DEEP_TOML)
    listing = polyfleet(db_url, "--config", str(deep), "inventory", "list")
    assert listing.code == 2
    one_error_line(listing, f"config file {deep} is not valid TOML", "nested too deeply")
    health = polyfleet(db_url, "--config", str(deep), "health")
    assert health.code == 3
    one_error_line(health, "nested too deeply")
    quote = polyfleet(db_url, "quote", "SN1", "--policy", str(deep))
    assert quote.code == 2
    one_error_line(quote, f"policy file {deep} is not valid TOML", "nested too deeply")


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["health"], 3),
        (["health", "--format", "nagios"], 3),
        (["db", "upgrade"], 1),
        (["inventory", "list"], 1),
        (["confirmations", "verify"], 1),
    ],
)
def test_an_unsupported_database_scheme_names_the_supported_ones(
    args: list[str], code: int
) -> None:
    result = polyfleet("mysql://admin@db.example/fleet", *args)
    assert result.code == code
    one_error_line(result, "unsupported database 'mysql'", "sqlite:///FILE", "postgresql://")


# --- item 8: read-only commands on a PostgreSQL store without tables ---------------------------


async def _tables(schema: str) -> list[str]:
    conn = await asyncpg.connect(pg_url())
    try:
        rows = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
        )
        exists = await conn.fetchval(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", schema
        )
    finally:
        await conn.close()
    return sorted(row["table_name"] for row in rows) if exists else ["(no schema)"]


@pytest.mark.postgres
@pytest.mark.parametrize("missing_schema", [False, True])
def test_read_only_commands_on_an_empty_postgres_store_create_nothing(
    pg_schema: str, missing_schema: bool
) -> None:
    schema = f"{pg_schema}_absent" if missing_schema else pg_schema
    db = f"{pg_url()}?schema={schema}"
    for args, code in [
        (["inventory", "list"], 1),
        (["inventory", "show", "SN1"], 1),
        (["confirmations", "list"], 1),
        (["confirmations", "verify"], 1),
        (["contracts", "list"], 1),
        (["credentials", "list"], 1),
        (["health"], 3),
    ]:
        result = polyfleet(db, *args)
        assert result.code == code, args
        one_error_line(result, "has no polyfleet tables yet", "run `polyfleet db upgrade`")
    assert asyncio.run(_tables(schema)) == (["(no schema)"] if missing_schema else [])
    assert polyfleet(db, "db", "upgrade").code == 0
    assert polyfleet(db, "inventory", "list", "-o", "json").json() == []


def test_read_only_commands_still_create_a_fresh_sqlite_file(tmp_path: Path) -> None:
    """A SQLite file is the user's own store: a first `inventory list` just shows it empty."""
    listed = polyfleet(str(tmp_path / "new.db"), "inventory", "list", "-o", "json")
    assert (listed.code, listed.json()) == (0, [])


# --- item 8: the secret key file -----------------------------------------------------------


def test_a_secret_key_file_open_to_others_is_refused_with_the_fix(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "secret.key"
    monkeypatch.delenv("POLYFLEET_SECRET_KEY")
    monkeypatch.setenv("POLYFLEET_SECRET_KEY_FILE", str(key_file))
    created = polyfleet(db_url, "credentials", "set", "p", "--from-stdin", stdin="ssh_password=x\n")
    assert created.code == 0, created.stderr
    assert key_file.stat().st_mode & 0o777 == 0o600
    key_file.chmod(0o644)
    for args in (["credentials", "list"], ["credentials", "set", "q", "--from-stdin"]):
        result = polyfleet(db_url, *args, stdin="ssh_password=y\n")
        assert result.code == 1, args
        one_error_line(result, str(key_file), "mode 0644", f"chmod 600 {key_file}")
    key_file.chmod(0o600)
    assert polyfleet(db_url, "credentials", "list", "-o", "json").json()[0]["name"] == "p"


# --- item 5: no traceback from any command -------------------------------------------------

_BREAK = """
import sys
from controller.cli import health_cmd, inventory_cmd
from inventory.store import InventoryStore

def boom(*args, **kwargs):
    raise {exc}

InventoryStore.list_devices = boom
health_cmd.parse_format = boom
inventory_cmd.emit_rows = boom
from controller.cli.app import main
main()
"""


def _broken_run(tmp_path: Path, exc: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`polyfleet ARGS` as the console script runs it, with one internal call made to raise."""
    env = {
        **os.environ,
        "POLYFLEET_LOG_DIR": str(tmp_path / "logs"),
        "POLYFLEET_DB": str(tmp_path / "store.db"),
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [sys.executable, "-c", _BREAK.format(exc=exc), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "code"), [(["inventory", "list"], 1), (["health", "--format", "json"], 3)]
)
def test_an_unexpected_error_is_one_line_and_a_log_file(
    tmp_path: Path, args: list[str], code: int
) -> None:
    result = _broken_run(tmp_path, 'RuntimeError("disk on fire\\nsecond line")', *args)
    assert result.returncode == code
    assert "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert "\n" not in line
    assert line.startswith("polyfleet: internal error: RuntimeError: disk on fire; details in ")
    log = Path(line.rsplit("details in ", 1)[1])
    assert log.parent == tmp_path / "logs"
    assert log.stat().st_mode & 0o777 == 0o600
    text = log.read_text(encoding="utf-8")
    assert f"command: polyfleet {args[0]}" in text
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: disk on fire" in text


def test_ctrl_c_exits_130_quietly(tmp_path: Path) -> None:
    seeded = tmp_path / "a.csv"
    seeded.write_text("serial\nA1\n", encoding="utf-8")
    result = _broken_run(tmp_path, "KeyboardInterrupt", "inventory", "import", str(seeded))
    assert result.returncode == 0, result.stderr  # the import itself does not list
    result = _broken_run(tmp_path, "KeyboardInterrupt", "inventory", "show", "A1")
    assert result.returncode == 130
    assert result.stderr.strip() == ""
    assert not (tmp_path / "logs").exists()
