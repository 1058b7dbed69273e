"""/api/v1/alerts: CRUD, validation, firing on ticks, history, WebSocket and webhooks."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.fakes.webhook_receiver import WebhookReceiver
from tests.integration.api.live_server import LiveApi, live_api, receive_type, subscribe
from tests.integration.security.conftest import settings_for
from trademk.domain.market import Tick, TickKind
from trademk.runtime import Platform
from trademk.security.roles import Role

pytestmark = pytest.mark.timeout(60)

ABOVE = {"symbol": "btcusdt", "condition": "above", "level": 70_000, "name": "btc 70k"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api(tmp_path: Path) -> Any:
    async with live_api(tmp_path) as running:
        running.platform.live.alerts.webhooks.backoff_initial = 0.01  # type: ignore[union-attr]
        yield running


async def headers(api: LiveApi, role: Role) -> dict[str, str]:
    return bearer((await api.user_token(role))[1])


async def settled(api: LiveApi) -> None:
    await asyncio.wait_for(api.platform.live.alerts.drain(), 10)


async def test_create_read_replace_delete(api: LiveApi) -> None:
    trader, viewer = await headers(api, Role.TRADER), await headers(api, Role.VIEWER)
    created = await api.http.post("/api/v1/alerts", json=ABOVE, headers=trader)
    assert created.status_code == 201, created.text
    alert = created.json()
    assert (alert["symbol"], alert["condition"], alert["level"], alert["mode"]) == (
        "BTCUSDT",
        "above",
        70_000,
        "once",
    )
    assert alert["active"] and alert["trigger_count"] == 0 and alert["created_by"]
    path = f"/api/v1/alerts/{alert['id']}"

    listed = await api.http.get("/api/v1/alerts", headers=viewer)
    assert [a["id"] for a in listed.json()] == [alert["id"]]
    assert (await api.http.get(path, headers=viewer)).json()["name"] == "btc 70k"

    changed = {**ABOVE, "condition": "crossing", "level": 65_000, "mode": "repeating"}
    replaced = await api.http.put(path, json=changed, headers=trader)
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["condition"], replaced.json()["level"]) == ("crossing", 65_000)
    engine_alert = api.platform.live.alerts.active()[0]
    assert engine_alert.rule.level == 65_000 and engine_alert.id == alert["id"]

    assert (await api.http.delete(path, headers=trader)).status_code == 204
    assert (await api.http.get(path, headers=viewer)).status_code == 404
    assert (await api.http.delete(path, headers=trader)).status_code == 404
    assert api.platform.live.alerts.active() == []


async def test_viewers_read_traders_write_anonymous_callers_are_refused(api: LiveApi) -> None:
    viewer = await headers(api, Role.VIEWER)
    assert (await api.http.post("/api/v1/alerts", json=ABOVE, headers=viewer)).status_code == 403
    assert (await api.http.get("/api/v1/alerts")).status_code == 401
    assert (await api.http.get("/api/v1/alerts", headers=viewer)).status_code == 200


BAD_ALERTS: list[tuple[dict[str, Any], int, str]] = [
    ({"symbol": "NOPEUSDT", "condition": "above", "level": 1}, 404, "unknown symbol"),
    ({"symbol": "BTCUSDT", "condition": "above"}, 422, "level is required"),
    ({"symbol": "BTCUSDT", "condition": "above", "level": -5}, 422, "greater than 0"),
    ({"symbol": "BTCUSDT", "condition": "sideways", "level": 1}, 422, "condition"),
    (
        {"symbol": "BTCUSDT", "condition": "percent_move", "percent": 5},
        422,
        "window is required",
    ),
    (
        {"symbol": "BTCUSDT", "condition": "percent_move", "window_seconds": 60},
        422,
        "percent is required",
    ),
    (
        {"symbol": "BTCUSDT", "condition": "below", "level": 1, "percent": 3},
        422,
        "take a level",
    ),
    (
        {"symbol": "BTCUSDT", "condition": "above", "level": 1, "cooldown_seconds": -1},
        422,
        "greater than or equal to 0",
    ),
    (
        {"symbol": "BTCUSDT", "condition": "above", "level": 1, "webhook_url": "ftp://x/y"},
        422,
        "URL scheme should be 'http' or 'https'",
    ),
    (
        {"symbol": "BTCUSDT", "condition": "above", "level": 1, "webhook_url": "not a url"},
        422,
        "webhook_url",
    ),
    ({"symbol": "BTCUSDT", "condition": "above", "level": 1, "name": "a\u0000b"}, 422, "name"),
]


async def test_bad_alerts_are_refused_with_a_clear_message(api: LiveApi) -> None:
    trader = await headers(api, Role.TRADER)
    for body, status, message in BAD_ALERTS:
        response = await api.http.post("/api/v1/alerts", json=body, headers=trader)
        assert (response.status_code, message in response.text) == (status, True), (
            body,
            response.text,
        )
    assert (await api.http.get("/api/v1/alerts", headers=trader)).json() == []


async def test_unknown_alert_ids_are_404(api: LiveApi) -> None:
    trader = await headers(api, Role.TRADER)
    missing = f"/api/v1/alerts/{uuid.uuid4()}"
    assert (await api.http.get(missing, headers=trader)).status_code == 404
    assert (await api.http.put(missing, json=ABOVE, headers=trader)).status_code == 404
    assert (await api.http.get(f"{missing}/history", headers=trader)).status_code == 404


async def test_an_alert_fires_on_a_tick_appears_in_history_and_on_the_websocket(
    api: LiveApi,
) -> None:
    trader = await headers(api, Role.TRADER)
    with WebhookReceiver(fail_first=1, fail_status=503) as receiver:
        body = {**ABOVE, "webhook_url": receiver.url}
        alert = (await api.http.post("/api/v1/alerts", json=body, headers=trader)).json()
        async with connect(api.ws_url(token=(await api.user_token(Role.VIEWER))[1])) as ws:
            await subscribe(ws, "alerts")
            api.trade("BTCUSDT", 69_999.0)
            api.trade("BTCUSDT", 70_010.5)
            message = await receive_type(ws, "alert")
        await settled(api)
        hooks = receiver.received()

    assert message["channel"] == "alerts"
    data = message["data"]
    assert (data["alert_id"], data["price"], data["symbol"]) == (alert["id"], 70_010.5, "BTCUSDT")

    history = (await api.http.get(f"/api/v1/alerts/{alert['id']}/history", headers=trader)).json()
    assert len(history) == 1
    event = history[0]
    assert (event["id"], event["price"], event["alert_name"]) == (
        str(uuid.UUID(data["event_id"])),
        70_010.5,
        "btc 70k",
    )
    assert (event["delivery_status"], event["attempts"], event["last_error"]) == (
        "delivered",
        2,
        None,
    )
    assert event["delivered_at"] is not None
    assert [h.status for h in hooks] == [503, 204]
    assert hooks[-1].body["event_id"] == data["event_id"]

    after = (await api.http.get(f"/api/v1/alerts/{alert['id']}", headers=trader)).json()
    assert (after["active"], after["trigger_count"]) == (False, 1)  # a once alert is spent
    assert after["last_triggered_at"] is not None
    everything = (await api.http.get("/api/v1/alerts/history", headers=trader)).json()
    assert [e["id"] for e in everything] == [event["id"]]


async def test_a_failed_webhook_is_recorded_with_its_last_error(api: LiveApi) -> None:
    api.platform.live.alerts.webhooks.max_attempts = 2  # type: ignore[union-attr]
    trader = await headers(api, Role.TRADER)
    with WebhookReceiver(fail_first=99, fail_status=502) as receiver:
        body = {**ABOVE, "webhook_url": receiver.url}
        alert = (await api.http.post("/api/v1/alerts", json=body, headers=trader)).json()
        api.trade("BTCUSDT", 71_000.0)
        await settled(api)
    history = (await api.http.get(f"/api/v1/alerts/{alert['id']}/history", headers=trader)).json()
    assert (history[0]["delivery_status"], history[0]["attempts"]) == ("failed", 2)
    assert history[0]["last_error"].startswith("HTTP 502")


async def test_history_is_kept_after_the_alert_is_deleted(api: LiveApi) -> None:
    trader = await headers(api, Role.TRADER)
    body = {**ABOVE, "mode": "repeating"}
    alert = (await api.http.post("/api/v1/alerts", json=body, headers=trader)).json()
    for price in (70_001.0, 60_000.0, 70_002.0):
        api.trade("BTCUSDT", price)
    await settled(api)
    assert (await api.http.delete(f"/api/v1/alerts/{alert['id']}", headers=trader)).status_code
    history = (await api.http.get(f"/api/v1/alerts/{alert['id']}/history", headers=trader)).json()
    assert [e["price"] for e in history] == [70_002.0, 70_001.0]
    api.trade("BTCUSDT", 60_000.0)
    api.trade("BTCUSDT", 70_003.0)
    await settled(api)
    assert len((await api.http.get("/api/v1/alerts/history", headers=trader)).json()) == 2


async def test_a_deactivated_alert_stops_firing(api: LiveApi) -> None:
    trader = await headers(api, Role.TRADER)
    alert = (await api.http.post("/api/v1/alerts", json=ABOVE, headers=trader)).json()
    put = await api.http.put(
        f"/api/v1/alerts/{alert['id']}", json={**ABOVE, "active": False}, headers=trader
    )
    assert put.json()["active"] is False
    api.trade("BTCUSDT", 80_000.0)
    await settled(api)
    assert api.platform.live.alerts.counters.fired == 0


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings overrides for the app database: SQLite in DATA_DIR, or a fresh PostgreSQL."""
    if request.param == "sqlite":
        return {}
    return {"database_url": request.getfixturevalue("fresh_postgres_url")}


async def test_active_alerts_are_loaded_when_the_platform_starts(
    tmp_path: Path, database: dict[str, Any]
) -> None:
    overrides = database
    async with live_api(tmp_path, **overrides) as api:
        trader = await headers(api, Role.TRADER)
        kept = (await api.http.post("/api/v1/alerts", json=ABOVE, headers=trader)).json()
        off = {**ABOVE, "active": False}
        await api.http.post("/api/v1/alerts", json=off, headers=trader)
    platform = Platform(settings_for(tmp_path, **overrides), run_feed=False)
    await platform.start()
    try:
        assert [a.id for a in platform.live.alerts.active()] == [kept["id"]]
        platform.market.prices.update(_trade("BTCUSDT", 70_500.0, platform.clock.now_ns()))
        await asyncio.wait_for(platform.live.alerts.drain(), 10)
        history = await platform.live.alert_repository.history(uuid.UUID(kept["id"]))
        assert [e.price for e in history] == [70_500.0]
    finally:
        await platform.stop()


def _trade(symbol: str, price: float, ts: int) -> Tick:
    return Tick(symbol=symbol, exchange="TEST", kind=TickKind.TRADE, ts=ts, price=price, qty=1.0)
