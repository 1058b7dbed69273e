"""NYSE regular-session calendar (DESIGN.md §3: stocks trade only inside sessions).

Session times, holidays, early closes and daylight saving come from the
``exchange_calendars`` package's bundled XNYS data; this module adds fast
lookups by nanosecond timestamp. Building the underlying calendar takes a
noticeable fraction of a second, so it happens lazily, once per instance.
"""

from __future__ import annotations

import bisect
import warnings
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from trademk.domain.market import NANOS_PER_SECOND

NYSE_CALENDAR_CODE: Final = "XNYS"
DEFAULT_FIRST_YEAR: Final = 2000
_NANOS_PER_DAY: Final = 86_400 * NANOS_PER_SECOND


class CalendarRangeError(ValueError):
    """A timestamp or date falls outside the range the calendar was built for."""


class NyseCalendar:
    """Regular NYSE sessions (9:30-16:00 America/New_York, holidays, early closes).

    ``today`` fixes the covered range (``first_day`` to ``today`` + ``years_ahead``
    years); it is a parameter so the domain never reads the wall clock. Queries
    outside the range raise :class:`CalendarRangeError`.

    ``is_open`` remembers the last interval over which the answer is constant
    (a session, or the gap between two sessions), so a stream of increasing
    timestamps costs one comparison per call.
    """

    def __init__(
        self,
        today: date,
        *,
        first_day: date = date(DEFAULT_FIRST_YEAR, 1, 1),
        years_ahead: int = 2,
    ) -> None:
        if years_ahead < 0:
            raise ValueError("years_ahead must be >= 0")
        last_day = date(today.year + years_ahead, 12, 31)
        if first_day > last_day:
            raise ValueError(f"first_day {first_day} is after the covered end {last_day}")
        self.first_day = first_day
        self.last_day = last_day
        self._opens: list[int] = []
        self._closes: list[int] = []
        self._sessions: list[date] = []
        self._session_index: dict[date, int] = {}
        self._range_start_ns = _day_start_ns(first_day)
        self._range_end_ns = _day_start_ns(last_day) + _NANOS_PER_DAY
        self._built = False
        # [lo, hi) interval over which is_open() returns _span_open.
        self._span_lo = 0
        self._span_hi = 0
        self._span_open = False

    def _build(self) -> None:
        import exchange_calendars

        with warnings.catch_warnings():
            # The library trips pandas deprecation notices inside its own code.
            warnings.simplefilter("ignore", DeprecationWarning)
            calendar: Any = exchange_calendars.get_calendar(
                NYSE_CALENDAR_CODE,
                start=self.first_day.isoformat(),
                end=self.last_day.isoformat(),
            )
        self._opens = [int(v) for v in calendar.opens_nanos.tolist()]
        self._closes = [int(v) for v in calendar.closes_nanos.tolist()]
        self._sessions = [_ns_to_utc_date(int(v)) for v in calendar.sessions_nanos.tolist()]
        self._session_index = {day: i for i, day in enumerate(self._sessions)}
        self._built = True

    def _ensure_built(self) -> None:
        if not self._built:
            self._build()

    def _check_ts(self, ts_ns: int) -> None:
        if not self._range_start_ns <= ts_ns < self._range_end_ns:
            raise CalendarRangeError(
                f"timestamp {ts_ns} is outside the NYSE calendar range "
                f"{self.first_day}..{self.last_day}"
            )

    def is_open(self, ts_ns: int) -> bool:
        """True while a regular session is open at ``ts_ns`` (UTC ns)."""
        if self._span_lo <= ts_ns < self._span_hi:
            return self._span_open
        self._check_ts(ts_ns)
        self._ensure_built()
        idx = bisect.bisect_right(self._opens, ts_ns) - 1
        if idx >= 0 and ts_ns < self._closes[idx]:
            self._span_lo, self._span_hi, self._span_open = (
                self._opens[idx],
                self._closes[idx],
                True,
            )
            return True
        lo = self._closes[idx] if idx >= 0 else self._range_start_ns
        hi = self._opens[idx + 1] if idx + 1 < len(self._opens) else self._range_end_ns
        self._span_lo, self._span_hi, self._span_open = lo, hi, False
        return False

    def is_session(self, day: date) -> bool:
        """True if ``day`` (the exchange's local date) is a trading day."""
        return self.session_bounds(day) is not None

    def session_bounds(self, day: date) -> tuple[int, int] | None:
        """``(open_ns, close_ns)`` of the session on ``day``, or None on a non-trading day."""
        if not self.first_day <= day <= self.last_day:
            raise CalendarRangeError(
                f"date {day} is outside the NYSE calendar range {self.first_day}..{self.last_day}"
            )
        self._ensure_built()
        idx = self._session_index.get(day)
        if idx is None:
            return None
        return self._opens[idx], self._closes[idx]

    def next_open(self, ts_ns: int) -> int:
        """The first session open strictly after ``ts_ns``."""
        self._check_ts(ts_ns)
        self._ensure_built()
        idx = bisect.bisect_right(self._opens, ts_ns)
        if idx >= len(self._opens):
            raise CalendarRangeError(f"no session opens after {ts_ns} within the calendar range")
        return self._opens[idx]

    def next_close(self, ts_ns: int) -> int:
        """The first session close strictly after ``ts_ns`` (today's close while open)."""
        self._check_ts(ts_ns)
        self._ensure_built()
        idx = bisect.bisect_right(self._closes, ts_ns)
        if idx >= len(self._closes):
            raise CalendarRangeError(f"no session closes after {ts_ns} within the calendar range")
        return self._closes[idx]


def _day_start_ns(day: date) -> int:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return int(start.timestamp()) * NANOS_PER_SECOND


def _ns_to_utc_date(ns: int) -> date:
    return datetime(1970, 1, 1, tzinfo=UTC).date() + timedelta(days=ns // _NANOS_PER_DAY)
