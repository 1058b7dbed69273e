"""The strategies API: CRUD, validation, start/stop, performance and exposure."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from tests.support.trading_api import TradingApi, TradingFactory
from trademk.domain.market import NANOS_PER_SECOND, Tick, TickKind
from trademk.engine.bus import InProcessBus
from trademk.engine.clock import SimClock
from trademk.engine.control import ControlClient
from trademk.storage.strategy_repository import StrategyRepository, StrategyValues
from trademk.wiring.strategies import StrategyService
from trademk.wiring.strategy_hosts import RemoteAccount, RemoteStrategyHost

T0 = 1_767_225_600 * NANOS_PER_SECOND  # 2026-01-01T00:00:00Z
MINUTE = 60 * NANOS_PER_SECOND
BASE = "/api/v1/strategies"
QUIET = {"default_strategies": False}


def definition(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"sma-{uuid.uuid4().hex[:8]}",
        "strategy_class": "sma_cross",
        "params": {"fast": 3, "slow": 8},
        "symbols": ["BTCUSDT"],
        "interval": "1m",
        "capital_allocation": "2500",
    }
    body.update(changes)
    return body


async def post(api: TradingApi, path: str, body: Any = None) -> Any:
    return await api.client.post(path, json=body, headers=api.headers)


async def test_classes_list_every_strategy_with_parameter_defaults_ranges_and_docs(
    trading_api: TradingFactory,
) -> None:
    async with trading_api(**QUIET) as api:
        response = await api.get(f"{BASE}/classes")
    assert response.status_code == 200
    classes = {entry["name"]: entry for entry in response.json()}
    assert set(classes) >= {"sma_cross", "momentum", "rsi_reversion", "donchian_breakout"}
    fast = next(p for p in classes["sma_cross"]["params"] if p["name"] == "fast")
    assert fast == {
        "name": "fast",
        "type": "int",
        "default": 10,
        "low": 1,
        "high": 100_000,
        "choices": None,
        "doc": "bars in the fast moving average",
    }


async def test_create_read_replace_and_delete_a_strategy(trading_api: TradingFactory) -> None:
    async with trading_api(**QUIET) as api:
        created = await post(api, BASE, definition(name="my-sma", symbols=["btcusdt"]))
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["params"] == {"fast": 3, "slow": 8, "allow_short": True}
        assert body["symbols"] == ["BTCUSDT"]
        assert (body["state"], body["enabled"], body["mode"]) == ("stopped", False, "paper")
        assert Decimal(body["capital_allocation"]) == Decimal(2500)
        sid = body["id"]
        assert [s["id"] for s in (await api.get(BASE)).json()] == [sid]
        assert (await api.get(f"{BASE}/{sid}")).json()["name"] == "my-sma"
        changed = await api.client.put(
            f"{BASE}/{sid}",
            json=definition(name="my-sma", params={"fast": 5, "slow": 20}, interval="5m"),
            headers=api.headers,
        )
        assert changed.status_code == 200, changed.text
        assert (changed.json()["params"]["fast"], changed.json()["interval"]) == (5, "5m")
        deleted = await api.client.delete(f"{BASE}/{sid}", headers=api.headers)
        assert deleted.status_code == 204
        assert (await api.get(f"{BASE}/{sid}")).status_code == 404


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"strategy_class": "nope"}, "strategy_class", "unknown strategy 'nope' (known: "),
        ({"params": {"fast": 0, "slow": 8}}, "params", "parameter 'fast' must be >= 1, got 0"),
        ({"params": {"fast": 9, "slow": 8}}, "params", "sma_cross needs fast < slow"),
        ({"params": {"speed": 3}}, "params", "has no parameter 'speed' (it has: "),
        ({"params": {"fast": "3"}}, "params", "parameter 'fast' must be an integer"),
        ({"symbols": ["BTCUSDT", "NOPEUSDT"]}, "symbols", "unknown symbol 'NOPEUSDT'"),
        ({"symbols": ["BTCUSDT", "BTCUSDT"]}, "symbols", "symbols must not repeat"),
        ({"interval": "7m"}, "interval", "unsupported interval '7m': use one of 5s,"),
        ({"sizing": "lots:3"}, "sizing", "cannot read sizing 'lots:3'"),
        ({"mode": "live", "enabled": True}, "enabled", "a live strategy is never enabled"),
    ],
)
async def test_definitions_that_cannot_run_are_refused_with_a_clear_422(
    trading_api: TradingFactory, changes: dict[str, Any], field: str, message: str
) -> None:
    async with trading_api(**QUIET) as api:
        response = await post(api, BASE, definition(**changes))
        listed = (await api.get(BASE)).json()
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", field]
    assert message in problem["msg"]
    assert listed == []


async def test_a_taken_name_is_a_conflict_and_unknown_ids_are_404(
    trading_api: TradingFactory,
) -> None:
    async with trading_api(**QUIET) as api:
        assert (await post(api, BASE, definition(name="twice"))).status_code == 201
        again = await post(api, BASE, definition(name="twice"))
        assert again.status_code == 409
        assert "already exists" in again.json()["detail"]
        missing = f"{BASE}/{uuid.uuid4()}"
        assert (await api.get(missing)).status_code == 404
        assert (await api.get(f"{missing}/performance")).status_code == 404
        assert (await post(api, f"{missing}/start")).status_code == 404
        assert (await post(api, f"{missing}/stop")).status_code == 404
        assert (await api.client.delete(missing, headers=api.headers)).status_code == 404
        put = await api.client.put(missing, json=definition(), headers=api.headers)
        assert put.status_code == 404


async def test_start_and_stop_run_the_strategy_and_are_audited(
    trading_api: TradingFactory,
) -> None:
    async with trading_api(**QUIET) as api:
        sid = (await post(api, BASE, definition())).json()["id"]
        started = await post(api, f"{BASE}/{sid}/start")
        assert started.status_code == 200
        assert (started.json()["state"], started.json()["enabled"]) == ("running", True)
        assert api.platform.strategies is not None
        assert api.platform.strategies.runner.is_running(sid)
        stopped = await post(api, f"{BASE}/{sid}/stop")
        assert (stopped.json()["state"], stopped.json()["enabled"]) == ("stopped", False)
        assert not api.platform.strategies.runner.is_running(sid)
        audit = (await api.get("/api/v1/audit", limit=50)).json()
    actions = [(e["action"], e["target"]) for e in audit]
    assert ("strategy_start", sid) in actions
    assert ("strategy_stop", sid) in actions


async def test_replacing_a_running_strategy_restarts_it_with_the_new_definition(
    trading_api: TradingFactory,
) -> None:
    async with trading_api(**QUIET) as api:
        body = definition(name="moving", enabled=True)
        sid = (await post(api, BASE, body)).json()["id"]
        assert api.platform.strategies is not None
        runner = api.platform.strategies.runner
        body["params"] = {"fast": 4, "slow": 12}
        replaced = await api.client.put(f"{BASE}/{sid}", json=body, headers=api.headers)
        assert replaced.json()["state"] == "running"
        running = runner.get(sid)
        assert running is not None
        assert dict(running.spec.params) == {"fast": 4, "slow": 12, "allow_short": True}
        await post(api, BASE, definition(name="other"))
        clash = await api.client.put(
            f"{BASE}/{sid}", json={**body, "name": "other"}, headers=api.headers
        )
        assert clash.status_code == 409
        assert runner.is_running(sid)
        body["enabled"] = False
        disabled = await api.client.put(f"{BASE}/{sid}", json=body, headers=api.headers)
        assert (disabled.json()["state"], disabled.json()["enabled"]) == ("stopped", False)
        assert not runner.is_running(sid)


async def test_a_live_strategy_never_runs_on_the_paper_venue(trading_api: TradingFactory) -> None:
    async with trading_api(**QUIET) as api:
        created = await post(api, BASE, definition(mode="live"))
        assert created.status_code == 201
        refused = await post(api, f"{BASE}/{created.json()['id']}/start")
        assert refused.status_code == 409
        assert "a live strategy needs a real broker" in refused.json()["detail"]


async def test_performance_and_exposure_follow_the_strategys_fills(
    trading_api: TradingFactory,
) -> None:
    clock = SimClock(T0)
    async with trading_api(clock, access_token_minutes=1440, paper_fee_bps=0, **QUIET) as api:
        created = await post(
            api,
            BASE,
            definition(
                symbols=["SOLUSDT"],
                params={"fast": 1, "slow": 2},
                capital_allocation="1000",
                sizing="units:1",
                enabled=True,
            ),
        )
        sid = created.json()["id"]
        assert created.json()["state"] == "running"
        runner = api.platform.strategies.runner  # type: ignore[union-attr]
        # One trade a minute; each closes the previous minute's bar. Crossings (a fall then
        # a rise, or a rise then a fall) on bars 2, 4, 6 and 7 act at the next trade:
        # long 120 -> 80 (-40), short 80 -> 70 (+10), long 70 -> 71 (+1), then short at 71.
        for k, price in enumerate([100, 90, 110, 120, 100, 80, 85, 70, 71]):
            clock.set(T0 + k * MINUTE + NANOS_PER_SECOND)
            api.platform.market.prices.update(
                Tick("SOLUSDT", "TEST", TickKind.TRADE, clock.now_ns(), float(price), 1.0)
            )
            await runner.idle()
        result = (await api.get(f"{BASE}/{sid}/performance")).json()
        orders = (await api.get("/api/v1/trading/orders", strategy_id=sid)).json()
        exposure = (await api.get(f"{BASE}/exposure")).json()
    assert len(orders) == 7
    assert {o["strategy_id"] for o in orders} == {sid}
    assert {o["status"] for o in orders} == {"filled"}
    assert (result["trades"], result["winning_trades"], result["losing_trades"]) == (3, 2, 1)
    assert Decimal(result["win_rate"]) == Decimal(2) / Decimal(3)
    assert Decimal(result["realized_pnl"]) == Decimal(-29)
    assert Decimal(result["unrealized_pnl"]) == 0
    assert Decimal(result["equity"]) == Decimal(971)
    assert Decimal(result["total_pnl"]) == Decimal(-29)
    assert Decimal(result["max_drawdown"]) == Decimal("0.04")
    assert Decimal(result["max_drawdown_amount"]) == Decimal(40)
    assert (result["orders"], result["fills"]) == (7, 7)
    assert [(p["symbol"], Decimal(p["qty"])) for p in result["positions"]] == [
        ("SOLUSDT", Decimal(-1))
    ]
    (sol,) = exposure
    assert (sol["symbol"], Decimal(sol["net_qty"]), Decimal(sol["net_exposure"])) == (
        "SOLUSDT",
        Decimal(-1),
        Decimal(-71),
    )
    assert Decimal(sol["account_qty"]) == Decimal(-1)
    assert [(h["strategy_id"], Decimal(h["qty"])) for h in sol["strategies"]] == [
        (sid, Decimal(-1))
    ]


async def test_default_strategies_are_created_once_enabled_and_trade_on_their_own(
    trading_api: TradingFactory,
) -> None:
    async with trading_api() as api:
        listed = (await api.get(BASE)).json()
        assert {s["name"] for s in listed} == {"sma-cross-btc", "sma-cross-eth", "momentum-bnb"}
        assert {(s["mode"], s["enabled"], s["state"]) for s in listed} == {
            ("paper", True, "running")
        }
        removed = next(s for s in listed if s["name"] == "momentum-bnb")
        await api.client.delete(f"{BASE}/{removed['id']}", headers=api.headers)
    async with trading_api() as api:
        again = (await api.get(BASE)).json()
    # A restart resumes the enabled paper strategies and does not bring a deleted one back.
    assert {s["name"] for s in again} == {"sma-cross-btc", "sma-cross-eth"}
    assert {s["state"] for s in again} == {"running"}


async def test_a_live_strategy_left_enabled_is_not_started_after_a_restart(
    trading_api: TradingFactory,
) -> None:
    async with trading_api(**QUIET) as api:
        record = await StrategyRepository(api.platform.sessions).create(
            StrategyValues(
                name="was-live",
                strategy_class="sma_cross",
                symbols=["BTCUSDT"],
                interval="1m",
                capital_allocation=Decimal(1000),
                params={"fast": 3, "slow": 8},
                enabled=True,
                mode="live",
            ),
            state="running",
        )
    async with trading_api(**QUIET) as api:
        stored = (await api.get(f"{BASE}/{record.id}")).json()
        assert api.platform.strategies is not None
        assert api.platform.strategies.runner.running() == []
    assert (stored["state"], stored["enabled"]) == ("stopped", False)


async def test_with_strategies_in_a_worker_that_is_not_running_start_and_stop_are_503(
    trading_api: TradingFactory,
) -> None:
    async with trading_api(**QUIET) as api:
        platform = api.platform
        control = ControlClient(InProcessBus(), timeout=1.0, alive_for=1.0)
        await control.start()
        try:
            # The API process of a split deployment: no runner here, no strategies worker up.
            platform.strategies = StrategyService(
                platform.settings,
                StrategyRepository(platform.sessions),
                RemoteStrategyHost(control, find_worker=0.1),
                RemoteAccount(platform.market.prices, lambda symbol: Decimal(0)),
                platform.market_data.known,
            )
            created = await post(api, BASE, definition(enabled=True))
            assert created.status_code == 201, created.text
            assert (created.json()["state"], created.json()["enabled"]) == ("stopped", True)
            sid = created.json()["id"]
            for action in ("start", "stop"):
                response = await post(api, f"{BASE}/{sid}/{action}")
                assert response.status_code == 503, response.text
                assert "trademk worker --role strategies" in response.json()["detail"]
            changed = await api.client.put(
                f"{BASE}/{sid}", json=definition(enabled=False), headers=api.headers
            )
            assert changed.status_code == 200, changed.text
            deleted = await api.client.delete(f"{BASE}/{sid}", headers=api.headers)
            assert deleted.status_code == 204
        finally:
            await control.stop()
