"""/metrics over a running platform: the exposition parses and the counters move.

The platform runs the simulated feed, DuckDB ticks and the paper venue (all
under tmp_path); activity is real HTTP requests, real ticks and real signals.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.security.conftest import SecureApi, bearer, running_api, settings_for
from trademk import __version__
from trademk.engine.bus import InProcessBus
from trademk.observability.metrics import BatchHistogram, Metrics
from trademk.security.roles import Role

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
DENIED_RULE = "max_order_qty_crypto"
SCRAPE_DEADLINE_S = 15.0


def parse(text: str) -> Samples:
    """Every sample of a text exposition, keyed by name and label set."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def label_values(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(key)[label] for sample_name, key in samples if sample_name == name}


async def scrape(api: SecureApi) -> Samples:
    response = await api.client.get("/metrics")
    assert response.status_code == 200, response.text
    return parse(response.text)


async def scrape_until(api: SecureApi, done: Callable[[Samples], bool]) -> Samples:
    """Scrape until ``done(samples)``; fail showing the last scrape if it never happens."""
    samples: Samples = {}
    try:
        async with asyncio.timeout(SCRAPE_DEADLINE_S):
            while True:
                samples = await scrape(api)
                if done(samples):
                    return samples
                await asyncio.sleep(0.1)
    except TimeoutError:
        trademk = {k: v for k, v in samples.items() if not k[0].endswith("_bucket")}
        raise AssertionError(f"metrics never got there; last scrape: {trademk}") from None


async def test_counters_move_between_scrapes_after_ticks_requests_and_signals(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, sim_ticks_per_second=400.0, ingest_flush_interval=0.05)
    async with running_api(settings) as api:
        # Admin passes whatever role the trading routes declare (trader or above).
        trader = bearer(api.access_token(await api.user(Role.ADMIN)))
        before = await scrape(api)
        feed = next(iter(label_values(before, "trademk_feed_ticks_received_total", "feed")))
        health = {"method": "GET", "route": "/api/health", "status": "200"}
        for _ in range(3):
            assert (await api.client.get("/api/health")).status_code == 200
        # A price must be cached before the risk engine can approve an order.
        await scrape_until(
            api, lambda s: value(s, "trademk_feed_ticks_received_total", feed=feed) > 0
        )
        denied = {"symbol": "BTCUSDT", "side": "buy", "qty": "5"}
        approved = {"symbol": "BTCUSDT", "side": "buy", "qty": "0.001"}
        for body in (denied, approved):
            response = await api.client.post("/api/v1/trading/signal", json=body, headers=trader)
            assert response.status_code == 202, response.text

        def moved(now: Samples) -> bool:
            grew = [
                value(now, name, **labels) > value(before, name, **labels)
                for name, labels in (
                    ("trademk_feed_ticks_received_total", {"feed": feed}),
                    ("trademk_ticks_written_total", {"feed": feed}),
                    ("trademk_ingest_lag_seconds_count", {"feed": feed}),
                    ("trademk_risk_denials_total", {"rule": DENIED_RULE}),
                    ("trademk_oms_orders_total", {"outcome": "submitted"}),
                    ("trademk_orders_total", {"status": "denied"}),
                    ("trademk_orders_total", {"status": "submitted"}),
                    ("trademk_orders_total", {"status": "filled"}),
                    ("trademk_oms_fills_total", {}),
                )
            ]
            return all(grew)

        after = await scrape_until(api, moved)

    assert value(after, "trademk_feed_connected", feed=feed) == 1.0
    assert (
        value(after, "trademk_http_request_duration_seconds_count", **health)
        >= value(before, "trademk_http_request_duration_seconds_count", **health) + 3
    )
    assert value(after, "trademk_risk_denials_total", rule=DENIED_RULE) == 1.0
    assert value(after, "trademk_oms_orders_total", outcome="denied") == 1.0
    assert value(after, "trademk_oms_orders_total", outcome="submitted") == 1.0
    assert value(after, "trademk_orders_total", status="denied") == 1.0
    assert value(after, "trademk_orders_total", status="submitted") == 1.0
    assert value(after, "trademk_orders_total", status="filled") == 1.0
    assert value(after, "trademk_oms_fills_total") >= 1.0
    assert value(after, "trademk_open_orders", status="accepted") == 0.0
    assert value(after, "trademk_trading_state", state="active") == 1.0
    lag_count = value(after, "trademk_ingest_lag_seconds_count", feed=feed)
    assert value(after, "trademk_ingest_lag_seconds_bucket", feed=feed, le="+Inf") == lag_count
    assert value(after, "trademk_ticks_written_total", feed=feed) >= lag_count > 0


async def test_metrics_is_open_without_credentials_and_negotiates_the_format(
    tmp_path: Path,
) -> None:
    async with running_api(settings_for(tmp_path, feed="replay")) as api:
        plain = await api.client.get("/metrics")
        openmetrics = await api.client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert value(parse(plain.text), "trademk_build_info", version=__version__) == 1.0
    assert openmetrics.status_code == 200
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")


async def test_http_latency_is_labelled_by_route_template_not_raw_url(tmp_path: Path) -> None:
    order_ids = [uuid.uuid4().hex, uuid.uuid4().hex]
    stray = f"/no-such-page-{uuid.uuid4().hex}"
    async with running_api(settings_for(tmp_path, feed="replay")) as api:
        admin = bearer(api.access_token(await api.user(Role.ADMIN)))
        for order_id in order_ids:
            response = await api.client.get(f"/api/v1/trading/orders/{order_id}", headers=admin)
            assert response.status_code == 404
        assert (await api.client.get(stray)).status_code == 404
        samples = await scrape(api)
    name = "trademk_http_request_duration_seconds_count"
    template = "/api/v1/trading/orders/{order_id}"
    assert value(samples, name, method="GET", route=template, status="404") == 2.0
    assert value(samples, name, method="GET", route="<unmatched>", status="404") == 1.0
    routes = label_values(samples, name, "route")
    assert not any(order_id in route or "no-such-page" in route for route in routes)
    for order_id in order_ids:
        assert order_id not in repr(samples)


async def test_websocket_clients_and_tick_to_order_latency_reach_the_scrape(
    tmp_path: Path,
) -> None:
    async with running_api(settings_for(tmp_path, feed="replay")) as api:
        api.platform.metrics.set_websocket_clients(3)
        api.platform.metrics.observe_tick_to_order(0.02)
        samples = await scrape(api)
    assert value(samples, "trademk_websocket_clients") == 3.0
    assert value(samples, "trademk_tick_to_order_seconds_count") == 1.0
    assert value(samples, "trademk_tick_to_order_seconds_bucket", le="0.01") == 0.0
    assert value(samples, "trademk_tick_to_order_seconds_bucket", le="0.025") == 1.0


def test_negative_observations_are_refused() -> None:
    metrics = Metrics()
    with pytest.raises(ValueError, match="negative"):
        metrics.set_websocket_clients(-1)
    with pytest.raises(ValueError, match="negative"):
        metrics.observe_tick_to_order(-0.1)
    with pytest.raises(ValueError, match="cannot hold"):
        metrics.record_ticks_written("sim", -5, [])


def test_order_counting_bus_counts_status_changes_and_passes_messages_on() -> None:
    metrics = Metrics()
    inner = InProcessBus()
    bus = metrics.counting_bus(inner)
    subscription = bus.subscribe("orders")
    assert bus.has_subscribers("orders") and not bus.has_subscribers("fills")
    for status in ("submitted", "accepted", "filled"):
        bus.publish("orders", {"client_order_id": "c1", "status": status})
    bus.publish("fills", {"client_order_id": "c1"})
    samples = parse(metrics.exposition()[0].decode())
    assert value(samples, "trademk_orders_total", status="submitted") == 1.0
    assert value(samples, "trademk_orders_total", status="filled") == 1.0
    assert value(samples, "trademk_orders_total", status="canceled") == 0.0
    assert subscription.pending() == 3
    with pytest.raises(ValueError, match="not an order status"):
        metrics.count_order_status("done")


def test_each_metrics_object_has_its_own_registry_and_leaves_the_default_alone() -> None:
    first, second = Metrics(), Metrics()
    first.record_ticks_written("sim", 10, [0.01] * 10)
    one, two = parse(first.exposition()[0].decode()), parse(second.exposition()[0].decode())
    assert value(one, "trademk_ticks_written_total", feed="sim") == 10.0
    assert value(two, "trademk_ticks_written_total", feed="sim") == 0.0
    assert not any(name.startswith("trademk_") for name in REGISTRY._names_to_collectors)


def test_batch_histogram_exports_cumulative_buckets_and_sum() -> None:
    histogram = BatchHistogram([0.1, 1.0])
    histogram.observe_many([0.05, 0.1, 0.5, 2.0])
    buckets, total = histogram.snapshot()
    assert buckets == [("0.1", 2.0), ("1.0", 3.0), ("+Inf", 4.0)]
    assert total == pytest.approx(2.65)
    with pytest.raises(ValueError, match="increasing"):
        BatchHistogram([1.0, 0.5])


def test_a_failing_source_is_left_out_and_the_rest_is_still_scraped() -> None:
    metrics = Metrics()

    def broken() -> dict[str, object]:
        raise RuntimeError("feed status exploded")

    metrics.watch_feed(broken)
    metrics.watch_ingest(lambda: {"name": "ingest", "pending": 7, "write_errors": 2})
    samples = parse(metrics.exposition()[0].decode())
    assert value(samples, "trademk_ingest_pending_ticks", pipeline="ingest") == 7.0
    assert value(samples, "trademk_ingest_write_errors_total", pipeline="ingest") == 2.0
    assert not label_values(samples, "trademk_feed_connected", "feed")


def test_serve_exposes_the_registry_over_http_for_worker_processes() -> None:
    metrics = Metrics()
    metrics.record_ticks_written("binance", 4, [0.2] * 4)
    server = metrics.serve("127.0.0.1", 0)
    try:
        response = httpx.get(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    samples = parse(response.text)
    assert value(samples, "trademk_ticks_written_total", feed="binance") == 4.0
    assert value(samples, "trademk_ingest_lag_seconds_count", feed="binance") == 4.0
