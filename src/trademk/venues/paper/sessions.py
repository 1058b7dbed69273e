"""When a DAY order expires at the paper venue.

The rule, per asset class of the symbol:

- crypto trades around the clock, so its "day" is the UTC calendar day: a DAY
  order expires at the first 00:00 UTC after it was placed;
- stocks follow NYSE regular sessions: a DAY order expires at the first
  session close after it was placed (today's close while the market is open,
  else the next session's close, early closes and holidays included), the way
  a broker queues a DAY order placed outside the session for the next one.

Any other rule can be passed to ``PaperVenue`` as a ``DayEnd`` callable.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from trademk.domain.calendar import CalendarRangeError, NyseCalendar
from trademk.domain.instruments import asset_class_of
from trademk.domain.market import NANOS_PER_SECOND, AssetClass

DayEnd = Callable[[str, int], int]
"""``day_end(symbol, placed_ns) -> expiry_ns``: when a DAY order placed at ``placed_ns``
expires; must be later than ``placed_ns``."""

_NANOS_PER_DAY: Final = 86_400 * NANOS_PER_SECOND
_CALENDAR_LOOKBACK: Final = timedelta(days=7)


def next_utc_midnight(ts_ns: int) -> int:
    """The first 00:00 UTC strictly after ``ts_ns``."""
    return (ts_ns // _NANOS_PER_DAY + 1) * _NANOS_PER_DAY


class SessionDayEnd:
    """The default ``DayEnd``: UTC midnight for crypto, the NYSE close for stocks.

    Without a ``calendar`` one is built the first time a stock DAY order needs
    it (that takes a fraction of a second), around the order's own time, and
    rebuilt if time later runs past its range; nothing here reads the wall clock.
    """

    def __init__(self, calendar: NyseCalendar | None = None) -> None:
        self._calendar = calendar
        self._owns_calendar = calendar is None

    def __call__(self, symbol: str, placed_ns: int) -> int:
        if asset_class_of(symbol) is AssetClass.CRYPTO:
            return next_utc_midnight(placed_ns)
        return self._next_close(placed_ns)

    def _next_close(self, placed_ns: int) -> int:
        if self._calendar is None:
            self._calendar = _calendar_around(placed_ns)
        try:
            return self._calendar.next_close(placed_ns)
        except CalendarRangeError:
            if not self._owns_calendar:
                raise
            self._calendar = _calendar_around(placed_ns)
            return self._calendar.next_close(placed_ns)


def _calendar_around(ts_ns: int) -> NyseCalendar:
    day = datetime.fromtimestamp(ts_ns // NANOS_PER_SECOND, tz=UTC).date()
    return NyseCalendar(day, first_day=day - _CALENDAR_LOOKBACK, years_ahead=1)
