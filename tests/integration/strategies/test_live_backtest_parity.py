"""Acceptance: the same strategy over the same replayed data places the same orders in a
backtest and in a live paper run.

A deterministic tick file (trades, with a gap of a few minutes) is backtested
with ``backtest(..., engine="event")`` on the 1m bars built from it, and
replayed through the live runtime: a ``Platform`` with ``FEED=replay`` from
that file at speed 0 and a ``SimClock`` that follows the ticks, the strategy
created (enabled, paper) over the API. The replay feed's ticks go into the
platform's latest-price cache one at a time, each followed by
``StrategyRunner.idle()``: the pace a live feed has, without wall-clock races
(the platform's own pump would deliver hundreds of ticks between two turns of
the runner at speed 0). Everything after the price cache is the live chain:
bar aggregation, the runner, risk, the OMS, the paper venue and the journal.
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tests.support.trading_api import TradingFactory
from trademk.backtest import backtest
from trademk.domain.market import NANOS_PER_SECOND, Bar, Tick
from trademk.engine.bar_aggregator import BarAggregator
from trademk.engine.clock import SimClock
from trademk.venues.feeds import build_feed
from trademk.venues.replay.files import load_tick_file

SYMBOL = "ETHUSDT"
T0 = 1_767_225_600 * NANOS_PER_SECOND  # 2026-01-01T00:00:00Z
MINUTES = 150
GAP_MINUTES = range(70, 74)  # no trades at all: no bars
PARAMS: dict[str, Any] = {"fast": 3, "slow": 8}
CAPITAL = 600
FEE_BPS = 1
LOT = 0.0001

Order = tuple[str, float, int]
"""(side, qty, open time of the bar the order was decided on)."""


def write_ticks(path: Path) -> None:
    """Trades every 4-14 s for 150 minutes: a slow wave plus noise, so the SMAs cross."""
    rng = np.random.default_rng(20260101)
    rows = []
    second = 2.0
    while second < MINUTES * 60:
        if int(second // 60) not in GAP_MINUTES:
            wave = 120.0 * math.sin(2 * math.pi * second / (37 * 60))
            price = round(2000.0 + wave + float(rng.normal(0.0, 6.0)), 2)
            qty = round(float(rng.uniform(0.01, 2.0)), 4)
            rows.append({"symbol": SYMBOL, "ts": T0 + int(second * NANOS_PER_SECOND),
                         "price": price, "qty": qty})  # fmt: skip
        second += float(rng.uniform(4.0, 14.0))
    pd.DataFrame(rows).to_csv(path, index=False)


def minute_bars(ticks: list[Tick]) -> pd.DataFrame:
    aggregator = BarAggregator("1m")
    bars: list[Bar] = [b for t in ticks if (b := aggregator.add(t)) is not None]
    bars += aggregator.flush()
    return pd.DataFrame(
        {
            "Open": [b.open for b in bars],
            "High": [b.high for b in bars],
            "Low": [b.low for b in bars],
            "Close": [b.close for b in bars],
            "Volume": [b.volume for b in bars],
        },
        index=pd.to_datetime([b.ts for b in bars], unit="ns", utc=True),
    )


def backtest_orders(frame: pd.DataFrame) -> list[Order]:
    """The orders of an event-driven backtest, rebuilt from its trades: each trade is an
    entry and an exit; an exit and the next entry on one bar are a reversal, exit first."""
    result = backtest(
        "sma_cross",
        frame,
        cash=CAPITAL,
        commission=FEE_BPS / 10_000,
        engine="event",
        lot_size=LOT,
        symbol=SYMBOL,
        **PARAMS,
    )
    opens = frame.index.as_unit("ns").asi8
    legs: list[tuple[int, int, str, float]] = []
    for trade in result.trades.itertuples():
        size = float(trade.Size)
        legs.append((int(trade.EntryBar), 1, "buy" if size > 0 else "sell", abs(size)))
        legs.append((int(trade.ExitBar), 0, "sell" if size > 0 else "buy", abs(size)))
    still_open = result.open_position
    if still_open is not None:
        side = "buy" if still_open.size > 0 else "sell"
        legs.append((still_open.entry_bar, 1, side, abs(still_open.size)))
    # An order executes at the open of the bar after the one it was decided on.
    return [(side, round(qty, 4), int(opens[bar - 1])) for bar, _, side, qty in sorted(legs)]


async def test_a_backtest_and_a_live_paper_replay_place_the_same_orders(
    trading_api: TradingFactory, tmp_path: Path
) -> None:
    source = tmp_path / "ticks.csv"
    write_ticks(source)
    ticks = load_tick_file(source)
    expected = backtest_orders(minute_bars(ticks))
    assert len(expected) >= 6, "the data should make the strategy trade several times"

    clock = SimClock(ticks[0].ts)
    settings: dict[str, Any] = {
        "feed": "replay",
        "replay_source": str(source),
        "replay_speed": 0,
        "paper_fee_bps": FEE_BPS,
        "paper_slippage_bps": 0,
        "access_token_minutes": 1440,
        "default_strategies": False,
    }
    async with trading_api(clock, **settings) as api:
        platform = api.platform
        events = platform.bus.subscribe("strategies", capacity=10_000)
        created = await api.client.post(
            "/api/v1/strategies",
            json={
                "name": "parity",
                "strategy_class": "sma_cross",
                "params": PARAMS,
                "symbols": [SYMBOL],
                "interval": "1m",
                "capital_allocation": str(CAPITAL),
                "enabled": True,
            },
            headers=api.headers,
        )
        assert created.status_code == 201, created.text
        strategy_id = created.json()["id"]
        assert platform.strategies is not None
        runner = platform.strategies.runner
        feed = build_feed(platform.settings, clock, platform.market.store)
        await feed.subscribe([SYMBOL])
        async for tick in feed.stream():
            assert isinstance(tick, Tick)
            clock.set(max(tick.ts, clock.now_ns()))
            platform.market.prices.update(tick)
            await runner.idle()
        assert platform.trading is not None
        await platform.trading.journal.flush()
        stored = (
            await api.get("/api/v1/trading/orders", strategy_id=strategy_id, limit=1000)
        ).json()

    live: list[Order] = []
    while events.pending():
        _, event = await events.get()
        if event["kind"] == "order":
            assert event["status"] == "filled", event
            live.append((event["side"], float(Decimal(event["qty"])), event["bar_ts"]))
    assert live == expected
    assert len(stored) == len(live)
    assert {order["strategy_id"] for order in stored} == {strategy_id}
