"""An execution worker's answers to the API, and its view of the other workers' fills.

Commands (engine/control.py, role ``execution``):

- ``cancel`` ``{client_order_id}``: the worker that holds the order open asks its
  venue to cancel; the others answer "not mine";
- ``halt`` ``{reason, cancel_open_orders}``: every worker halts (and cancels its
  open orders); ``{"canceled": n}``;
- ``resume`` ``{reason}``: every worker resumes;
- ``limits``: every worker reloads the risk limits from the database.

Heartbeats carry the worker's trading state, open orders, risk denials and
the account's starting cash.

``ForeignFills`` books the fills other workers produce into this worker's
portfolio (and, with the paper broker, into its paper venue's account), so
every worker checks risk (position size, exposure, daily loss) and buying power
against the whole account, not only the part it traded itself. At start the
worker read every stored fill already; this keeps it current (from the bus,
and from the database for any the bus lost).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from trademk.domain.errors import RejectedError
from trademk.domain.fills import Fill
from trademk.engine.bus import MessageBus
from trademk.engine.control import CommandHandler, CommandRefused, NotMine
from trademk.engine.fill_relay import FillFollower, StoredFills
from trademk.engine.oms import order_payload
from trademk.engine.trading import SharedAccountVenue, TradingCore
from trademk.storage.kill_switch_repository import KillSwitchRepository
from trademk.storage.risk_limits_repository import RiskLimitsRepository

log = structlog.get_logger(__name__)


def trading_status(trading: TradingCore) -> dict[str, Any]:
    """The heartbeat of an execution worker."""
    risk = trading.risk
    return {
        "trading": {
            "state": str(risk.state),
            "reason": risk.state_reason,
            "venue": trading.oms.venue.name,
            "open_orders": len(trading.oms.open_orders()),
            "denials_by_rule": {k: v for k, v in risk.denials_by_rule.items() if v},
        },
        "starting_cash": str(trading.portfolio.starting_cash),
        "signals": trading.signals.status(),
    }


def trading_command_handlers(
    trading: TradingCore, limits: RiskLimitsRepository
) -> dict[str, CommandHandler]:
    """The commands an execution worker runs for the API."""

    async def cancel(args: Mapping[str, Any]) -> Mapping[str, Any]:
        cid = str(args.get("client_order_id", ""))
        order = trading.oms.order(cid)
        if order is None:
            raise NotMine(cid)
        try:
            await trading.oms.cancel(cid)
        except RejectedError as err:
            raise CommandRefused("conflict", str(err)) from None
        except KeyError:
            raise NotMine(cid) from None
        return order_payload(order)

    async def halt(args: Mapping[str, Any]) -> Mapping[str, Any]:
        reason = str(args.get("reason") or "halted by an operator")
        canceled = await trading.halt(reason, bool(args.get("cancel_open_orders", True)))
        return {"canceled": canceled}

    async def resume(args: Mapping[str, Any]) -> Mapping[str, Any]:
        trading.risk.resume(str(args.get("reason") or "resumed by operator"))
        return {"state": str(trading.risk.state)}

    async def reload_limits(_args: Mapping[str, Any]) -> Mapping[str, Any]:
        trading.update_limits(await limits.load())
        return {"limits": trading.risk.limits.to_mapping()}

    return {"cancel": cancel, "halt": halt, "resume": resume, "limits": reload_limits}


async def honour_stored_halt(trading: TradingCore, kill_switch: KillSwitchRepository) -> None:
    """Halt at start when an operator halted the platform and has not resumed it."""
    reason = await kill_switch.halt_reason()
    if reason is not None:
        await trading.halt(reason, cancel_open_orders=False)
        log.warning("trading halted at start: the kill switch is on", reason=reason)


class ForeignFills:
    """Books the fills of other workers' orders into this worker's portfolio."""

    def __init__(self, bus: MessageBus, trading: TradingCore, stored: StoredFills) -> None:
        self.trading = trading
        self.booked = 0
        oms = trading.oms
        # A paper venue keeps an account of its own; decided once, not per fill.
        self._venue = oms.venue if isinstance(oms.venue, SharedAccountVenue) else None
        self.follower = FillFollower(
            bus,
            stored,
            oms.venue.name,
            self._book,
            # TradingCore.start booked every stored fill already.
            load_all=False,
            # The OMS books its own orders' fills the moment they happen.
            skip_order=lambda cid: oms.order(cid) is not None,
        )

    async def start(self) -> None:
        await self.follower.start()

    async def stop(self) -> None:
        await self.follower.stop()

    def _book(self, fill: Fill) -> None:
        if self.trading.portfolio.apply(fill):
            self.booked += 1
        if self._venue is not None:
            self._venue.book(fill)
