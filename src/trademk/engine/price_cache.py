"""Latest prices per symbol, updated in-process on every tick (DESIGN.md §1 hot path).

``update`` mutates one small slotted record per symbol in place: no I/O and no
allocation once a symbol has been seen. Readers get frozen snapshots, or the
prices as ``Decimal`` (``decimals``); both are built at most once per tick and
shared by every reader until the next update of the symbol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import structlog

from trademk.domain.market import Tick, TickKind

TickListener = Callable[[Tick], None]

_log = structlog.get_logger(__name__)
_LISTENER_ERROR_LOG_EVERY = 1000


@dataclass(frozen=True, slots=True)
class PriceSnapshot:
    """Last trade and last quote known for a symbol (floats; timestamps in UTC ns)."""

    symbol: str
    exchange: str
    last_price: float | None
    last_size: float | None
    last_trade_ts: int | None
    bid: float | None
    bid_size: float | None
    ask: float | None
    ask_size: float | None
    quote_ts: int | None

    @property
    def mid(self) -> float | None:
        """Bid/ask midpoint when both sides are known."""
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2.0

    @property
    def price(self) -> float | None:
        """The last trade price, else the quote midpoint."""
        return self.last_price if self.last_price is not None else self.mid


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(value))


def _size(value: float | None) -> Decimal | None:
    return None if value is None or not value > 0 else Decimal(repr(value))


class PriceDecimals:
    """A symbol's latest prices as ``Decimal`` (read-only; shared until the next tick).

    Each float becomes the shortest ``Decimal`` that round-trips to it
    (``Decimal(repr(x))``), None when unknown. ``price`` is the snapshot's
    ``price`` (the last trade, else the quote midpoint). Sizes are None when
    missing or not positive (not reported).
    """

    __slots__ = ("ask", "ask_size", "bid", "bid_size", "last_price", "price")

    def __init__(self, state: _SymbolState) -> None:
        self.bid = _decimal(state.bid)
        self.bid_size = _size(state.bid_size)
        self.ask = _decimal(state.ask)
        self.ask_size = _size(state.ask_size)
        self.last_price = _decimal(state.last_price)
        if state.last_price is not None:
            self.price = self.last_price
        elif state.bid is None or state.ask is None:
            self.price = None
        else:
            self.price = Decimal(repr((state.bid + state.ask) / 2.0))


class _SymbolState:
    __slots__ = (
        "ask",
        "ask_size",
        "bid",
        "bid_size",
        "decimals",
        "exchange",
        "last_price",
        "last_size",
        "last_trade_ts",
        "quote_mid",
        "quote_ts",
        "snapshot",
    )

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self.last_price: float | None = None
        self.last_size: float | None = None
        self.last_trade_ts: int | None = None
        self.bid: float | None = None
        self.bid_size: float | None = None
        self.ask: float | None = None
        self.ask_size: float | None = None
        self.quote_mid: float | None = None
        self.quote_ts: int | None = None
        # Built on first read after each update; None until then.
        self.snapshot: PriceSnapshot | None = None
        self.decimals: PriceDecimals | None = None


class LatestPriceCache:
    """Per-symbol last trade and last top-of-book quote, plus tick listeners.

    Symbols are keyed by name only; the snapshot records the exchange of the
    most recent tick. Listeners run synchronously after each update; one that
    raises is logged (first failure, then every 1000th) and never stops the
    others or the caller.
    """

    def __init__(self) -> None:
        self._states: dict[str, _SymbolState] = {}
        self._listeners: list[TickListener] = []
        self.listener_errors = 0

    def update(self, tick: Tick) -> None:
        """Record ``tick`` and notify listeners."""
        state = self._states.get(tick.symbol)
        if state is None:
            state = self._states[tick.symbol] = _SymbolState(tick.exchange)
        else:
            state.exchange = tick.exchange
        if tick.kind is TickKind.TRADE:
            state.last_price = tick.price
            state.last_size = tick.qty
            state.last_trade_ts = tick.ts
        else:
            state.bid = tick.bid
            state.bid_size = tick.bid_size
            state.ask = tick.ask
            state.ask_size = tick.ask_size
            state.quote_mid = tick.price
            state.quote_ts = tick.ts
        state.snapshot = None
        state.decimals = None
        if self._listeners:
            self._notify(tick)

    def _notify(self, tick: Tick) -> None:
        for listener in self._listeners:
            try:
                listener(tick)
            except Exception:
                self.listener_errors += 1
                if self.listener_errors % _LISTENER_ERROR_LOG_EVERY == 1:
                    _log.exception(
                        "price_cache_listener_failed",
                        listener=repr(listener),
                        errors=self.listener_errors,
                    )

    def get(self, symbol: str) -> PriceSnapshot | None:
        """A frozen snapshot for ``symbol``, or None if it has never ticked."""
        state = self._states.get(symbol)
        if state is None:
            return None
        snapshot = state.snapshot
        if snapshot is None:
            snapshot = state.snapshot = self._snapshot(symbol, state)
        return snapshot

    def decimals(self, symbol: str) -> PriceDecimals | None:
        """The latest prices of ``symbol`` as ``Decimal``, or None if it has never ticked."""
        state = self._states.get(symbol)
        if state is None:
            return None
        decimals = state.decimals
        if decimals is None:
            decimals = state.decimals = PriceDecimals(state)
        return decimals

    @staticmethod
    def _snapshot(symbol: str, state: _SymbolState) -> PriceSnapshot:
        return PriceSnapshot(
            symbol=symbol,
            exchange=state.exchange,
            last_price=state.last_price,
            last_size=state.last_size,
            last_trade_ts=state.last_trade_ts,
            bid=state.bid,
            bid_size=state.bid_size,
            ask=state.ask,
            ask_size=state.ask_size,
            quote_ts=state.quote_ts,
        )

    def last_price(self, symbol: str) -> float | None:
        """Last trade price, else the last quote's midpoint, else None."""
        state = self._states.get(symbol)
        if state is None:
            return None
        if state.last_price is not None:
            return state.last_price
        return state.quote_mid

    def symbols(self) -> list[str]:
        """Symbols seen so far, sorted."""
        return sorted(self._states)

    def add_listener(self, callback: TickListener) -> None:
        """Call ``callback(tick)`` after every update."""
        self._listeners.append(callback)

    def remove_listener(self, callback: TickListener) -> None:
        """Stop calling ``callback``; raises ValueError if it was never added."""
        self._listeners.remove(callback)

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._states
