"""Ports: the protocols every adapter implements (DESIGN.md §3).

Each port has one contract test suite under ``tests/contracts`` that every
implementation passes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol, runtime_checkable

from trademk.domain.market import Bar, Tick
from trademk.domain.order_events import OrderEvent
from trademk.domain.orders import Order
from trademk.domain.venue_reports import AccountReport, OrderReport, PositionReport


@runtime_checkable
class MarketDataFeed(Protocol):
    """A live or simulated source of ticks and bars.

    ``stream()`` yields until ``close()``; implementations reconnect forever with
    exponential backoff and jitter, resubscribe, and treat a silent connection as
    dead.
    """

    name: str

    async def subscribe(self, symbols: Sequence[str]) -> None: ...

    def stream(self) -> AsyncIterator[Tick | Bar]: ...

    def status(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...


@runtime_checkable
class TickStore(Protocol):
    """Time-series storage for ticks; bars are aggregated inside the store."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def write(self, batch: Sequence[Tick], batch_id: str | None = None) -> int:
        """Write a batch atomically; returns the number of ticks written.

        With a ``batch_id`` the write is idempotent: the id is recorded in the
        same transaction, and a batch whose id is already recorded writes
        nothing and returns 0. The ingest pipeline relies on this to retry a
        batch whose commit outcome it never learned.
        """
        ...

    async def ticks(
        self,
        symbol: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = 1000,
        exchange: str | None = None,
    ) -> list[Tick]:
        """Ticks with ``start <= ts < end`` (ns), newest first, at most ``limit``."""
        ...

    async def latest(self, symbol: str, exchange: str | None = None) -> Tick | None: ...

    async def bars(
        self,
        symbol: str,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = 1000,
        exchange: str | None = None,
    ) -> list[Bar]:
        """Trade bars aligned to UTC, oldest first, the newest ``limit`` of the range."""
        ...

    async def health(self) -> dict[str, Any]:
        """Raises when the store is unreachable; otherwise returns details."""
        ...


@runtime_checkable
class ExecutionClient(Protocol):
    """A venue that executes orders: the paper venue or a broker adapter.

    ``submit`` is idempotent by ``client_order_id``: submitting an id the venue
    already knows never creates a second order. Everything the venue does to an
    order after submission (accepted, fills, cancels, expiry, rejection) comes
    out of ``events()`` as domain order events, in the order it happened.
    Errors follow the tree in ``domain/errors.py``: ``RejectedError`` (the venue
    said no; do not retry), ``TransientError``/``RateLimitedError`` (retry).
    """

    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def submit(self, order: Order) -> None: ...

    async def cancel(self, client_order_id: str) -> None: ...

    def events(self) -> AsyncIterator[OrderEvent]: ...

    async def order_reports(self, open_only: bool = True) -> list[OrderReport]: ...

    async def order_report(self, client_order_id: str) -> OrderReport | None: ...

    async def position_reports(self) -> list[PositionReport]: ...

    async def account(self) -> AccountReport: ...
