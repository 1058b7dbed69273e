"""What the API asks of trading, wherever trading runs.

``TradingDesk`` is the one seam between the trading routes and the trading
core. ``LocalDesk`` serves a process that holds the core (``trademk run``);
``RemoteDesk`` (wiring/remote_desk.py) serves ``trademk api``, whose trading
happens in execution workers: signals go onto the shared stream, orders are
read from the app database, positions come from the shared book, and cancel,
halt, resume and limit changes are commands to the workers.

An operator's halt is stored (storage/kill_switch_repository.py) before it is
applied, so trading stays halted across restarts and in workers that start
later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from trademk.domain.errors import RejectedError
from trademk.domain.portfolio import Portfolio
from trademk.domain.risk import RiskLimits
from trademk.domain.signals import OrderRequest
from trademk.engine.trading import OrderRecords, TradingCore
from trademk.storage.kill_switch_repository import KillSwitchRepository
from trademk.storage.models import OrderRecord
from trademk.storage.risk_limits_repository import RiskLimitsRepository


class DeskUnavailable(Exception):
    """Trading cannot answer now (no execution worker, database still starting)."""


class OrderNotOpen(Exception):
    """The order exists but cannot be canceled (finished, or held by nobody)."""


@dataclass(frozen=True, slots=True)
class DeskState:
    """Trading state as the API shows it."""

    state: str
    reason: str
    venue: str
    open_orders: int
    denials_by_rule: dict[str, int] = field(default_factory=dict)


class TradingDesk(Protocol):
    """Everything the trading and risk routes do; see the module docstring."""

    def check(self, request: OrderRequest) -> None:
        """Raise ``ValueError`` when the request's terms cannot make an order."""
        ...

    async def send(self, request: OrderRequest) -> None: ...

    async def orders(
        self,
        *,
        limit: int,
        status: Sequence[str] | None,
        symbol: str | None,
        since: datetime | None,
        strategy_id: str | None,
    ) -> list[OrderRecord]: ...

    async def order(self, key: str) -> OrderRecord | None: ...

    async def cancel(self, record: OrderRecord) -> None: ...

    async def book(self) -> Portfolio:
        """The account's portfolio, marked at the latest prices."""
        ...

    async def state(self) -> DeskState: ...

    async def halt(self, reason: str, cancel_open_orders: bool) -> int: ...

    async def resume(self, reason: str) -> None: ...

    async def limits(self) -> RiskLimits: ...

    async def update_limits(self, limits: RiskLimits) -> None: ...


class StoredOrders:
    """Orders as the journal stored them: both desks list them the same way."""

    def __init__(self, records: OrderRecords) -> None:
        self._records = records

    async def orders(
        self,
        *,
        limit: int,
        status: Sequence[str] | None,
        symbol: str | None,
        since: datetime | None,
        strategy_id: str | None,
    ) -> list[OrderRecord]:
        records: list[OrderRecord] = await self._records.order_records(
            limit=limit, status=status, symbol=symbol, since=since, strategy_id=strategy_id
        )
        return records


class LocalDesk(StoredOrders):
    """The desk of a process that runs the trading core itself."""

    def __init__(
        self,
        trading: TradingCore,
        limits: RiskLimitsRepository,
        kill_switch: KillSwitchRepository,
    ) -> None:
        super().__init__(trading.repository)
        self.trading = trading
        self._limits = limits
        self._kill_switch = kill_switch

    def check(self, request: OrderRequest) -> None:
        self.trading.oms.build_order(request)

    async def send(self, request: OrderRequest) -> None:
        await self.trading.signals.put(request)

    async def order(self, key: str) -> OrderRecord | None:
        await self.trading.journal.flush()
        record: OrderRecord | None = await self.trading.repository.order_record(key)
        return record

    async def cancel(self, record: OrderRecord) -> None:
        try:
            await self.trading.oms.cancel(record.client_order_id)
        except KeyError:
            raise OrderNotOpen(f"order {record.client_order_id} is not open") from None
        except RejectedError as err:
            raise OrderNotOpen(str(err)) from None

    async def book(self) -> Portfolio:
        self.trading.mark_to_market()
        return self.trading.portfolio

    async def state(self) -> DeskState:
        risk = self.trading.risk
        return DeskState(
            state=str(risk.state),
            reason=risk.state_reason,
            venue=self.trading.oms.venue.name,
            open_orders=len(self.trading.oms.open_orders()),
            denials_by_rule={k: v for k, v in risk.denials_by_rule.items() if v},
        )

    async def halt(self, reason: str, cancel_open_orders: bool) -> int:
        await self._kill_switch.halt(reason)
        return await self.trading.halt(reason, cancel_open_orders=cancel_open_orders)

    async def resume(self, reason: str) -> None:
        await self._kill_switch.resume()
        self.trading.risk.resume(reason)

    async def limits(self) -> RiskLimits:
        return self.trading.risk.limits

    async def update_limits(self, limits: RiskLimits) -> None:
        await self._limits.save(limits)
        self.trading.update_limits(limits)
