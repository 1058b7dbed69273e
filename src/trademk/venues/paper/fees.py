"""Fee models for the paper venue: what one fill costs, in the quote currency.

Fees are exact ``Decimal`` products, never rounded, so the portfolio identity
``cash == starting_cash - sum(signed notional) - sum(fees)`` holds to the last
digit. A model is charged per fill: a minimum applies to every partial fill,
as it does at brokers that bill per execution.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Protocol, runtime_checkable

from trademk.domain.instruments import require_non_negative

_BPS_DIVISOR: Final = Decimal(10_000)
_ZERO: Final = Decimal(0)


@runtime_checkable
class FeeModel(Protocol):
    """Computes the fee of one fill."""

    def fee(self, qty: Decimal, price: Decimal) -> Decimal:
        """The fee for filling ``qty`` at ``price`` (both positive); never negative."""
        ...


@dataclass(frozen=True, slots=True)
class BpsFee:
    """A fraction of the notional: ``qty * price * bps / 10_000`` (1 bps = 0.01 %)."""

    bps: Decimal

    def __post_init__(self) -> None:
        require_non_negative("fee bps", self.bps)

    def fee(self, qty: Decimal, price: Decimal) -> Decimal:
        """``qty * price * bps / 10_000``."""
        if self.bps == 0:
            return _ZERO
        return qty * price * self.bps / _BPS_DIVISOR


@dataclass(frozen=True, slots=True)
class PerShareFee:
    """A fixed amount per unit traded, at least ``minimum`` per fill.

    With ``max_bps`` set, the fee is also capped at that fraction of the
    notional (brokers cap per-share commissions on cheap shares this way); the
    cap wins over the minimum.
    """

    per_share: Decimal
    minimum: Decimal = _ZERO
    max_bps: Decimal | None = None

    def __post_init__(self) -> None:
        require_non_negative("per-share fee", self.per_share)
        require_non_negative("minimum fee", self.minimum)
        if self.max_bps is not None:
            require_non_negative("maximum fee bps", self.max_bps)

    def fee(self, qty: Decimal, price: Decimal) -> Decimal:
        """``max(qty * per_share, minimum)``, capped at ``max_bps`` of the notional if set."""
        fee = max(qty * self.per_share, self.minimum)
        if self.max_bps is not None:
            fee = min(fee, qty * price * self.max_bps / _BPS_DIVISOR)
        return fee


NO_FEE: Final = BpsFee(_ZERO)
"""A fee model that charges nothing."""
