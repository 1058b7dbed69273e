"""Reconciliation: make the OMS agree with the venue after a start or a crash.

For every order the OMS believes open, the venue's report wins: fills the OMS
missed are applied (as one catch-up fill with a deterministic trade id, so a
second reconciliation never counts them twice) and final states are applied.
An order the venue never received is sent now under the same client_order_id.
Differences that cannot be explained — an open order at the venue the OMS does
not know, or positions that disagree after catching up — halt trading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import structlog

from trademk.domain.fills import Fill
from trademk.domain.order_events import (
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
)
from trademk.domain.orders import Order, OrderStatus
from trademk.domain.venue_reports import OrderReport
from trademk.engine.oms import OrderManager

log = structlog.get_logger(__name__)


@dataclass
class ReconciliationReport:
    checked: int = 0
    caught_up_fills: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    resubmitted: list[str] = field(default_factory=list)
    discrepancies: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.discrepancies


def catch_up_fill(order: Order, report: OrderReport, ts_ns: int) -> Fill | None:
    """The fill that brings ``order`` to the venue's filled quantity, if any is missing."""
    missing = report.filled_qty - order.filled_qty
    if missing <= 0 or report.avg_fill_price is None:
        return None
    known_notional = order.filled_qty * (order.avg_fill_price or Decimal(0))
    price = (report.filled_qty * report.avg_fill_price - known_notional) / missing
    return Fill(
        client_order_id=order.client_order_id,
        venue_order_id=report.venue_order_id,
        trade_id=f"reconcile-{report.venue_order_id}-{report.filled_qty}",
        symbol=order.symbol,
        side=order.side,
        qty=missing,
        price=price,
        fee=Decimal(0),
        ts_ns=ts_ns,
        venue=order.venue,
        strategy_id=order.strategy_id,
    )


def _closing_event(order: Order, report: OrderReport, ts_ns: int) -> OrderEvent | None:
    cid = order.client_order_id
    if report.status is OrderStatus.CANCELED:
        return OrderCanceled(cid, ts_ns, "canceled at the venue")
    if report.status is OrderStatus.EXPIRED:
        return OrderExpired(cid, ts_ns)
    if report.status is OrderStatus.REJECTED and order.status is OrderStatus.SUBMITTED:
        return OrderRejected(cid, ts_ns, "rejected at the venue")
    return None


class Reconciler:
    """Runs reconciliation for one OMS against its venue."""

    def __init__(self, oms: OrderManager) -> None:
        self.oms = oms

    async def run(self) -> ReconciliationReport:
        report = ReconciliationReport()
        venue = self.oms.venue
        venue_open = {r.client_order_id: r for r in await venue.order_reports(open_only=True)}
        for order in self.oms.open_orders():
            report.checked += 1
            found = venue_open.pop(order.client_order_id, None) or await venue.order_report(
                order.client_order_id
            )
            if found is None:
                await self.oms.resend(order)
                report.resubmitted.append(order.client_order_id)
                continue
            self._catch_up(order, found, report)
        for cid, unknown in venue_open.items():
            report.discrepancies.append(
                f"the venue has open order {cid} ({unknown.symbol}) that the OMS does not know"
            )
        report.discrepancies.extend(await self._position_differences())
        if report.clean:
            log.info("reconciled", **_summary(report))
        else:
            log.error("reconciliation found differences it cannot explain", **_summary(report))
        return report

    def _catch_up(self, order: Order, found: OrderReport, report: ReconciliationReport) -> None:
        now = self.oms.clock.now_ns()
        cid = order.client_order_id
        if (
            order.venue_order_id is None
            and order.status is OrderStatus.SUBMITTED
            and (found.status is not OrderStatus.REJECTED)
        ):
            self.oms.apply(OrderAccepted(cid, now, found.venue_order_id))
        fill = catch_up_fill(order, found, now)
        if fill is not None:
            self.oms.apply(OrderFilled.of(fill))
            report.caught_up_fills.append(cid)
        closing = _closing_event(order, found, now)
        if closing is not None and order.is_open:
            self.oms.apply(closing)
            report.closed.append(cid)

    async def _position_differences(self) -> list[str]:
        venue = self.oms.venue
        theirs = {p.symbol: p.qty for p in await venue.position_reports() if p.qty}
        ours = {
            p.symbol: p.qty
            for p in self.oms.portfolio.open_positions()
            if p.venue == venue.name and p.qty
        }
        zero = Decimal(0)
        return [
            f"{symbol}: the venue holds {theirs.get(symbol, zero)}, "
            f"the OMS holds {ours.get(symbol, zero)}"
            for symbol in sorted(theirs.keys() | ours.keys())
            if theirs.get(symbol, zero) != ours.get(symbol, zero)
        ]


def _summary(report: ReconciliationReport) -> dict[str, object]:
    return {
        "checked": report.checked,
        "caught_up_fills": len(report.caught_up_fills),
        "closed": len(report.closed),
        "resubmitted": len(report.resubmitted),
        "discrepancies": report.discrepancies,
    }
