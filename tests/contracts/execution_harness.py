"""What the ExecutionClient contract suite needs from a venue, and the list of venues it runs on.

Each venue provides a harness module exposing a factory: a zero-argument
callable returning an async context manager that yields a started
:class:`VenueHarness` (a fresh, flat account with no orders) and cleans up on
exit. Register it in ``HARNESSES`` with one line, ``"name": "module:factory"``;
modules are imported lazily, so a harness module may import this one freely.

Rules every implementation follows (asserted by ``test_execution_contract.py``):

- ``submit`` returns once the venue has the order; its outcome arrives on
  ``events()``: ``OrderAccepted`` first, then fills/cancel/expiry. A venue
  refusal (unknown symbol, no price, no buying power) is an ``OrderRejected``
  event with a reason, not an exception, and no ``OrderAccepted`` precedes it.
- Submitting a known ``client_order_id`` again never creates a second order.
- ``cancel`` of an id the venue does not know raises ``RejectedError``.
- Reports (``order_reports``, ``position_reports``, ``account``) agree with
  what the events said.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, suppress
from decimal import Decimal
from typing import Protocol

from trademk.domain.order_events import OrderEvent
from trademk.domain.ports import ExecutionClient

HARNESSES: dict[str, str] = {
    "paper": "tests.contracts.harness_paper:paper_harness",
    "alpaca": "tests.contracts.harness_alpaca:alpaca_harness",
}
"""Contract-suite venues: name (the pytest id) -> ``"module:factory"``."""


class VenueHarness(Protocol):
    """A started venue plus the knobs the contract suite turns."""

    venue: ExecutionClient
    crypto_symbol: str
    """A crypto symbol the venue trades (e.g. ``BTC/USD`` or ``BTCUSDT``)."""
    stock_symbol: str
    """A stock symbol the venue trades (e.g. ``AAPL``)."""
    unsupported_symbol: str
    """A symbol the venue refuses orders for."""
    supports_partial_fills: bool
    """Whether an order larger than the quoted size fills in parts."""
    event_timeout: float
    """Seconds to wait for an expected event (remote fakes need more than in-process)."""

    async def set_market(
        self,
        symbol: str,
        *,
        bid: Decimal,
        ask: Decimal,
        last: Decimal | None = None,
        bid_size: Decimal = Decimal(1000),
        ask_size: Decimal = Decimal(1000),
    ) -> None:
        """Make the venue's market for ``symbol`` this quote (and this last trade if given).

        Returns once the venue has seen it, so resting orders it crosses are
        being matched.
        """
        ...


HarnessFactory = Callable[[], AbstractAsyncContextManager[VenueHarness]]


def load_harness(name: str) -> HarnessFactory:
    """The factory registered as ``name`` in ``HARNESSES``."""
    module_name, _, attribute = HARNESSES[name].partition(":")
    factory: HarnessFactory = getattr(importlib.import_module(module_name), attribute)
    return factory


class EventLog:
    """Collects a venue's ``events()`` in the background so tests can wait for them."""

    def __init__(self, venue: ExecutionClient, timeout: float) -> None:
        self.events: list[OrderEvent] = []
        self._timeout = timeout
        self._changed = asyncio.Condition()
        self._ended = False
        self._error: BaseException | None = None
        self._task = asyncio.create_task(self._collect(venue), name="contract-event-log")

    async def _collect(self, venue: ExecutionClient) -> None:
        try:
            async for event in venue.events():
                async with self._changed:
                    self.events.append(event)
                    self._changed.notify_all()
        except Exception as err:
            self._error = err
            raise
        finally:
            self._ended = True
            async with self._changed:
                self._changed.notify_all()

    def of(self, client_order_id: str) -> list[OrderEvent]:
        """Events received so far for one order, in order."""
        return [e for e in self.events if e.client_order_id == client_order_id]

    async def wait_for(
        self, predicate: Callable[[list[OrderEvent]], bool], what: str
    ) -> list[OrderEvent]:
        """Wait until ``predicate(events)`` holds; fails the test with ``what`` on timeout."""
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self._ended or predicate(self.events)),
                    self._timeout,
                )
            except TimeoutError:
                raise AssertionError(
                    f"timed out after {self._timeout}s waiting for {what}; got {self.events!r}"
                ) from None
        if not predicate(self.events):
            if self._error is not None:
                raise AssertionError(
                    f"the event stream failed while waiting for {what}"
                ) from self._error
            raise AssertionError(f"the event stream ended while waiting for {what}")
        return list(self.events)

    async def wait_for_order(
        self, client_order_id: str, predicate: Callable[[list[OrderEvent]], bool], what: str
    ) -> list[OrderEvent]:
        """Wait until ``predicate`` holds over one order's events; returns them."""
        await self.wait_for(lambda _: predicate(self.of(client_order_id)), what)
        return self.of(client_order_id)

    async def close(self) -> None:
        """Stop collecting."""
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task
