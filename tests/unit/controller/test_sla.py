"""SLA due dates in business days: weekends and public holidays of the site's country."""

from __future__ import annotations

from datetime import date

import pytest

from controller.sla import (
    UnknownCountry,
    add_business_days,
    holidays_between,
    is_business_day,
)


def test_a_weekend_is_skipped() -> None:
    friday = date(2026, 11, 20)
    assert add_business_days(friday, 1, "US") == date(2026, 11, 23)  # Monday
    assert add_business_days(friday, 2, "US") == date(2026, 11, 24)
    saturday = date(2026, 11, 21)
    assert add_business_days(saturday, 1, "US") == date(2026, 11, 23)


def test_thanksgiving_is_skipped_in_the_us_but_not_in_germany() -> None:
    wednesday = date(2026, 11, 25)  # Thanksgiving is Thursday 2026-11-26
    assert add_business_days(wednesday, 2, "US") == date(2026, 11, 30)
    assert add_business_days(wednesday, 2, "DE") == date(2026, 11, 27)
    assert holidays_between(wednesday, date(2026, 11, 30), "US") == [
        (date(2026, 11, 26), "Thanksgiving Day")
    ]


def test_christmas_is_skipped() -> None:
    wednesday = date(2026, 12, 23)
    assert add_business_days(wednesday, 2, "US") == date(2026, 12, 28)  # Thu 24, Fri 25 holiday
    assert add_business_days(date(2026, 12, 24), 1, "US") == date(2026, 12, 28)
    assert not is_business_day(date(2026, 12, 25), "US")
    assert is_business_day(date(2026, 12, 24), "US")


def test_a_subdivision_has_its_own_holidays() -> None:
    tuesday = date(2027, 1, 5)  # Epiphany (Wed 2027-01-06) is a holiday in Bavaria only
    assert add_business_days(tuesday, 1, "DE") == date(2027, 1, 6)
    assert add_business_days(tuesday, 1, "DE-BY") == date(2027, 1, 7)


def test_zero_days_is_the_start_and_the_start_is_never_counted() -> None:
    monday = date(2026, 11, 23)
    assert add_business_days(monday, 0, "US") == monday
    assert add_business_days(monday, 1, "US") == date(2026, 11, 24)


def test_bad_input_is_refused() -> None:
    with pytest.raises(UnknownCountry, match="'XX'"):
        add_business_days(date(2026, 11, 23), 2, "XX")
    with pytest.raises(ValueError, match="between 0 and"):
        add_business_days(date(2026, 11, 23), -1, "US")
