"""Prometheus metrics of one Trademk process.

Each :class:`Metrics` owns its own :class:`CollectorRegistry` (never the
process-wide default), so several apps or platforms in one process, tests
included, never collide.

Two kinds of metric live here:

* pushed by the hot path: ticks written and their receive→durable lag (from
  the ingest pipeline's ``on_written`` hook), tick-to-order latency, WebSocket
  clients and HTTP request latency;
* read at scrape time from the components' own counters (feeds, ingest
  backlog, open orders, OMS outcomes, risk denials), so nothing on the hot
  path pays for them.

Order status changes are counted on their way to the bus: the OMS publishes
every change of every order on the ``orders`` topic, and
:class:`OrderCountingBus` counts them synchronously before passing them on.

Every metric is named ``trademk_*``.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder, start_http_server
from prometheus_client.registry import Collector

from trademk import __version__
from trademk.domain.orders import TERMINAL_STATUSES, OrderStatus
from trademk.domain.risk import TradingState
from trademk.engine.bus import MessageBus, Subscription

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from trademk.engine.trading import TradingCore

_log = structlog.get_logger(__name__)

INGEST_LAG_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TICK_TO_ORDER_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
HTTP_LATENCY_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
OMS_OUTCOMES: Final = ("submitted", "denied", "rejected")
ORDER_STATUSES: Final = frozenset(str(status) for status in OrderStatus)

StatusSource = Callable[[], Mapping[str, Any]]
TradingSource = Callable[[], "TradingCore | None"]


class BatchHistogram:
    """A histogram fed whole batches of observations at once, one lock per batch.

    The ingest writer reports thousands of lags per batch; observing them one
    by one through ``prometheus_client.Histogram`` would take a lock per value.
    Buckets are cumulative at export, like every Prometheus histogram.
    """

    def __init__(self, bounds: Sequence[float]) -> None:
        if not bounds or list(bounds) != sorted(set(bounds)):
            raise ValueError("histogram bounds must be a non-empty increasing sequence")
        self.bounds = tuple(float(b) for b in bounds)
        self._counts = [0] * (len(self.bounds) + 1)  # the last slot is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_many(self, values: Iterable[float]) -> None:
        """Add every value (seconds, or whatever unit the bounds are in)."""
        bounds, counts = self.bounds, [0] * (len(self.bounds) + 1)
        total = 0.0
        for value in values:
            counts[bisect_left(bounds, value)] += 1
            total += value
        with self._lock:
            for index, count in enumerate(counts):
                self._counts[index] += count
            self._sum += total

    def snapshot(self) -> tuple[list[tuple[str, float]], float]:
        """Cumulative ``(le, count)`` buckets ending with ``+Inf``, and the sum."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        buckets, running = [], 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), counts, strict=True):
            running += count
            buckets.append((bound, float(running)))
        return buckets, total


class OrderCountingBus:
    """A :class:`MessageBus` that counts order status changes, then passes everything on.

    Give it to the OMS as its bus: each ``orders`` message is one status change
    of one order, counted before the inner bus (which may drop messages for a
    slow subscriber) sees it, so the count is exact.
    """

    def __init__(self, inner: MessageBus, metrics: Metrics) -> None:
        self.inner = inner
        self._metrics = metrics

    def publish(self, topic: str, payload: Mapping[str, Any]) -> None:
        if topic == "orders":
            status = str(payload.get("status"))
            if status in ORDER_STATUSES:
                self._metrics.count_order_status(status)
            else:
                _log.warning("order message without a known status", status=status)
        self.inner.publish(topic, payload)

    def subscribe(self, *topics: str, capacity: int = 1000) -> Subscription:
        return self.inner.subscribe(*topics, capacity=capacity)

    def has_subscribers(self, topic: str) -> bool:
        # The counter listens to every order message, so publishers must not skip them.
        return topic == "orders" or self.inner.has_subscribers(topic)


class PlatformStateCollector(Collector):
    """Reads the components' live state at scrape time.

    Sources are callables registered on :class:`Metrics`; one that raises is
    logged and left out of that scrape rather than failing the whole scrape.
    """

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        build = GaugeMetricFamily("trademk_build_info", "Trademk version", labels=["version"])
        build.add_metric([__version__], 1.0)
        yield build
        yield from _guarded("feeds", lambda: _feed_families(_statuses(m.feed_sources)))
        yield m.ingest_lag_family()
        yield from _guarded("ingest", lambda: _ingest_families(_statuses(m.ingest_sources)))
        yield from _guarded("relay", lambda: _relay_families(_statuses(m.relay_sources)))
        yield from _guarded("trading", lambda: _trading_families(m.trading_source()))


class Metrics:
    """The metrics of one process, in a registry of their own (see module doc)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.feed_sources: list[StatusSource] = []
        self.ingest_sources: list[StatusSource] = []
        self.relay_sources: list[StatusSource] = []
        self.trading_source: TradingSource = lambda: None
        self._lag: dict[str, BatchHistogram] = {}
        self._lag_lock = threading.Lock()
        self.ticks_written = Counter(
            "trademk_ticks_written",
            "Ticks committed to the tick store, by feed",
            ["feed"],
            registry=self.registry,
        )
        self.order_status_changes = Counter(
            "trademk_orders",
            "Order status changes by the status entered (terminal statuses count orders)",
            ["status"],
            registry=self.registry,
        )
        for status in sorted(ORDER_STATUSES):
            self.order_status_changes.labels(status=status)
        self.tick_to_order = Histogram(
            "trademk_tick_to_order_seconds",
            "Latency from the tick a strategy decided on to its order reaching the OMS",
            buckets=TICK_TO_ORDER_BUCKETS,
            registry=self.registry,
        )
        self.websocket_clients = Gauge(
            "trademk_websocket_clients",
            "WebSocket clients connected to the API",
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "trademk_http_request_duration_seconds",
            "HTTP request latency by method, route template and status",
            ["method", "route", "status"],
            buckets=HTTP_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(PlatformStateCollector(self))

    # -- wiring: where scrape-time values come from ------------------------------

    def watch_feed(self, status: StatusSource) -> None:
        """Read a feed's ``status()`` (name, connected, ticks, reconnects) at scrape time."""
        self.feed_sources.append(status)

    def watch_ingest(self, status: StatusSource) -> None:
        """Read an ingest pipeline's ``status()`` (pending, write errors, spills) at scrape time."""
        self.ingest_sources.append(status)

    def watch_relay(self, status: StatusSource) -> None:
        """Read a tick relay publisher's ``status()`` (published, written, dropped, backlog)."""
        self.relay_sources.append(status)

    def watch_trading(self, trading: TradingSource) -> None:
        """Read orders by status, OMS outcomes and risk denials from ``trading()`` when set."""
        self.trading_source = trading

    # -- pushed by the components ------------------------------------------------

    def record_ticks_written(self, feed: str, count: int, lags_s: Sequence[float]) -> None:
        """One committed ingest batch: ``count`` ticks and each tick's lag in seconds."""
        if count < 0:
            raise ValueError(f"a batch cannot hold {count} ticks")
        self.ticks_written.labels(feed=feed).inc(count)
        if lags_s:
            self._lag_histogram(feed).observe_many(lags_s)

    def ingest_hook(self, feed: str) -> Callable[[int, Sequence[float]], None]:
        """An ``IngestPipeline(on_written=...)`` hook recording under ``feed``."""

        def on_written(count: int, lags_s: Sequence[float]) -> None:
            self.record_ticks_written(feed, count, lags_s)

        return on_written

    def count_order_status(self, status: str) -> None:
        """An order entered ``status`` (an ``OrderStatus`` value; others are refused)."""
        if status not in ORDER_STATUSES:
            raise ValueError(f"not an order status: {status!r}")
        self.order_status_changes.labels(status=status).inc()

    def counting_bus(self, bus: MessageBus) -> OrderCountingBus:
        """``bus``, counting each order status change published on it."""
        return OrderCountingBus(bus, self)

    def observe_tick_to_order(self, seconds: float) -> None:
        """Latency from the deciding tick's receipt to the order request reaching the OMS."""
        if seconds < 0:
            raise ValueError(f"tick-to-order latency cannot be negative: {seconds}")
        self.tick_to_order.observe(seconds)

    def set_websocket_clients(self, count: int) -> None:
        """The number of WebSocket clients connected right now."""
        if count < 0:
            raise ValueError(f"WebSocket client count cannot be negative: {count}")
        self.websocket_clients.set(count)

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request; ``route`` must be the path template, never the raw URL."""
        self.http_latency.labels(method=method, route=route, status=str(status)).observe(seconds)

    # -- export ---------------------------------------------------------------------

    def ingest_lag_family(self) -> HistogramMetricFamily:
        """The receive→durable lag histogram of every feed, as one metric family."""
        family = HistogramMetricFamily(
            "trademk_ingest_lag_seconds",
            "Receive to durable lag of each tick written, by feed",
            labels=["feed"],
        )
        with self._lag_lock:
            histograms = list(self._lag.items())
        for feed, histogram in histograms:
            buckets, total = histogram.snapshot()
            family.add_metric([feed], buckets, total)
        return family

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The registry in the format the ``Accept`` header asks for, and its content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def serve(self, host: str, port: int) -> WSGIServer:
        """Serve ``/metrics`` over HTTP on a background thread (for worker processes).

        Port 0 picks a free port (``server.server_port``); ``server.shutdown()`` stops it.
        """
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server

    def _lag_histogram(self, feed: str) -> BatchHistogram:
        histogram = self._lag.get(feed)
        if histogram is None:
            with self._lag_lock:
                histogram = self._lag.setdefault(feed, BatchHistogram(INGEST_LAG_BUCKETS))
        return histogram


def _statuses(sources: Iterable[StatusSource]) -> list[Mapping[str, Any]]:
    return [source() for source in sources]


def _guarded(what: str, families: Callable[[], list[Metric]]) -> list[Metric]:
    try:
        return families()
    except Exception:
        _log.exception("metrics_source_failed", source=what)
        return []


def _feed_families(statuses: Sequence[Mapping[str, Any]]) -> list[Metric]:
    received = CounterMetricFamily(
        "trademk_feed_ticks_received", "Ticks received from the venue, by feed", labels=["feed"]
    )
    messages = CounterMetricFamily(
        "trademk_feed_messages", "Messages received from the venue, by feed", labels=["feed"]
    )
    connected = GaugeMetricFamily(
        "trademk_feed_connected", "1 while the feed is connected, else 0", labels=["feed"]
    )
    reconnects = CounterMetricFamily(
        "trademk_feed_reconnects", "Reconnections of the feed", labels=["feed"]
    )
    parse_errors = CounterMetricFamily(
        "trademk_feed_parse_errors", "Venue messages that could not be parsed", labels=["feed"]
    )
    for status in statuses:
        feed = [str(status.get("name", "unknown"))]
        received.add_metric(feed, float(status.get("ticks", 0)))
        messages.add_metric(feed, float(status.get("messages", 0)))
        connected.add_metric(feed, 1.0 if status.get("connected") else 0.0)
        reconnects.add_metric(feed, float(status.get("reconnects", 0)))
        parse_errors.add_metric(feed, float(status.get("parse_errors", 0)))
    return [received, messages, connected, reconnects, parse_errors]


def _ingest_families(statuses: Sequence[Mapping[str, Any]]) -> list[Metric]:
    pending = GaugeMetricFamily(
        "trademk_ingest_pending_ticks",
        "Ticks accepted but not yet durable (queued, in memory or spilled)",
        labels=["pipeline"],
    )
    write_errors = CounterMetricFamily(
        "trademk_ingest_write_errors", "Failed tick store writes (retried)", labels=["pipeline"]
    )
    spilled = CounterMetricFamily(
        "trademk_ingest_spilled_ticks", "Ticks spilled to disk during outages", labels=["pipeline"]
    )
    for status in statuses:
        pipeline = [str(status.get("name", "ingest"))]
        pending.add_metric(pipeline, float(status.get("pending", 0)))
        write_errors.add_metric(pipeline, float(status.get("write_errors", 0)))
        spilled.add_metric(pipeline, float(status.get("spilled_ticks", 0)))
    return [pending, write_errors, spilled]


def _relay_families(statuses: Sequence[Mapping[str, Any]]) -> list[Metric]:
    written = CounterMetricFamily(
        "trademk_tick_relay_written_ticks",
        "Ticks written to the Redis tick stream for the other processes",
        labels=["stream"],
    )
    dropped = CounterMetricFamily(
        "trademk_tick_relay_dropped_ticks",
        "Ticks the relay dropped while Redis was unreachable (the tick store still has them)",
        labels=["stream"],
    )
    backlog = GaugeMetricFamily(
        "trademk_tick_relay_backlog_ticks",
        "Ticks waiting to be written to the Redis tick stream",
        labels=["stream"],
    )
    for status in statuses:
        stream = [str(status.get("stream", "ticks"))]
        written.add_metric(stream, float(status.get("written", 0)))
        dropped.add_metric(stream, float(status.get("dropped", 0)))
        backlog.add_metric(stream, float(status.get("backlog", 0)))
    return [written, dropped, backlog]


def _trading_families(trading: TradingCore | None) -> list[Metric]:
    if trading is None:
        return []
    by_status = {status: 0 for status in OrderStatus if status not in TERMINAL_STATUSES}
    for order in trading.oms.open_orders():
        by_status[order.status] = by_status.get(order.status, 0) + 1
    open_orders = GaugeMetricFamily(
        "trademk_open_orders", "Working orders of this process's OMS, by status", labels=["status"]
    )
    for status, count in by_status.items():
        open_orders.add_metric([str(status)], float(count))
    counters = trading.oms.counters
    outcomes = CounterMetricFamily(
        "trademk_oms_orders", "Order requests by outcome at the OMS", labels=["outcome"]
    )
    for outcome in OMS_OUTCOMES:
        outcomes.add_metric([outcome], float(counters.get(outcome, 0)))
    fills = CounterMetricFamily("trademk_oms_fills", "Fills applied to the portfolio")
    fills.add_metric([], float(counters.get("fills", 0)))
    denials = CounterMetricFamily(
        "trademk_risk_denials", "Orders denied by the risk engine, by rule", labels=["rule"]
    )
    for rule, count in sorted(trading.risk.denials_by_rule.items()):
        denials.add_metric([rule], float(count))
    state = GaugeMetricFamily(
        "trademk_trading_state", "1 for the risk engine's current trading state", labels=["state"]
    )
    for candidate in TradingState:
        state.add_metric([str(candidate)], 1.0 if trading.risk.state is candidate else 0.0)
    return [open_orders, outcomes, fills, denials, state]
