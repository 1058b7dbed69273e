"""The alert engine: per-symbol evaluation, bus events, history, webhook retries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.fakes.webhook_receiver import WebhookReceiver
from trademk.domain.alerts import Alert, AlertCondition, AlertMode, AlertRule
from trademk.domain.market import NANOS_PER_SECOND, Tick, TickKind
from trademk.engine.alert_engine import ALERTS_TOPIC, AlertEngine, AlertEvent
from trademk.engine.bus import InProcessBus
from trademk.engine.clock import SimClock
from trademk.engine.webhooks import DeliveryOutcome, DeliveryStatus, WebhookSender

T0 = 1_767_225_600 * NANOS_PER_SECOND


class MemoryJournal:
    """An in-memory AlertJournal; ``fail_times`` makes the first writes fail."""

    def __init__(self, fail_times: int = 0) -> None:
        self.triggers: list[AlertEvent] = []
        self.deliveries: dict[str, tuple[DeliveryOutcome, int | None]] = {}
        self.fail_times = fail_times

    async def record_trigger(self, event: AlertEvent) -> None:
        if self.fail_times:
            self.fail_times -= 1
            raise OSError("database unreachable")
        self.triggers.append(event)

    async def record_delivery(
        self, event_id: str, outcome: DeliveryOutcome, delivered_ns: int | None
    ) -> None:
        assert event_id in {e.id for e in self.triggers}, "delivery recorded before its firing"
        self.deliveries[event_id] = (outcome, delivered_ns)


def tick(symbol: str, price: float, offset_s: float = 0.0) -> Tick:
    ts = T0 + int(offset_s * NANOS_PER_SECOND)
    return Tick(symbol=symbol, exchange="X", kind=TickKind.TRADE, ts=ts, price=price, qty=1.0)


def alert(
    alert_id: str,
    symbol: str = "BTCUSDT",
    level: float = 100.0,
    mode: AlertMode = AlertMode.ONCE,
    webhook_url: str | None = None,
) -> Alert:
    rule = AlertRule(symbol, AlertCondition.ABOVE, level=level, mode=mode)
    return Alert(alert_id, rule, f"alert {alert_id}", webhook_url)


def fast_sender(max_attempts: int = 4) -> WebhookSender:
    return WebhookSender(
        max_attempts=max_attempts, timeout=2.0, backoff_initial=0.01, backoff_max=0.05
    )


@pytest.fixture
async def bus() -> InProcessBus:
    return InProcessBus()


@pytest.fixture
async def engine(bus: InProcessBus) -> AsyncIterator[AlertEngine]:
    engine = AlertEngine(SimClock(T0), bus, MemoryJournal(), fast_sender(), record_retry_delay=0)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


async def test_a_firing_is_published_on_the_alerts_topic_and_recorded(
    engine: AlertEngine, bus: InProcessBus
) -> None:
    subscription = bus.subscribe(ALERTS_TOPIC)
    engine.load([alert("a1")])
    engine.on_tick(tick("BTCUSDT", 99.0))
    engine.on_tick(tick("BTCUSDT", 101.5, 1))
    topic, payload = await asyncio.wait_for(subscription.get(), 1)
    await engine.drain()
    assert topic == "alerts"
    assert payload["alert_id"] == "a1" and payload["price"] == 101.5
    assert payload["ts"] == T0 + NANOS_PER_SECOND
    assert payload["time"] == "2026-01-01T00:00:01+00:00"
    journal = engine.journal
    assert isinstance(journal, MemoryJournal)
    assert [(e.id, e.delivery) for e in journal.triggers] == [
        (payload["event_id"], DeliveryStatus.NONE)
    ]


async def test_only_the_alerts_of_the_ticks_symbol_are_evaluated(engine: AlertEngine) -> None:
    engine.load([alert("btc", "BTCUSDT"), alert("eth", "ETHUSDT")])
    engine.on_tick(tick("ETHUSDT", 50.0))
    btc, eth = engine.state("btc"), engine.state("eth")
    assert btc is not None and eth is not None
    assert (btc.last_price, eth.last_price) == (None, 50.0)


async def test_a_once_alert_leaves_the_engine_after_firing_a_repeating_one_stays(
    engine: AlertEngine,
) -> None:
    engine.load([alert("once"), alert("again", mode=AlertMode.REPEATING)])
    for i, price in enumerate([101.0, 99.0, 102.0]):
        engine.on_tick(tick("BTCUSDT", price, i))
    await engine.drain()
    assert [a.id for a in engine.active()] == ["again"]
    journal = engine.journal
    assert isinstance(journal, MemoryJournal)
    fired = [e.alert.id for e in journal.triggers]
    assert sorted(fired) == ["again", "again", "once"]
    spent = [e.trigger.spent for e in journal.triggers if e.alert.id == "once"]
    assert spent == [True]


async def test_upsert_with_a_new_rule_restarts_evaluation_and_remove_stops_it(
    engine: AlertEngine,
) -> None:
    engine.load([alert("a1", level=100.0)])
    engine.on_tick(tick("BTCUSDT", 90.0))
    engine.upsert(alert("a1", level=80.0))
    state = engine.state("a1")
    assert state is not None and state.last_price is None
    assert engine.remove("a1") and not engine.remove("a1")
    engine.on_tick(tick("BTCUSDT", 200.0))
    assert engine.counters.fired == 0


async def test_webhook_is_retried_until_the_receiver_accepts_and_the_outcome_recorded(
    engine: AlertEngine,
) -> None:
    with WebhookReceiver(fail_first=2, fail_status=503) as receiver:
        engine.load([alert("hooked", webhook_url=receiver.url)])
        engine.on_tick(tick("BTCUSDT", 150.0))
        await asyncio.wait_for(engine.drain(), 10)
        requests = receiver.received()
    assert [r.status for r in requests] == [503, 503, 204]
    journal = engine.journal
    assert isinstance(journal, MemoryJournal)
    event = journal.triggers[0]
    assert {r.headers["idempotency-key"] for r in requests} == {event.id}
    assert requests[-1].body["alert_id"] == "hooked" and requests[-1].body["price"] == 150.0
    outcome, delivered_ns = journal.deliveries[event.id]
    assert (outcome.status, outcome.attempts, outcome.error) == (DeliveryStatus.DELIVERED, 3, None)
    assert delivered_ns == T0
    assert engine.counters.delivered == 1


async def test_webhook_gives_up_after_max_attempts_with_the_last_error(
    bus: InProcessBus,
) -> None:
    journal = MemoryJournal()
    engine = AlertEngine(SimClock(T0), bus, journal, fast_sender(max_attempts=3))
    await engine.start()
    try:
        with WebhookReceiver(fail_first=99, fail_status=500) as receiver:
            engine.load([alert("hooked", webhook_url=receiver.url)])
            engine.on_tick(tick("BTCUSDT", 150.0))
            await asyncio.wait_for(engine.drain(), 10)
            attempts = len(receiver.received())
    finally:
        await engine.stop()
    outcome, delivered_ns = journal.deliveries[journal.triggers[0].id]
    assert attempts == 3
    assert (outcome.status, outcome.attempts, delivered_ns) == (DeliveryStatus.FAILED, 3, None)
    assert outcome.error is not None and outcome.error.startswith("HTTP 500")


async def test_a_client_error_is_not_retried() -> None:
    with WebhookReceiver(fail_first=99, fail_status=404) as receiver:
        sender = fast_sender()
        outcome = await sender.deliver(receiver.url, {"x": 1}, idempotency_key="k")
        await sender.aclose()
        assert len(receiver.received()) == 1
    assert (outcome.status, outcome.attempts, outcome.status_code) == (
        DeliveryStatus.FAILED,
        1,
        404,
    )


async def test_an_unreachable_webhook_is_retried_and_fails_with_the_connection_error(
    closed_port: int,
) -> None:
    sender = fast_sender(max_attempts=2)
    outcome = await sender.deliver(
        f"http://127.0.0.1:{closed_port}/hook", {"x": 1}, idempotency_key="k"
    )
    await sender.aclose()
    assert (outcome.status, outcome.attempts) == (DeliveryStatus.FAILED, 2)
    assert outcome.error is not None and "ConnectError" in outcome.error


def test_backoff_doubles_up_to_its_cap_and_honours_retry_after() -> None:
    sender = WebhookSender(backoff_initial=0.5, backoff_max=4.0)
    assert [sender.delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert sender.delay(1, retry_after="3") == 3.0
    assert sender.delay(1, retry_after="3600") == 4.0
    assert sender.delay(2, retry_after="soon") == 1.0


async def test_a_failed_history_write_is_retried(bus: InProcessBus) -> None:
    journal = MemoryJournal(fail_times=2)
    engine = AlertEngine(SimClock(T0), bus, journal, None, record_retry_delay=0)
    await engine.start()
    try:
        engine.load([alert("a1")])
        engine.on_tick(tick("BTCUSDT", 101.0))
        await asyncio.wait_for(engine.drain(), 5)
    finally:
        await engine.stop()
    assert [e.alert.id for e in journal.triggers] == ["a1"]
    assert (engine.counters.recorded, engine.counters.record_errors) == (1, 0)


async def test_a_full_history_queue_drops_and_counts_instead_of_blocking_the_tick(
    bus: InProcessBus,
) -> None:
    engine = AlertEngine(SimClock(T0), bus, MemoryJournal(), None, queue_capacity=2)
    engine.load([alert("r", mode=AlertMode.REPEATING)])
    for i in range(8):  # not started: nothing drains the queue
        engine.on_tick(tick("BTCUSDT", 101.0 if i % 2 == 0 else 99.0, i))
    assert (engine.counters.fired, engine.counters.dropped) == (4, 2)


async def test_quotes_do_not_move_alerts(engine: AlertEngine) -> None:
    engine.load([alert("a1", level=100.0)])
    engine.on_tick(Tick(symbol="BTCUSDT", exchange="X", kind=TickKind.QUOTE, ts=T0, price=150.0))
    state = engine.state("a1")
    assert state is not None and state.last_price is None
    assert engine.counters.fired == 0


async def test_a_replica_without_the_alerts_lease_follows_firings_but_announces_none(
    bus: InProcessBus,
) -> None:
    leading = {"now": False}
    journal = MemoryJournal()
    engine = AlertEngine(SimClock(T0), bus, journal, fast_sender(), leader=lambda: leading["now"])
    await engine.start()
    subscription = bus.subscribe(ALERTS_TOPIC)
    try:
        engine.load([alert("once"), alert("again", mode=AlertMode.REPEATING)])
        engine.on_tick(tick("BTCUSDT", 99.0))
        engine.on_tick(tick("BTCUSDT", 101.0, 1))
        await engine.drain()
        # Both fired here as on the leader: the once-alert is spent, nothing was announced.
        assert [a.id for a in engine.active()] == ["again"]
        assert subscription.pending() == 0 and journal.triggers == []
        assert (engine.counters.fired, engine.counters.fired_elsewhere) == (0, 2)

        leading["now"] = True  # the leader went away; this replica took the lease
        engine.on_tick(tick("BTCUSDT", 99.0, 2))
        engine.on_tick(tick("BTCUSDT", 102.0, 3))
        _, payload = await asyncio.wait_for(subscription.get(), 1)
        await engine.drain()
        assert payload["alert_id"] == "again"
        assert [e.alert.id for e in journal.triggers] == ["again"]
    finally:
        await engine.stop()
