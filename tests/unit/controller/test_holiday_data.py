"""The holiday cache: a quote reads holidays from files, and a bad cache never changes a date."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from controller import holiday_data
from controller.holiday_data import UnknownCountry, holiday_year, supported_countries


@pytest.fixture(autouse=True)
def _fresh_process() -> Iterator[None]:
    """Each test starts as a new process would: nothing remembered in memory."""
    _forget()
    yield
    _forget()


def _forget() -> None:
    for cached in (
        holiday_data._holiday_year,
        holiday_data._supported_countries,
        holiday_data._cache_dir,
    ):
        cached.cache_clear()


def _cache_file(name: str) -> Path:
    directory = holiday_data._cache_dir()
    assert directory is not None
    return directory / name


def test_a_second_run_reads_the_year_from_the_cache_without_the_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = holiday_year("de-by", 2027)
    assert first.names[date(2027, 1, 6)] == "Epiphany"
    assert first.weekend == {5, 6}
    assert _cache_file("DE-BY-2027.json").is_file()

    holiday_data._holiday_year.cache_clear()

    def no_library(code: str, year: int) -> None:
        raise AssertionError("the holidays library was asked again")

    monkeypatch.setattr(holiday_data, "_compute_year", no_library)
    assert holiday_year("DE-BY", 2027) == first


def test_supported_countries_come_from_the_cache_the_second_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = supported_countries()
    assert "BY" in first["DE"]
    holiday_data._supported_countries.cache_clear()
    monkeypatch.setattr(holiday_data, "_compute_countries", lambda: {"XX": []})
    assert supported_countries() == first


@pytest.mark.parametrize(
    "content", ["not json", "[1, 2]", '{"weekend": [5, 6]}', '{"weekend": "x", "holidays": 3}']
)
def test_an_unusable_cache_file_is_computed_again_and_replaced(content: str) -> None:
    path = _cache_file("US-2026.json")
    path.parent.mkdir(parents=True)
    path.write_text(content, encoding="utf-8")
    year = holiday_year("US", 2026)
    assert year.names[date(2026, 11, 26)] == "Thanksgiving Day"
    assert json.loads(path.read_text(encoding="utf-8"))["holidays"]["2026-11-26"] == (
        "Thanksgiving Day"
    )


def test_each_library_release_has_its_own_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    holiday_year("US", 2026)
    monkeypatch.setattr(holiday_data, "version", lambda name: "0.0-other")
    holiday_data._cache_dir.cache_clear()  # a new process
    assert holiday_data._cache_dir() == _cache_file("x").parent.parent / "holidays-0.0-other"


def test_an_unwritable_cache_still_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the cache directory cannot be made
    assert holiday_year("US", 2026).names[date(2026, 12, 25)] == "Christmas Day"


def test_an_unknown_country_is_refused_and_never_cached() -> None:
    with pytest.raises(UnknownCountry, match="'XX'"):
        holiday_year("XX", 2026)
    with pytest.raises(UnknownCountry, match=re.escape("'XX-../1'")):
        holiday_year("xx-../1", 2026)
    assert not _cache_file("XX-2026.json").exists()
