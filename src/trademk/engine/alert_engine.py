"""Evaluates price alerts on every trade; records, publishes and delivers what fires.

``on_tick`` is a price-cache listener: it runs synchronously on the hot path,
so it only looks at the alerts of the tick's symbol (an index kept by symbol,
replaced copy-on-write when alerts change) and never does I/O. A firing is
published at once on the bus topic ``alerts`` and queued (bounded) for a
background recorder, which writes it to the history and then hands webhook
deliveries to a small pool of senders; each delivery's outcome (attempts,
last error) is recorded too.

With several API replicas every one evaluates every alert, but only the
``leader`` (the holder of the alerts lease, messaging/redis_lease.py)
publishes, records and delivers a firing.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import structlog

from trademk.domain.alerts import Alert, AlertState, AlertTriggered
from trademk.domain.market import Tick, TickKind
from trademk.engine.clock import Clock, ns_to_datetime
from trademk.engine.lifecycle import ComponentState, Lifecycle
from trademk.engine.webhooks import DeliveryOutcome, DeliveryStatus, WebhookSender

log = structlog.get_logger(__name__)

ALERTS_TOPIC: Final = "alerts"
_RECORD_ATTEMPTS: Final = 3


class AlertPublisher(Protocol):
    def publish(self, topic: str, payload: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One firing of one alert, as recorded in the history."""

    id: str
    alert: Alert
    trigger: AlertTriggered
    delivery: DeliveryStatus

    def payload(self) -> dict[str, Any]:
        """The JSON-ready form published on the bus and POSTed to webhooks."""
        trigger = self.trigger
        rule = self.alert.rule
        return {
            "event_id": self.id,
            "alert_id": self.alert.id,
            "name": self.alert.name,
            "symbol": trigger.symbol,
            "condition": str(trigger.condition),
            "mode": str(rule.mode),
            "price": trigger.price,
            "reference_price": trigger.reference_price,
            "change_pct": trigger.change_pct,
            "message": trigger.message,
            "ts": trigger.ts_ns,
            "time": ns_to_datetime(trigger.ts_ns).isoformat(),
        }


class AlertJournal(Protocol):
    """Where firings and delivery outcomes are kept (storage/alert_repository.py)."""

    async def record_trigger(self, event: AlertEvent) -> None: ...

    async def record_delivery(
        self, event_id: str, outcome: DeliveryOutcome, delivered_ns: int | None
    ) -> None: ...


@dataclass(slots=True)
class AlertCounters:
    fired: int = 0
    fired_elsewhere: int = 0
    recorded: int = 0
    record_errors: int = 0
    dropped: int = 0
    delivered: int = 0
    delivery_failed: int = 0


class AlertEngine:
    """Holds the active alerts by symbol and evaluates them on every tick."""

    def __init__(
        self,
        clock: Clock,
        bus: AlertPublisher,
        journal: AlertJournal,
        webhooks: WebhookSender | None = None,
        *,
        queue_capacity: int = 10_000,
        delivery_workers: int = 4,
        record_retry_delay: float = 0.5,
        leader: Callable[[], bool] = lambda: True,
    ) -> None:
        if queue_capacity <= 0 or delivery_workers <= 0:
            raise ValueError("queue capacity and delivery workers must be positive")
        self.clock = clock
        self.bus = bus
        self.journal = journal
        self.webhooks = webhooks
        self.delivery_workers = delivery_workers
        self.record_retry_delay = record_retry_delay
        self.leader = leader
        self.counters = AlertCounters()
        self.lifecycle = Lifecycle("alerts")
        self._states: dict[str, AlertState] = {}
        self._by_symbol: dict[str, tuple[AlertState, ...]] = {}
        self._records: asyncio.Queue[AlertEvent] = asyncio.Queue(queue_capacity)
        self._deliveries: asyncio.Queue[AlertEvent] = asyncio.Queue(queue_capacity)
        self._tasks: list[asyncio.Task[None]] = []

    # -------------------------------------------------------------- the alert set
    def load(self, alerts: Iterable[Alert]) -> None:
        """Replace every alert (at start, from the database)."""
        self._states = {alert.id: AlertState(alert) for alert in alerts}
        self._reindex()

    def upsert(self, alert: Alert) -> None:
        """Add or replace one alert; a changed rule starts its evaluation afresh."""
        known = self._states.get(alert.id)
        if known is not None and known.alert.rule == alert.rule:
            known.alert = alert
        else:
            self._states[alert.id] = AlertState(alert)
        self._reindex()

    def remove(self, alert_id: str) -> bool:
        """Stop evaluating an alert; False if it was not active."""
        if self._states.pop(alert_id, None) is None:
            return False
        self._reindex()
        return True

    def active(self) -> list[Alert]:
        return [state.alert for state in self._states.values()]

    def state(self, alert_id: str) -> AlertState | None:
        return self._states.get(alert_id)

    def _reindex(self) -> None:
        by_symbol: dict[str, list[AlertState]] = {}
        for state in self._states.values():
            by_symbol.setdefault(state.alert.rule.symbol, []).append(state)
        self._by_symbol = {symbol: tuple(states) for symbol, states in by_symbol.items()}

    # ------------------------------------------------------------------- hot path
    def on_tick(self, tick: Tick) -> None:
        """Evaluate the alerts of ``tick.symbol`` at a trade's price (a price-cache listener).

        Quotes are skipped: a bid/ask midpoint alternating with trade prices
        around a level would make crossings flicker.
        """
        states = self._by_symbol.get(tick.symbol)
        if not states or tick.kind is not TickKind.TRADE:
            return
        price, ts = tick.price, tick.ts
        for state in states:
            fired = state.evaluate(price, ts)
            if fired is not None:
                self._fired(state.alert, fired)

    def _fired(self, alert: Alert, trigger: AlertTriggered) -> None:
        if trigger.spent:
            self.remove(alert.id)
        if not self.leader():
            # Another API replica holds the alerts lease and announces this firing; the
            # state above still follows it, so this one can take over at any moment.
            self.counters.fired_elsewhere += 1
            return
        self.counters.fired += 1
        delivery = DeliveryStatus.PENDING if alert.webhook_url else DeliveryStatus.NONE
        event = AlertEvent(uuid.uuid4().hex, alert, trigger, delivery)
        self.bus.publish(ALERTS_TOPIC, event.payload())
        try:
            self._records.put_nowait(event)
        except asyncio.QueueFull:
            self.counters.dropped += 1
            log.warning("alert history queue full; firing not recorded", alert_id=alert.id)

    # --------------------------------------------------------------- background
    async def start(self) -> None:
        if self._tasks:
            return
        self._tasks.append(asyncio.create_task(self._record_forever(), name="alert-recorder"))
        for number in range(self.delivery_workers):
            self._tasks.append(
                asyncio.create_task(self._deliver_forever(), name=f"alert-webhook-{number}")
            )
        self.lifecycle.to(ComponentState.RUNNING)

    async def drain(self) -> None:
        """Wait until every queued firing is recorded and every webhook attempt finished."""
        await self._records.join()
        await self._deliveries.join()

    async def stop(self, grace: float = 5.0) -> None:
        """Finish queued work (up to ``grace`` seconds), then stop the workers."""
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.drain(), grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        left = self._records.qsize() + self._deliveries.qsize()
        if left:
            log.warning("alert engine stopped with unfinished work", unfinished=left)
        if self.webhooks is not None:
            await self.webhooks.aclose()
        if self.lifecycle.state is not ComponentState.STOPPED:
            self.lifecycle.to(ComponentState.STOPPED)

    async def _record_forever(self) -> None:
        while True:
            event = await self._records.get()
            try:
                if await self._record(event) and event.delivery is DeliveryStatus.PENDING:
                    self._queue_delivery(event)
            finally:
                self._records.task_done()

    async def _record(self, event: AlertEvent) -> bool:
        for attempt in range(1, _RECORD_ATTEMPTS + 1):
            try:
                await self.journal.record_trigger(event)
            except Exception as err:
                log.warning("alert firing not recorded", alert_id=event.alert.id, error=str(err))
                if attempt < _RECORD_ATTEMPTS:
                    await asyncio.sleep(self.record_retry_delay * attempt)
            else:
                self.counters.recorded += 1
                return True
        self.counters.record_errors += 1
        return False

    def _queue_delivery(self, event: AlertEvent) -> None:
        try:
            self._deliveries.put_nowait(event)
        except asyncio.QueueFull:
            self.counters.delivery_failed += 1
            log.warning("webhook queue full; delivery skipped", alert_id=event.alert.id)

    async def _deliver_forever(self) -> None:
        while True:
            event = await self._deliveries.get()
            try:
                await self._deliver(event)
            finally:
                self._deliveries.task_done()

    async def _deliver(self, event: AlertEvent) -> None:
        url = event.alert.webhook_url
        if self.webhooks is None or url is None:
            outcome = DeliveryOutcome(DeliveryStatus.FAILED, 0, "webhooks are not enabled")
        else:
            outcome = await self.webhooks.deliver(url, event.payload(), idempotency_key=event.id)
        if outcome.status is DeliveryStatus.DELIVERED:
            self.counters.delivered += 1
        else:
            self.counters.delivery_failed += 1
            log.warning("webhook delivery failed", alert_id=event.alert.id, error=outcome.error)
        delivered_ns = self.clock.now_ns() if outcome.status is DeliveryStatus.DELIVERED else None
        try:
            await self.journal.record_delivery(event.id, outcome, delivered_ns)
        except Exception as err:
            log.warning("webhook outcome not recorded", event_id=event.id, error=str(err))

    def status(self) -> dict[str, Any]:
        return {
            "state": str(self.lifecycle.state),
            "active_alerts": len(self._states),
            "queued": self._records.qsize() + self._deliveries.qsize(),
            "leader": self.leader(),
            "fired": self.counters.fired,
            "fired_elsewhere": self.counters.fired_elsewhere,
            "recorded": self.counters.recorded,
            "record_errors": self.counters.record_errors,
            "dropped": self.counters.dropped,
            "delivered": self.counters.delivered,
            "delivery_failed": self.counters.delivery_failed,
        }
