"""The Grafana dashboard and its provisioning match the metrics Trademk exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from trademk.domain.risk import TradingState
from trademk.engine.bus import InProcessBus
from trademk.observability.metrics import Metrics

ROOT = Path(__file__).resolve().parents[3]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = json.loads((GRAFANA / "trademk-dashboard.json").read_text())
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def exported_names() -> set[str]:
    """Every sample name a fully wired process exports (scrape-time families included)."""
    metrics = Metrics()
    metrics.watch_feed(lambda: {"name": "sim", "connected": True, "ticks": 1})
    metrics.watch_ingest(lambda: {"name": "ingest", "pending": 0})
    metrics.record_ticks_written("sim", 1, [0.01])
    metrics.observe_tick_to_order(0.01)
    metrics.observe_http("GET", "/api/health", 200, 0.001)
    metrics.counting_bus(InProcessBus()).publish("orders", {"status": "submitted"})
    # What the collector reads from a trading core; test_metrics.py runs a real one.
    trading = SimpleNamespace(
        oms=SimpleNamespace(open_orders=list, counters={"submitted": 1}),
        risk=SimpleNamespace(denials_by_rule={"max_open_orders": 0}, state=TradingState.ACTIVE),
    )
    metrics.watch_trading(lambda: trading)  # type: ignore[arg-type,return-value]
    return {
        sample.name
        for family in text_string_to_metric_families(metrics.exposition()[0].decode())
        for sample in family.samples
    }


def panel_exprs() -> list[str]:
    return [target["expr"] for panel in DASHBOARD["panels"] for target in panel.get("targets", [])]


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    exported = exported_names()
    queried = {name for expr in panel_exprs() for name in re.findall(r"trademk_\w+", expr)}
    assert queried, "the dashboard queries no trademk metric"
    assert queried - exported == set()


def test_the_dashboard_covers_the_metrics_the_issue_lists() -> None:
    text = " ".join(panel_exprs())
    for name in (
        "trademk_feed_ticks_received_total",
        "trademk_ticks_written_total",
        "trademk_ingest_lag_seconds_bucket",
        "trademk_feed_connected",
        "trademk_feed_reconnects_total",
        "trademk_orders_total",
        "trademk_risk_denials_total",
        "trademk_tick_to_order_seconds_bucket",
        "trademk_websocket_clients",
        "trademk_http_request_duration_seconds_bucket",
    ):
        assert name in text, f"no panel shows {name}"


def test_panels_use_the_provisioned_datasource_and_do_not_overlap() -> None:
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )["datasources"]
    uids = {source["uid"] for source in datasources}
    cells: set[tuple[int, int]] = set()
    for panel in DASHBOARD["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] in uids, panel["title"]
        cells |= _cells(panel, cells)
    assert len({panel["id"] for panel in DASHBOARD["panels"]}) == len(DASHBOARD["panels"])


def _cells(panel: dict[str, Any], taken: set[tuple[int, int]]) -> set[tuple[int, int]]:
    grid = panel["gridPos"]
    assert grid["x"] + grid["w"] <= 24, panel["title"]
    mine = {
        (x, y)
        for x in range(grid["x"], grid["x"] + grid["w"])
        for y in range(grid["y"], grid["y"] + grid["h"])
    }
    assert not mine & taken, f"panel {panel['title']!r} overlaps another"
    return mine


def test_dashboard_provider_loads_the_folder_compose_mounts_it_into() -> None:
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "trademk.yaml").read_text()
    )["providers"]
    compose = (ROOT / "compose.yaml").read_text()
    for provider in providers:
        folder = provider["options"]["path"]
        assert f"{folder}/trademk-dashboard.json:ro" in compose
    assert DASHBOARD["uid"] and DASHBOARD["title"] == "Trademk"
