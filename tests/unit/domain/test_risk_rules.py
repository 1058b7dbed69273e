"""Risk rules as pure functions, RiskLimits validation and its text form."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from trademk.domain.calendar import NyseCalendar
from trademk.domain.market import AssetClass
from trademk.domain.risk import (
    APPROVED,
    RISK_LIMIT_NAMES,
    RiskDecision,
    RiskLimits,
    RiskLimitsError,
    RiskRule,
    check_daily_loss,
    check_market_hours,
    check_open_orders,
    check_order_notional,
    check_order_qty,
    check_order_rate,
    check_position_size,
    check_price_band,
    check_reduce_only,
    deny_halted,
    deny_no_market_price,
    deny_unknown_symbol,
)
from trademk.engine.clock import datetime_to_ns
from trademk.storage.seed import RISK_DEFAULTS

D = Decimal
LIMITS = RiskLimits()
STOCK, CRYPTO = AssetClass.STOCK, AssetClass.CRYPTO


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    return datetime_to_ns(datetime(year, month, day, hour, minute, tzinfo=UTC))


@pytest.fixture(scope="module")
def calendar() -> NyseCalendar:
    return NyseCalendar(today=date(2025, 6, 1))


# -- RiskLimits --------------------------------------------------------------------------


def test_default_limits_match_the_seeded_defaults() -> None:
    seeded = {d.key: d.value for d in RISK_DEFAULTS}
    assert set(seeded) == set(RISK_LIMIT_NAMES)
    assert RiskLimits.from_mapping(seeded) == RiskLimits()
    assert seeded["max_position_size_usd"] == "10000"
    assert seeded["max_order_qty_crypto"] == "1.0"
    assert seeded["max_order_qty_stock"] == "100"


def test_limits_round_trip_through_their_text_form() -> None:
    limits = RiskLimits(
        max_order_qty_crypto=D("0.25"),
        max_open_orders_per_symbol=None,
        enforce_market_hours=False,
    )
    text = limits.to_mapping()
    assert text["max_order_qty_crypto"] == "0.25"
    assert text["max_open_orders_per_symbol"] == "none"
    assert text["enforce_market_hours"] == "false"
    assert RiskLimits.from_mapping(text) == limits


def test_from_mapping_keeps_unnamed_limits_from_the_base() -> None:
    base = RiskLimits(max_open_orders=7)
    changed = RiskLimits.from_mapping({"max_daily_loss_usd": "250.50"}, base=base)
    assert changed.max_daily_loss_usd == D("250.50")
    assert changed.max_open_orders == 7
    assert RiskLimits.from_mapping({}) == RiskLimits()


def test_from_mapping_accepts_ints_decimals_and_boolean_words() -> None:
    limits = RiskLimits.from_mapping(
        {
            "max_open_orders": 12,
            "max_order_notional_usd": D("750"),
            "max_order_qty_stock": 30,
            "enforce_market_hours": " Off ",
            "max_open_orders_per_symbol": "",
        }
    )
    assert limits.max_open_orders == 12
    assert limits.max_order_notional_usd == D("750")
    assert limits.max_order_qty_stock == D(30)
    assert limits.enforce_market_hours is False
    assert limits.max_open_orders_per_symbol is None


def test_bad_values_are_reported_by_field_all_at_once() -> None:
    with pytest.raises(RiskLimitsError) as caught:
        RiskLimits.from_mapping(
            {
                "max_position_size_usd": "-5",
                "max_order_qty_stock": "lots",
                "max_open_orders": "2.5",
                "max_orders_per_second": "0",
                "enforce_market_hours": "maybe",
                "max_daily_loss_usd": "NaN",
                "max_order_qty_crypto": 0.5,
                "max_leverage": "3",
            }
        )
    errors = caught.value.errors
    assert errors == {
        "max_position_size_usd": "must be greater than 0, got -5",
        "max_order_qty_stock": "must be a number, got 'lots'",
        "max_open_orders": "must be a whole number, got '2.5'",
        "max_orders_per_second": "must be at least 1, got 0",
        "enforce_market_hours": "must be true or false, got 'maybe'",
        "max_daily_loss_usd": "must be a finite number, got NaN",
        "max_order_qty_crypto": "give numbers as text, not a float (0.5 would be rounded)",
        "max_leverage": "unknown risk limit",
    }
    assert "max_position_size_usd: must be greater than 0, got -5" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_constructing_limits_directly_is_validated_too() -> None:
    with pytest.raises(RiskLimitsError, match="max_open_orders: must be at least 1"):
        RiskLimits(max_open_orders=0)
    with pytest.raises(RiskLimitsError, match="max_order_notional_usd: must be a Decimal"):
        RiskLimits(max_order_notional_usd=5000.0)  # type: ignore[arg-type]
    with pytest.raises(RiskLimitsError, match="enforce_market_hours: must be true or false"):
        RiskLimits(enforce_market_hours=1)  # type: ignore[arg-type]
    with pytest.raises(RiskLimitsError, match="max_open_orders: must be a whole number"):
        RiskLimits(max_open_orders=True)


def test_max_order_qty_is_per_asset_class() -> None:
    assert LIMITS.max_order_qty(CRYPTO) == D("1.0")
    assert LIMITS.max_order_qty(STOCK) == D("100")


# -- RiskDecision ---------------------------------------------------------------------------


def test_a_denial_names_its_rule_first() -> None:
    decision = RiskDecision.deny(RiskRule.MAX_OPEN_ORDERS, "too many")
    assert not decision.approved
    assert decision.reason == "max_open_orders: too many"
    assert APPROVED.approved
    assert APPROVED.reason == ""
    with pytest.raises(ValueError, match="both a rule and a reason"):
        RiskDecision(RiskRule.MAX_OPEN_ORDERS)
    with pytest.raises(ValueError, match="both a rule and a reason"):
        RiskDecision(None, "why")


def test_fixed_denials_explain_themselves() -> None:
    assert deny_halted("manual").reason == "trading_halted: trading is halted (manual)"
    assert deny_unknown_symbol("ZZZ").reason == "unknown_symbol: unknown symbol 'ZZZ'"
    assert deny_no_market_price("AAPL").reason == (
        "market_price: no market price for AAPL; cannot value the order"
    )


# -- rules ----------------------------------------------------------------------------------


def test_order_qty_rule() -> None:
    assert check_order_qty("AAPL", D("100"), STOCK, LIMITS) is None
    denial = check_order_qty("AAPL", D("150"), STOCK, LIMITS)
    assert denial is not None
    assert denial.reason == "max_order_qty_stock: 150 shares exceeds the limit of 100"
    assert check_order_qty("ETHUSDT", D("1.0"), CRYPTO, LIMITS) is None
    denial = check_order_qty("ETHUSDT", D("1.01"), CRYPTO, LIMITS)
    assert denial is not None
    assert denial.rule is RiskRule.MAX_ORDER_QTY_CRYPTO


def test_order_notional_rule() -> None:
    assert check_order_notional("AAPL", D("25"), D("200"), LIMITS) is None
    denial = check_order_notional("AAPL", D("25"), D("200.01"), LIMITS)
    assert denial is not None
    assert denial.rule is RiskRule.MAX_ORDER_NOTIONAL
    assert "5,000.25 USD" in denial.reason


def test_position_size_rule_projects_position_pending_and_order() -> None:
    assert check_position_size("AAPL", D("60"), D("20"), D("20"), D("100"), LIMITS) is None
    denial = check_position_size("AAPL", D("60"), D("20"), D("21"), D("100"), LIMITS)
    assert denial is not None
    assert denial.rule is RiskRule.MAX_POSITION_SIZE
    # Reducing an oversized short passes; growing it does not.
    assert check_position_size("AAPL", D("-200"), D(0), D("50"), D("100"), LIMITS) is None
    assert check_position_size("AAPL", D("-200"), D(0), D("-1"), D("100"), LIMITS) is not None
    # Flipping through zero is judged by the size of the new side.
    assert check_position_size("AAPL", D("-50"), D(0), D("150"), D("100"), LIMITS) is None
    assert check_position_size("AAPL", D("-50"), D(0), D("151"), D("100"), LIMITS) is not None


def test_open_orders_rule() -> None:
    limits = RiskLimits(max_open_orders=3, max_open_orders_per_symbol=2)
    assert check_open_orders("AAPL", 2, 1, limits) is None
    total = check_open_orders("AAPL", 3, 0, limits)
    assert total is not None
    assert total.rule is RiskRule.MAX_OPEN_ORDERS
    per_symbol = check_open_orders("AAPL", 2, 2, limits)
    assert per_symbol is not None
    assert per_symbol.rule is RiskRule.MAX_OPEN_ORDERS_PER_SYMBOL
    unlimited = RiskLimits(max_open_orders=3, max_open_orders_per_symbol=None)
    assert check_open_orders("AAPL", 2, 2, unlimited) is None


def test_daily_loss_rule() -> None:
    day = utc(2025, 6, 3, 0)
    assert check_daily_loss(D("50000"), D("49000"), day, LIMITS) is None
    denial = check_daily_loss(D("50000"), D("48999.99"), day, LIMITS)
    assert denial is not None
    assert denial.reason == (
        "max_daily_loss_usd: loss of 1,000.01 USD since 2025-06-03 00:00 UTC exceeds the "
        "limit of 1,000.00 USD"
    )
    assert check_daily_loss(D("50000"), D("90000"), day, LIMITS) is None  # a gain


def test_order_rate_rule() -> None:
    assert check_order_rate(RiskRule.MAX_ORDERS_PER_MINUTE, 59, 60, "minute") is None
    denial = check_order_rate(RiskRule.MAX_ORDERS_PER_MINUTE, 60, 60, "minute")
    assert denial is not None
    assert denial.reason == (
        "max_orders_per_minute: 60 orders were sent in the last minute; the limit is 60"
    )


def test_price_band_rule() -> None:
    last = D("200")
    assert check_price_band("AAPL", D("220"), None, last, LIMITS) is None
    assert check_price_band("AAPL", None, D("180"), last, LIMITS) is None
    assert check_price_band("AAPL", None, None, last, LIMITS) is None
    high = check_price_band("AAPL", D("220.02"), None, last, LIMITS)
    assert high is not None
    assert high.reason == (
        "max_price_deviation_pct: AAPL limit price 220.02 is 10.01% away from the last "
        "price 200; the limit is 10%"
    )
    low_stop = check_price_band("AAPL", D("200"), D("179.98"), last, LIMITS)
    assert low_stop is not None
    assert "stop price 179.98" in low_stop.reason


def test_reduce_only_rule() -> None:
    assert check_reduce_only("AAPL", D("10"), D(0), D("-10"), "why") is None
    assert check_reduce_only("AAPL", D("-10"), D("4"), D("6"), "why") is None
    growing = check_reduce_only("AAPL", D("10"), D(0), D("1"), "why")
    assert growing is not None
    assert growing.reason == (
        "reduce_only: trading is reduce-only (why); buying 1 AAPL would not reduce the "
        "position of 10"
    )
    flip = check_reduce_only("AAPL", D("-10"), D("4"), D("7"), "why")
    assert flip is not None
    assert "buying 7 AAPL with 4 already working would flip the position of -10" in flip.reason
    flat = check_reduce_only("AAPL", D(0), D(0), D("-1"), "why")
    assert flat is not None
    assert flat.rule is RiskRule.REDUCE_ONLY


def test_market_hours_rule(calendar: NyseCalendar) -> None:
    assert check_market_hours("AAPL", STOCK, utc(2025, 6, 3, 15), calendar) is None
    saturday = utc(2025, 6, 7, 15)
    denial = check_market_hours("AAPL", STOCK, saturday, calendar)
    assert denial is not None
    assert denial.reason == "market_hours: AAPL: NYSE is closed (next open 2025-06-09 13:30 UTC)"
    assert check_market_hours("BTCUSDT", CRYPTO, saturday, calendar) is None
