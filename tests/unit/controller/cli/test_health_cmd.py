"""`polyfleet health`'s own work: its options are parsed with messages naming the option, and
a report written to a file appears whole or not at all."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest

from controller.cli.health_cmd import (
    HealthFormat,
    InvalidOption,
    parse_duration,
    parse_format,
    parse_int,
    parse_seconds,
    write_atomically,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("26h", timedelta(hours=26)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        (" 45S ", timedelta(seconds=45)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration("--max-age", text) == expected


@pytest.mark.parametrize("text", ["", "26", "5x", "0h", "-1d", "h", "99999999999w"])
def test_bad_durations_name_the_option(text: str) -> None:
    with pytest.raises(InvalidOption, match="--max-age"):
        parse_duration("--max-age", text)


def test_bad_numbers_and_formats_name_the_option() -> None:
    with pytest.raises(InvalidOption, match="--warn-days 'ten': expected a whole number"):
        parse_int("--warn-days", "ten", low=0, high=100)
    with pytest.raises(InvalidOption, match="expected 0 to 100"):
        parse_int("--warn-days", "-1", low=0, high=100)
    with pytest.raises(InvalidOption, match="--timeout"):
        parse_seconds("--timeout", "0", high=10)
    with pytest.raises(InvalidOption, match="text, json, nagios, prometheus"):
        parse_format("xml")
    assert parse_format("NAGIOS") is HealthFormat.NAGIOS


def test_atomic_write_leaves_a_readable_file_and_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "polyfleet.prom"
    write_atomically(target, "a 1\n")
    write_atomically(target, "a 2\n")
    assert target.read_text() == "a 2\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["polyfleet.prom"]
