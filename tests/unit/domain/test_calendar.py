"""NYSE calendar: sessions, holidays, early closes and daylight saving."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from trademk.domain.calendar import CalendarRangeError, NyseCalendar
from trademk.engine.clock import datetime_to_ns

NEW_YORK = ZoneInfo("America/New_York")


def et(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    return datetime_to_ns(datetime(year, month, day, hour, minute, tzinfo=NEW_YORK))


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    return datetime_to_ns(datetime(year, month, day, hour, minute, tzinfo=UTC))


@pytest.fixture(scope="module")
def calendar() -> NyseCalendar:
    return NyseCalendar(today=date(2025, 6, 1))


def test_open_during_a_normal_session_minute(calendar: NyseCalendar) -> None:
    assert calendar.is_open(et(2025, 6, 3, 11, 15))
    assert calendar.is_open(et(2025, 6, 3, 9, 30))


def test_closed_before_the_open(calendar: NyseCalendar) -> None:
    assert not calendar.is_open(et(2025, 6, 3, 9, 29))
    assert not calendar.is_open(et(2025, 6, 3, 4, 0))


def test_closed_at_and_after_the_close(calendar: NyseCalendar) -> None:
    assert calendar.is_open(et(2025, 6, 3, 15, 59))
    assert not calendar.is_open(et(2025, 6, 3, 16, 0))
    assert not calendar.is_open(et(2025, 6, 3, 19, 30))


def test_closed_on_a_weekend(calendar: NyseCalendar) -> None:
    assert not calendar.is_open(et(2025, 6, 7, 12, 0))  # Saturday
    assert not calendar.is_open(et(2025, 6, 8, 12, 0))  # Sunday
    assert calendar.session_bounds(date(2025, 6, 7)) is None


def test_closed_on_holidays(calendar: NyseCalendar) -> None:
    assert not calendar.is_open(et(2025, 12, 25, 12, 0))  # Christmas
    assert not calendar.is_open(et(2026, 7, 3, 12, 0))  # Independence Day observed
    assert not calendar.is_session(date(2026, 7, 3))
    assert calendar.is_session(date(2026, 7, 2))


def test_early_close_the_day_after_thanksgiving(calendar: NyseCalendar) -> None:
    assert calendar.is_open(et(2025, 11, 28, 12, 59))
    assert not calendar.is_open(et(2025, 11, 28, 13, 30))
    assert calendar.session_bounds(date(2025, 11, 28)) == (
        et(2025, 11, 28, 9, 30),
        et(2025, 11, 28, 13, 0),
    )


def test_open_hour_in_utc_moves_with_daylight_saving(calendar: NyseCalendar) -> None:
    # EST (winter): 9:30 ET == 14:30 UTC. EDT (summer): 9:30 ET == 13:30 UTC.
    assert not calendar.is_open(utc(2025, 3, 7, 13, 45))  # Friday before DST starts
    assert calendar.is_open(utc(2025, 3, 7, 14, 45))
    assert calendar.is_open(utc(2025, 3, 10, 13, 45))  # Monday after DST starts
    assert calendar.session_bounds(date(2025, 3, 10)) == (
        utc(2025, 3, 10, 13, 30),
        utc(2025, 3, 10, 20),
    )
    assert calendar.is_open(utc(2025, 10, 31, 13, 45))  # Friday before DST ends
    assert not calendar.is_open(utc(2025, 11, 3, 13, 45))  # Monday after DST ends
    assert calendar.session_bounds(date(2025, 11, 3)) == (
        utc(2025, 11, 3, 14, 30),
        utc(2025, 11, 3, 21),
    )


def test_next_open_and_next_close(calendar: NyseCalendar) -> None:
    friday_evening = et(2025, 6, 6, 18, 0)
    assert calendar.next_open(friday_evening) == et(2025, 6, 9, 9, 30)
    assert calendar.next_close(friday_evening) == et(2025, 6, 9, 16, 0)
    during = et(2025, 6, 9, 10, 0)
    assert calendar.next_close(during) == et(2025, 6, 9, 16, 0)
    assert calendar.next_open(during) == et(2025, 6, 10, 9, 30)
    # Over Christmas the next open skips the holiday.
    assert calendar.next_open(et(2025, 12, 24, 20, 0)) == et(2025, 12, 26, 9, 30)


def test_repeated_queries_agree_with_fresh_lookups(calendar: NyseCalendar) -> None:
    fresh = NyseCalendar(today=date(2025, 6, 1))
    start = et(2025, 11, 26, 0, 0)
    step = 7 * 60 * 1_000_000_000  # seven minutes
    stamps = [start + i * step for i in range(2000)]
    cached = [calendar.is_open(ts) for ts in stamps]
    uncached = []
    for ts in reversed(stamps):  # walking backwards defeats the interval cache
        uncached.append(fresh.is_open(ts))
    assert cached == list(reversed(uncached))
    assert any(cached) and not all(cached)


def test_range_covers_2000_to_two_years_ahead_and_rejects_outside() -> None:
    calendar = NyseCalendar(today=date(2025, 6, 1))
    assert calendar.is_open(et(2000, 3, 1, 12, 0))
    assert calendar.is_open(et(2027, 12, 1, 12, 0))
    with pytest.raises(CalendarRangeError):
        calendar.is_open(et(2028, 1, 5, 12, 0))
    with pytest.raises(CalendarRangeError):
        calendar.session_bounds(date(1999, 12, 31))
