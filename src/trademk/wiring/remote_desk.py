"""The trading desk of ``trademk api``: trading happens in the execution workers.

- signals go onto the shared signal stream (one worker executes each);
- orders are read from the app database, where the workers journal them;
- the portfolio is the shared book (wiring/shared_book.py), read from the
  database the workers journal to;
- cancel, halt, resume and limit changes are commands to the workers
  (engine/control.py); the state is what their heartbeats report.

A halt is stored first, so it holds even for a worker that misses the command
or starts later; a limit change likewise (workers reload limits from the
database when told).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog

from trademk.domain.market import AssetClass
from trademk.domain.portfolio import Portfolio
from trademk.domain.risk import RiskLimits
from trademk.domain.signals import OrderRequest
from trademk.engine.clock import Clock
from trademk.engine.control import ControlClient, NoWorkerAnswered, Reply, WorkerSeen
from trademk.engine.signal_queue import SignalQueue
from trademk.storage.kill_switch_repository import KillSwitchRepository
from trademk.storage.models import OrderRecord
from trademk.storage.risk_limits_repository import RiskLimitsRepository
from trademk.storage.trading_repository import TradingRepository
from trademk.wiring.shared_book import SharedBook
from trademk.wiring.trading_desk import DeskState, DeskUnavailable, OrderNotOpen, StoredOrders

log = structlog.get_logger(__name__)

EXECUTION = "execution"
_STATE_RANK = {"active": 0, "reducing": 1, "halted": 2}


class RemoteDesk(StoredOrders):
    """See the module docstring."""

    def __init__(
        self,
        *,
        venue: str,
        clock: Clock,
        asset_classes: Mapping[str, AssetClass],
        signals: SignalQueue,
        control: ControlClient,
        book: SharedBook,
        orders: TradingRepository,
        limits: RiskLimitsRepository,
        kill_switch: KillSwitchRepository,
    ) -> None:
        super().__init__(orders)
        self.venue = venue
        self.clock = clock
        self.asset_classes = asset_classes
        self.signals = signals
        self.control = control
        self.shared_book = book
        self._orders = orders
        self._limits = limits
        self._kill_switch = kill_switch

    def check(self, request: OrderRequest) -> None:
        request.to_order(self.venue, self.clock.now_ns(), self.asset_classes.get(request.symbol))

    async def send(self, request: OrderRequest) -> None:
        await self.signals.put(request)

    async def order(self, key: str) -> OrderRecord | None:
        return await self._orders.order_record(key)

    async def cancel(self, record: OrderRecord) -> None:
        cid = record.client_order_id
        try:
            replies = await self.control.ask(EXECUTION, "cancel", {"client_order_id": cid})
        except NoWorkerAnswered as err:
            raise DeskUnavailable(str(err)) from None
        for reply in replies:
            if reply.handled and reply.ok:
                return
            if reply.handled:
                raise OrderNotOpen(reply.error or f"order {cid} cannot be canceled")
        raise OrderNotOpen(
            f"order {cid} is {record.status} in the journal but no running execution worker "
            "holds it open (the worker that sent it may have stopped; it reconciles on restart)"
        )

    def _workers(self) -> list[WorkerSeen]:
        workers = self.control.workers(EXECUTION)
        for worker in workers:
            cash = _decimal(worker.status.get("starting_cash"))
            if cash is not None:
                self.shared_book.know_starting_cash(cash)
                break
        return workers

    async def book(self) -> Portfolio:
        self._workers()
        await self.shared_book.catch_up()
        book = self.shared_book.portfolio()
        if book is None:
            await self.control.wait_for_workers(EXECUTION, 2.0)
            self._workers()
            book = self.shared_book.portfolio()
        if book is None:
            raise DeskUnavailable(
                "the account is not known yet: no execution worker has reported its starting "
                "cash (is `trademk worker --role execution` running?)"
            )
        return book

    async def state(self) -> DeskState:
        workers = self._workers() or await self.control.wait_for_workers(EXECUTION, 2.0)
        reports = [w.status.get("trading") for w in workers]
        trading = [r for r in reports if isinstance(r, Mapping)]
        if not trading:
            raise DeskUnavailable(
                "no execution worker has reported in the last "
                f"{self.control.alive_for:g} s: is `trademk worker --role execution` running?"
            )
        worst = max(trading, key=lambda r: _STATE_RANK.get(str(r.get("state")), 0))
        denials: dict[str, int] = {}
        for report in trading:
            for rule, count in (report.get("denials_by_rule") or {}).items():
                denials[rule] = denials.get(rule, 0) + int(count)
        return DeskState(
            state=str(worst.get("state", "active")),
            reason=str(worst.get("reason", "")),
            venue=self.venue,
            open_orders=sum(int(r.get("open_orders", 0)) for r in trading),
            denials_by_rule={k: v for k, v in denials.items() if v},
        )

    async def halt(self, reason: str, cancel_open_orders: bool) -> int:
        await self._kill_switch.halt(reason)
        replies = await self._tell_all(
            "halt", {"reason": reason, "cancel_open_orders": cancel_open_orders}
        )
        return sum(int(r.result.get("canceled", 0)) for r in replies if r.ok)

    async def resume(self, reason: str) -> None:
        await self._kill_switch.resume()
        await self._tell_all("resume", {"reason": reason})

    async def limits(self) -> RiskLimits:
        return await self._limits.load()

    async def update_limits(self, limits: RiskLimits) -> None:
        await self._limits.save(limits)
        await self._tell_all("limits", {})

    async def _tell_all(self, command: str, args: dict[str, Any]) -> list[Reply]:
        """Tell every live execution worker; a worker that misses it reads the database
        when it starts, so nobody answering is not an error."""
        try:
            replies = await self.control.ask(EXECUTION, command, args, want_all=True)
        except NoWorkerAnswered as err:
            log.warning(
                "command stored, no execution worker answered", command=command, why=str(err)
            )
            return []
        for reply in replies:
            if not reply.ok:
                log.warning(
                    "execution worker refused a command",
                    command=command,
                    worker=reply.instance,
                    error=reply.error,
                )
        return replies


def _decimal(value: object) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
