"""Business-day arithmetic for SLA due dates, on the public holidays of a country.

The seed promises activation "within 1-2 business days"; a due date that ignores a site's
public holidays (Thanksgiving in the US, Whit Monday in Germany) would be a promise we break.
Calendars come from the maintained `holidays` library; weekends are the country's own.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays

from controller.errors import ControllerError

_DEFAULT_WEEKEND = frozenset({5, 6})  # Saturday, Sunday
_MAX_BUSINESS_DAYS = 366


class UnknownCountry(ControllerError, ValueError):
    """A country (or subdivision) the holidays library has no calendar for."""


@lru_cache(maxsize=64)
def calendar_for(country: str) -> holidays.HolidayBase:
    """The holiday calendar of `CC` or `CC-SUBDIVISION` (e.g. `DE-BY`); years load on demand."""
    code, _, subdivision = country.strip().upper().partition("-")
    try:
        return holidays.country_holidays(code, subdiv=subdivision or None)
    except NotImplementedError:
        raise UnknownCountry(f"no holiday calendar for country {country!r}") from None


def _weekend(calendar: holidays.HolidayBase) -> frozenset[int]:
    weekend = getattr(calendar, "weekend", None)
    return frozenset(weekend) if weekend else _DEFAULT_WEEKEND


def is_business_day(day: date, country: str) -> bool:
    """Neither a weekend day of that country nor one of its public holidays."""
    calendar = calendar_for(country)
    return day.weekday() not in _weekend(calendar) and day not in calendar


def add_business_days(start: date, days: int, country: str) -> date:
    """The `days`-th business day after `start` (`start` itself is not counted; 0 -> `start`)."""
    if not 0 <= days <= _MAX_BUSINESS_DAYS:
        raise ValueError(f"business days must be between 0 and {_MAX_BUSINESS_DAYS}, not {days}")
    day = start
    remaining = days
    while remaining:
        day += timedelta(days=1)
        if is_business_day(day, country):
            remaining -= 1
    return day


def holidays_between(start: date, end: date, country: str) -> list[tuple[date, str]]:
    """Public holidays after `start` up to and including `end` (to explain a due date)."""
    calendar = calendar_for(country)
    found: list[tuple[date, str]] = []
    day = start + timedelta(days=1)
    while day <= end:
        name = calendar.get(day)
        if name is not None:
            found.append((day, str(name)))
        day += timedelta(days=1)
    return found
