"""Public holidays and weekends per country and year, from the `holidays` library, cached on disk.

Asking `holidays` for any one calendar imports its `holidays.countries` package, which imports
every country it knows (about 150 ms), on top of the library itself (about 60 ms): more than a
quote's whole work. The answers depend only on the library's version, so they are kept as small
JSON files in the user cache directory, one directory per version, and a quote or a policy check
reads them instead. A missing, unreadable or unwritable cache only costs that import again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

from controller.errors import ControllerError

log = logging.getLogger(__name__)
T = TypeVar("T")

_DEFAULT_WEEKEND = frozenset({5, 6})  # Saturday, Sunday
_CODE = re.compile(r"^[A-Z]{2,3}(?:-[A-Z0-9]{1,6})?$")  # safe as a file name, too


class UnknownCountry(ControllerError, ValueError):
    """A country (or subdivision) the holidays library has no calendar for."""


@dataclass(frozen=True, slots=True)
class HolidayYear:
    """One year of one country's calendar: its weekend days (Monday = 0) and public holidays."""

    weekend: frozenset[int]
    names: dict[date, str]


def supported_countries() -> dict[str, list[str]]:
    """Every country code the holidays library knows (aliases included) -> its subdivisions."""
    return _supported_countries()


def holiday_year(country: str, year: int) -> HolidayYear:
    """The calendar of `CC` or `CC-SUBDIVISION` (e.g. `DE-BY`) for `year`."""
    return _holiday_year(country.strip().upper(), year)


@cache
def _supported_countries() -> dict[str, list[str]]:
    return _cached("countries.json", _compute_countries, _parse_countries)


@cache
def _holiday_year(code: str, year: int) -> HolidayYear:
    if not _CODE.match(code):  # not a plain code: never a file name, and most likely unknown
        return _parse_year(_compute_year(code, year))
    return _cached(f"{code}-{year}.json", lambda: _compute_year(code, year), _parse_year)


def _parse_countries(data: dict[str, Any]) -> dict[str, list[str]]:
    return {str(code): [str(s) for s in subdivisions] for code, subdivisions in data.items()}


def _parse_year(data: dict[str, Any]) -> HolidayYear:
    return HolidayYear(
        weekend=frozenset(int(day) for day in data["weekend"]) or _DEFAULT_WEEKEND,
        names={date.fromisoformat(day): str(name) for day, name in data["holidays"].items()},
    )


def _compute_countries() -> dict[str, Any]:
    import holidays

    return dict(holidays.list_supported_countries())


def _compute_year(code: str, year: int) -> dict[str, Any]:
    import holidays

    country, _, subdivision = code.partition("-")
    try:
        calendar = holidays.country_holidays(country, subdiv=subdivision or None, years=year)
    except NotImplementedError:
        raise UnknownCountry(f"no holiday calendar for country {code!r}") from None
    weekend = getattr(calendar, "weekend", None) or _DEFAULT_WEEKEND
    return {
        "weekend": sorted(weekend),
        "holidays": {day.isoformat(): str(name) for day, name in sorted(calendar.items())},
    }


@cache
def _cache_dir() -> Path | None:
    """This holidays release's directory in the user cache, or None if it cannot be named.
    Once per process: the release is read from the installed package's metadata (1.5-2.5 ms
    each time here, and a quote reads the country list and a year's calendar)."""
    try:
        release = version("holidays")
    except PackageNotFoundError:
        return None
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("polyfleet")) / f"holidays-{release}"


def _cached(
    name: str, compute: Callable[[], dict[str, Any]], parse: Callable[[dict[str, Any]], T]
) -> T:
    """`parse` of the JSON object in cache file `name`; if there is none (or it does not parse),
    of `compute()`'s, which is then stored there for the next run."""
    directory = _cache_dir()
    if directory is None:
        return parse(compute())
    path = directory / name
    try:
        return parse(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.debug("holiday cache %s unusable (%r): computing it again", path, exc)
    data = compute()
    try:
        _write_atomically(path, json.dumps(data, ensure_ascii=False, sort_keys=True))
    except OSError as exc:
        log.debug("holiday cache %s not written: %s", path, exc)
    return parse(data)


def _write_atomically(path: Path, text: str) -> None:
    """A reader (another run at the same moment) sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
