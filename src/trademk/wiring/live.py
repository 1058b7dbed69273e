"""Live streams for WebSocket clients: market data, portfolio and alerts on the bus.

Topics published here (each is also a WebSocket channel of the same name):

- ``ticks:SYMBOL``: every tick of SYMBOL, published only while someone
  subscribes (ticks arrive by the thousand per second);
- ``bars:SYMBOL:1m``: each 1-minute bar when it closes, built from trades;
- ``portfolio``: cash, equity and P&L, at most every ``portfolio_interval``
  seconds and only when they changed;
- ``alerts``: price alerts that fired (from :class:`AlertEngine`);
- ``alerts.changed``: ``{"alert_id"}`` when an alert was created, changed or
  deleted through one API replica, so every replica reloads it.

``orders``, ``fills`` and ``positions`` come from the OMS; ``strategies`` from
the strategy runtime (``{"kind": ..., "strategy_id": ..., ...}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import msgspec
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trademk.domain.market import NANOS_PER_SECOND, Bar, Tick
from trademk.domain.portfolio import Portfolio
from trademk.engine.alert_engine import AlertEngine
from trademk.engine.bar_aggregator import BarAggregator
from trademk.engine.bus import InProcessBus, MessageBus, Subscription, watch_topics
from trademk.engine.clock import Clock, ns_to_datetime
from trademk.engine.price_cache import LatestPriceCache
from trademk.engine.webhooks import WebhookSender
from trademk.storage.alert_models import AlertRecord
from trademk.storage.alert_repository import AlertRepository, alert_of

log = structlog.get_logger(__name__)

BAR_INTERVAL = "1m"
PORTFOLIO_TOPIC = "portfolio"
ALERT_CHANGES_TOPIC = "alerts.changed"


@dataclass(frozen=True, slots=True)
class WebSocketOptions:
    """Limits of the WebSocket API (tests shorten them)."""

    heartbeat_seconds: float = 15.0
    queue_capacity: int = 1000
    max_channels: int = 200
    max_message_bytes: int = 65_536

    def __post_init__(self) -> None:
        if self.heartbeat_seconds <= 0 or self.queue_capacity <= 0:
            raise ValueError("heartbeat and queue capacity must be positive")
        if self.max_channels <= 0 or self.max_message_bytes <= 0:
            raise ValueError("channel and message limits must be positive")


def tick_payload(tick: Tick) -> dict[str, Any]:
    """A tick as JSON-ready data: the Tick fields plus ``time`` (ISO 8601 UTC)."""
    data: dict[str, Any] = msgspec.to_builtins(tick)
    data["time"] = ns_to_datetime(tick.ts).isoformat()
    return data


def bar_payload(bar: Bar) -> dict[str, Any]:
    """A bar as JSON-ready data: the Bar fields plus ``time`` (its open, ISO 8601 UTC)."""
    data: dict[str, Any] = msgspec.to_builtins(bar)
    data["time"] = ns_to_datetime(bar.ts).isoformat()
    return data


class MarketPublisher:
    """Price-cache listener: publishes ticks and closed 1-minute bars on the bus."""

    def __init__(self, bus: MessageBus, aggregator: BarAggregator) -> None:
        self.bus = bus
        self.aggregator = aggregator
        self._tick_topics: dict[str, str] = {}
        self.bars_published = 0

    def on_tick(self, tick: Tick) -> None:
        topic = self._tick_topics.get(tick.symbol)
        if topic is None:
            topic = self._tick_topics[tick.symbol] = f"ticks:{tick.symbol}"
        if self.bus.has_subscribers(topic):
            self.bus.publish(topic, tick_payload(tick))
        bar = self.aggregator.add(tick)
        if bar is not None:
            self.publish_bar(bar)

    def close_due(self, now_ns: int) -> None:
        """Publish the bars of symbols that went quiet once their minute is over."""
        for bar in self.aggregator.close_due(now_ns):
            self.publish_bar(bar)

    def publish_bar(self, bar: Bar) -> None:
        topic = f"bars:{bar.symbol}:{bar.interval}"
        if self.bus.has_subscribers(topic):
            self.bus.publish(topic, bar_payload(bar))
            self.bars_published += 1


def _money(value: Decimal) -> str:
    return str(value)


class PortfolioPublisher:
    """Publishes a portfolio snapshot on ``portfolio`` when it changed."""

    def __init__(self, bus: MessageBus, clock: Clock, book: Callable[[], Portfolio | None]) -> None:
        self.bus = bus
        self.clock = clock
        self.book = book
        self._last: dict[str, Any] | None = None

    def snapshot(self) -> dict[str, Any] | None:
        """Cash, equity, exposure and P&L marked at the latest prices (None: no trading)."""
        book = self.book()
        if book is None:
            return None
        return {
            "currency": book.base_currency,
            "starting_cash": _money(book.starting_cash),
            "cash": _money(book.cash),
            "equity": _money(book.equity),
            "gross_exposure": _money(book.gross_exposure),
            "net_exposure": _money(book.net_exposure),
            "realized_pnl": _money(book.realized_pnl),
            "unrealized_pnl": _money(book.unrealized_pnl),
            "fees": _money(book.fees),
            "total_pnl": _money(book.total_pnl),
            "open_positions": sum(1 for _ in book.open_positions()),
        }

    def stamped(self, snapshot: Mapping[str, Any]) -> dict[str, Any]:
        now = self.clock.now_ns()
        return {**snapshot, "ts": now, "time": ns_to_datetime(now).isoformat()}

    def publish_if_changed(self) -> bool:
        if not self.bus.has_subscribers(PORTFOLIO_TOPIC):
            self._last = None
            return False
        snapshot = self.snapshot()
        if snapshot is None or snapshot == self._last:
            return False
        self._last = snapshot
        self.bus.publish(PORTFOLIO_TOPIC, self.stamped(snapshot))
        return True


class _Watcher(Protocol):
    def __call__(self, *topics: str) -> Coroutine[Any, Any, None]: ...


class ClientTopics:
    """Adds and removes topics of one client's subscription on the process's bus.

    Works on the in-process bus, on the Redis bus (its local fan-out, and the
    topic is relayed from other processes), and on wrappers that keep the real
    bus in ``inner``.
    """

    def __init__(self, bus: MessageBus) -> None:
        found: object = bus
        watch: _Watcher | None = None
        for _ in range(4):
            if isinstance(found, InProcessBus):
                break
            watch = watch or getattr(found, "watch", None)
            found = getattr(found, "local", None) or getattr(found, "inner", None)
        if not isinstance(found, InProcessBus):
            raise TypeError(f"{type(bus).__name__} has no local fan-out for WebSocket clients")
        self.local: InProcessBus = found
        self._watch = watch

    def open(self, capacity: int) -> Subscription:
        return self.local.subscribe(capacity=capacity)

    async def add(self, subscription: Subscription, topics: list[str]) -> None:
        self.local.add_topics(subscription, *topics)
        if self._watch is not None:
            await self._watch(*topics)

    def remove(self, subscription: Subscription, topics: list[str]) -> None:
        self.local.remove_topics(subscription, *topics)


class LiveServices:
    """Market and portfolio publishers, the alert engine, and the WebSocket registry."""

    def __init__(
        self,
        clock: Clock,
        bus: MessageBus,
        prices: LatestPriceCache,
        sessions: async_sessionmaker[AsyncSession],
        book: Callable[[], Portfolio | None],
        *,
        options: WebSocketOptions | None = None,
        portfolio_interval: float = 1.0,
        bar_grace: float = 2.0,
        webhooks: WebhookSender | None = None,
        alerts_leader: Callable[[], bool] = lambda: True,
    ) -> None:
        self.clock = clock
        self.bus = bus
        self.prices = prices
        self.options = options or WebSocketOptions()
        self.portfolio_interval = portfolio_interval
        self.aggregator = BarAggregator(BAR_INTERVAL, grace_ns=int(bar_grace * NANOS_PER_SECOND))
        self.market = MarketPublisher(bus, self.aggregator)
        self.portfolio = PortfolioPublisher(bus, clock, book)
        self.alert_repository = AlertRepository(sessions)
        self.alerts = AlertEngine(
            clock,
            bus,
            self.alert_repository,
            webhooks or WebhookSender(),
            leader=alerts_leader,
        )
        self.connections: set[Any] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._alert_changes: Subscription | None = None
        # The stored version (updated_at) of each alert as last applied here: a change
        # notice read back no newer than that is one this replica has already applied.
        self._alert_versions: dict[str, datetime] = {}

    async def start(self) -> None:
        """Load the active alerts, listen to ticks, start the periodic publishers."""
        if self._tasks:
            return
        # Follow changes made through other API replicas from before the alerts are read.
        self._alert_changes = self.bus.subscribe(ALERT_CHANGES_TOPIC, capacity=10_000)
        await watch_topics(self.bus, ALERT_CHANGES_TOPIC)
        records = await self.alert_repository.find(active=True)
        self._alert_versions = {str(record.id): record.updated_at for record in records}
        self.alerts.load(alert_of(record) for record in records)
        await self.alerts.start()
        self.prices.add_listener(self.market.on_tick)
        self.prices.add_listener(self.alerts.on_tick)
        self._tasks = [
            asyncio.create_task(self._every_second(), name="live-bars"),
            asyncio.create_task(self._portfolio_forever(), name="live-portfolio"),
            asyncio.create_task(
                self._follow_alert_changes(self._alert_changes), name="live-alert-changes"
            ),
        ]
        log.info("live streams started", alerts=len(self.alerts.active()))

    async def stop(self) -> None:
        for listener in (self.market.on_tick, self.alerts.on_tick):
            with contextlib.suppress(ValueError):
                self.prices.remove_listener(listener)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._alert_changes is not None:
            self._alert_changes.close()
            self._alert_changes = None
        await self.alerts.stop()

    def alert_changed(self, record: AlertRecord | None, alert_id: str) -> None:
        """An alert was created, changed or deleted (``record`` None) through this API:
        apply it here at once and tell the other API replicas."""
        self._apply_alert(record, alert_id)
        self.bus.publish(ALERT_CHANGES_TOPIC, {"alert_id": alert_id})

    async def apply_alert_change(self, alert_id: str) -> None:
        """Apply a change notice (made anywhere, our own too) from the database.

        A stored version no newer than the one applied here is skipped: a once
        alert that fired after its creation was applied, but before the firing was
        stored, reads back active, and applying it again would fire it twice.
        """
        record = await self.alert_repository.get(uuid.UUID(alert_id))
        applied = self._alert_versions.get(alert_id)
        if record is not None and applied is not None and record.updated_at <= applied:
            return
        self._apply_alert(record, alert_id)

    def _apply_alert(self, record: AlertRecord | None, alert_id: str) -> None:
        if record is None:
            self._alert_versions.pop(alert_id, None)
            self.alerts.remove(alert_id)
            return
        self._alert_versions[alert_id] = record.updated_at
        if record.active:
            self.alerts.upsert(alert_of(record))
        else:
            self.alerts.remove(alert_id)

    async def _follow_alert_changes(self, subscription: Subscription) -> None:
        async for _topic, change in subscription:
            alert_id = str(change.get("alert_id", ""))
            try:
                await self.apply_alert_change(alert_id)
            except ValueError:
                log.warning("malformed alert change", change=dict(change))
            except Exception as err:  # the database may be away for a while
                log.warning("alert change not applied", alert_id=alert_id, error=str(err))

    async def _every_second(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.market.close_due(self.clock.now_ns())

    async def _portfolio_forever(self) -> None:
        while True:
            await asyncio.sleep(self.portfolio_interval)
            try:
                self.portfolio.publish_if_changed()
            except Exception:
                log.exception("portfolio snapshot failed")

    def status(self) -> dict[str, Any]:
        return {
            "websocket_clients": len(self.connections),
            "bars_published": self.market.bars_published,
            "alerts": self.alerts.status(),
        }
