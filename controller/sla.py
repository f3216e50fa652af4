"""Business-day arithmetic for SLA due dates, on the public holidays of a country.

The seed promises activation "within 1-2 business days"; a due date that ignores a site's
public holidays (Thanksgiving in the US, Whit Monday in Germany) would be a promise we break.
Calendars come from the maintained `holidays` library (through `holiday_data`, which caches
them); weekends are the country's own.
"""

from __future__ import annotations

from datetime import date, timedelta

from controller.holiday_data import UnknownCountry, holiday_year

__all__ = ["UnknownCountry", "add_business_days", "holidays_between", "is_business_day"]

_MAX_BUSINESS_DAYS = 366


def is_business_day(day: date, country: str) -> bool:
    """Neither a weekend day of that country nor one of its public holidays."""
    year = holiday_year(country, day.year)
    return day.weekday() not in year.weekend and day not in year.names


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
    found: list[tuple[date, str]] = []
    day = start + timedelta(days=1)
    while day <= end:
        name = holiday_year(country, day.year).names.get(day)
        if name is not None:
            found.append((day, str(name)))
        day += timedelta(days=1)
    return found
