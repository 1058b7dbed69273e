"""Risk limits: the value object every limit lives in, and its text form.

``RiskLimits`` is what the ``configs`` table (scope ``risk``) stores, one row
per field, as text; ``from_mapping`` parses that text (or an API request body)
and reports every bad field by name, so the API can answer 422 with details.
``trademk.domain.risk`` re-exports these names; import them from there.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from typing import Final

from trademk.domain.market import AssetClass

__all__ = ["RISK_LIMIT_NAMES", "RiskLimits", "RiskLimitsError"]


class RiskLimitsError(ValueError):
    """Invalid risk limits; ``errors`` maps each bad field to what is wrong with it."""

    def __init__(self, errors: Mapping[str, str], context: str = "invalid risk limits") -> None:
        self.errors = dict(errors)
        detail = "; ".join(f"{name}: {problem}" for name, problem in self.errors.items())
        super().__init__(f"{context}: {detail}")


class _Kind(enum.Enum):
    DECIMAL = "decimal"
    INT = "int"
    OPTIONAL_INT = "optional_int"
    BOOL = "bool"


_KIND_BY_ANNOTATION: Final = {
    "Decimal": _Kind.DECIMAL,
    "int": _Kind.INT,
    "int | None": _Kind.OPTIONAL_INT,
    "bool": _Kind.BOOL,
}
_TRUE_WORDS: Final = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS: Final = frozenset({"false", "0", "no", "off"})
_NONE_WORDS: Final = frozenset({"", "none", "null"})


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Every limit the risk engine enforces; invalid values raise :class:`RiskLimitsError`.

    Money is USD ``Decimal``; quantities are ``Decimal``; counts are ``int``.
    Every number must be > 0 (a count >= 1). ``max_open_orders_per_symbol`` is
    optional: ``None`` means no per-symbol limit. ``max_price_deviation_pct`` is
    in percent (``10`` means a limit or stop price may be at most 10% away from
    the last price).
    """

    max_order_qty_crypto: Decimal = Decimal("1.0")
    max_order_qty_stock: Decimal = Decimal("100")
    max_order_notional_usd: Decimal = Decimal("5000")
    max_position_size_usd: Decimal = Decimal("10000")
    max_open_orders: int = 50
    max_open_orders_per_symbol: int | None = 10
    max_daily_loss_usd: Decimal = Decimal("1000")
    max_orders_per_second: int = 5
    max_orders_per_minute: int = 60
    max_price_deviation_pct: Decimal = Decimal("10")
    enforce_market_hours: bool = True

    def __post_init__(self) -> None:
        errors = {
            name: problem
            for name, kind in _FIELD_KINDS.items()
            if (problem := _value_problem(kind, getattr(self, name))) is not None
        }
        if errors:
            raise RiskLimitsError(errors)

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, object], base: RiskLimits | None = None
    ) -> RiskLimits:
        """Limits from text values (``{"max_open_orders": "20", ...}``).

        Keys left out keep the value they have in ``base`` (the defaults when
        ``base`` is None). Unknown keys, unparsable values and out-of-range
        values raise one :class:`RiskLimitsError` naming every bad field.
        Numbers may also be given as ``int`` or ``Decimal`` (never ``float``:
        it would carry binary rounding into the limit).
        """
        merged = (base or cls()).to_values()
        errors: dict[str, str] = {}
        for name, raw in values.items():
            kind = _FIELD_KINDS.get(name)
            if kind is None:
                errors[name] = "unknown risk limit"
                continue
            try:
                value = _parse(kind, raw)
            except ValueError as err:
                errors[name] = str(err)
                continue
            problem = _value_problem(kind, value)
            if problem is not None:
                errors[name] = problem
            else:
                merged[name] = value
        if errors:
            raise RiskLimitsError(errors)
        return cls(**merged)  # type: ignore[arg-type]

    def to_values(self) -> dict[str, object]:
        """The limits as a ``{field: value}`` dict of their Python values."""
        return {name: getattr(self, name) for name in _FIELD_KINDS}

    def to_mapping(self) -> dict[str, str]:
        """The limits as text, the form stored in the ``configs`` table."""
        return {name: _format(getattr(self, name)) for name in _FIELD_KINDS}

    def max_order_qty(self, asset_class: AssetClass) -> Decimal:
        """The largest quantity of one order in ``asset_class``."""
        if asset_class is AssetClass.CRYPTO:
            return self.max_order_qty_crypto
        return self.max_order_qty_stock


_FIELD_KINDS: Final[Mapping[str, _Kind]] = {
    f.name: _KIND_BY_ANNOTATION[str(f.type)] for f in fields(RiskLimits)
}
RISK_LIMIT_NAMES: Final = tuple(_FIELD_KINDS)
"""Every key ``RiskLimits.from_mapping`` accepts, in declaration order."""


def _parse(kind: _Kind, raw: object) -> object:
    """``raw`` (text, or an already typed value) as the Python value of ``kind``."""
    if isinstance(raw, float):
        raise ValueError(f"give numbers as text, not a float ({raw!r} would be rounded)")
    if kind is _Kind.BOOL:
        return _parse_bool(raw)
    if kind is _Kind.OPTIONAL_INT and (raw is None or _is_none_word(raw)):
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        raise ValueError(f"must be a number, got {raw!r}")
    if kind is _Kind.DECIMAL:
        return _parse_decimal(raw)
    return _parse_int(raw)


def _is_none_word(raw: object) -> bool:
    return isinstance(raw, str) and raw.strip().lower() in _NONE_WORDS


def _parse_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    word = raw.strip().lower() if isinstance(raw, str) else None
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError(f"must be true or false, got {raw!r}")


def _parse_decimal(raw: str | int | Decimal) -> Decimal:
    if isinstance(raw, Decimal):
        return raw
    if isinstance(raw, int):
        return Decimal(raw)
    try:
        return Decimal(raw.strip())
    except InvalidOperation:
        raise ValueError(f"must be a number, got {raw!r}") from None


def _parse_int(raw: str | int | Decimal) -> int:
    if isinstance(raw, int):
        return raw
    text = str(raw).strip()
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"must be a whole number, got {raw!r}")
    return int(text)


def _value_problem(kind: _Kind, value: object) -> str | None:
    """What is wrong with a typed ``value`` for a field of ``kind``, or None."""
    if kind is _Kind.BOOL:
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if kind is _Kind.OPTIONAL_INT and value is None:
        return None
    if kind is _Kind.DECIMAL:
        if not isinstance(value, Decimal):
            return f"must be a Decimal, got {type(value).__name__} {value!r}"
        if not value.is_finite():
            return f"must be a finite number, got {value}"
        return None if value > 0 else f"must be greater than 0, got {value}"
    if not isinstance(value, int) or isinstance(value, bool):
        return f"must be a whole number, got {value!r}"
    return None if value >= 1 else f"must be at least 1, got {value}"


def _format(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    return str(value)
