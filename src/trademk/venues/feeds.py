"""Build the configured market-data feed from settings."""

from __future__ import annotations

from trademk.config import ConfigError, Settings
from trademk.domain.calendar import NyseCalendar
from trademk.domain.ports import MarketDataFeed, TickStore
from trademk.engine.clock import Clock, utc_now


def build_feed(
    settings: Settings, clock: Clock, store: TickStore, calendar: NyseCalendar | None = None
) -> MarketDataFeed:
    """The feed named by ``FEED``: sim, binance, alpaca or replay."""
    if settings.feed == "sim":
        from trademk.venues.sim.feed import SimFeed

        return SimFeed(
            clock,
            symbols=settings.symbols,
            seed=settings.sim_seed,
            rate=settings.sim_ticks_per_second,
            calendar=calendar or NyseCalendar(utc_now(clock).date()),
        )
    if settings.feed == "binance":
        from trademk.venues.binance.feed import BinanceFeed

        return BinanceFeed(settings.binance_api_url, clock=clock, symbols=settings.crypto_symbols)
    if settings.feed == "alpaca":
        return _alpaca_feed(settings, clock)
    from trademk.venues.replay.feed import ReplayFeed

    if settings.replay_source:
        return ReplayFeed(
            clock,
            path=settings.replay_source,
            symbols=settings.symbols,
            speed=settings.replay_speed,
        )
    return ReplayFeed(clock, store=store, symbols=settings.symbols, speed=settings.replay_speed)


def _alpaca_feed(settings: Settings, clock: Clock) -> MarketDataFeed:
    from trademk.venues.alpaca.data_feed import AlpacaDataFeed

    if settings.alpaca_api_key is None or settings.alpaca_api_secret is None:
        raise ConfigError(
            "FEED=alpaca needs ALPACA_API_KEY and ALPACA_API_SECRET "
            "(or ALPACA_KEY_ID and ALPACA_SECRET_KEY)"
        )
    return AlpacaDataFeed(
        settings.alpaca_api_key.get_secret_value(),
        settings.alpaca_api_secret.get_secret_value(),
        clock=clock,
        feed=settings.alpaca_data_feed,
        base_url=settings.alpaca_data_ws_url,
    )
