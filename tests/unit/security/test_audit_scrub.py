"""Audit details never keep secrets."""

from __future__ import annotations

from trademk.security.audit import REDACTED, scrub


def test_values_under_secret_names_are_replaced_at_any_depth() -> None:
    detail = {
        "symbol": "BTCUSDT",
        "qty": 1.5,
        "password": "hunter2-hunter2",
        "nested": {"api_key": "tmk_abc", "refresh_token": "eyJ", "key": "max_order_qty"},
        "items": [{"Authorization": "Bearer x"}, "plain"],
    }
    assert scrub(detail) == {
        "symbol": "BTCUSDT",
        "qty": 1.5,
        "password": REDACTED,
        "nested": {"api_key": REDACTED, "refresh_token": REDACTED, "key": "max_order_qty"},
        "items": [{"Authorization": REDACTED}, "plain"],
    }


def test_non_json_values_become_text() -> None:
    from decimal import Decimal

    assert scrub({"price": Decimal("1.10")}) == {"price": "1.10"}
