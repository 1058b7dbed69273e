"""Asset class of a symbol and the Decimal checks shared by the trading model."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trademk.domain.instruments import (
    asset_class_of,
    require_decimal,
    require_non_negative,
    require_positive,
    require_text,
    require_timestamp_ns,
)
from trademk.domain.market import AssetClass


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("AAPL", AssetClass.STOCK),
        ("V", AssetClass.STOCK),
        ("GOOGL", AssetClass.STOCK),
        ("BRK.B", AssetClass.STOCK),
        ("BTCUSDT", AssetClass.CRYPTO),
        ("ETHBTC", AssetClass.CRYPTO),
        ("SOLFDUSD", AssetClass.CRYPTO),
        ("BTC/USD", AssetClass.CRYPTO),
        ("DOGE/USD", AssetClass.CRYPTO),
    ],
)
def test_asset_class_of_known_symbol_shapes(symbol: str, expected: AssetClass) -> None:
    assert asset_class_of(symbol) is expected


@pytest.mark.parametrize("symbol", ["", "aapl", "TOOLONGNAME", "BTC/", "/USD", "12345678"])
def test_unclassifiable_symbols_are_refused(symbol: str) -> None:
    with pytest.raises(ValueError, match="cannot classify"):
        asset_class_of(symbol)


def test_decimal_checks_name_the_field_and_refuse_floats() -> None:
    assert require_decimal("x", Decimal("-1.5")) == Decimal("-1.5")
    assert require_positive("qty", Decimal("0.0001")) == Decimal("0.0001")
    assert require_non_negative("fee", Decimal(0)) == 0
    with pytest.raises(TypeError, match="qty must be a Decimal, got float"):
        require_positive("qty", 0.1)
    with pytest.raises(ValueError, match="price must be a finite number"):
        require_positive("price", Decimal("Infinity"))
    with pytest.raises(ValueError, match="fee must be >= 0"):
        require_non_negative("fee", Decimal("-0.01"))


def test_text_and_timestamp_checks() -> None:
    assert require_text("symbol", "AAPL") == "AAPL"
    assert require_timestamp_ns("ts_ns", 0) == 0
    with pytest.raises(TypeError, match="symbol must be a str"):
        require_text("symbol", None)
    with pytest.raises(TypeError, match="ts_ns must be an int"):
        require_timestamp_ns("ts_ns", True)
    with pytest.raises(TypeError, match="ts_ns must be an int"):
        require_timestamp_ns("ts_ns", 1.0)
