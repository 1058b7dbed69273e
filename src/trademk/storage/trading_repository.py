"""Orders, fills and positions in the app database, mapped to and from the domain."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Select, func, select, update
from sqlalchemy import Table as SATable
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trademk.domain.fills import Fill, OrderSide
from trademk.domain.order_events import (
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderPendingCancel,
    OrderRejected,
    OrderSubmitted,
)
from trademk.domain.orders import OPEN_STATUSES, Order, OrderStatus, OrderType, TimeInForce
from trademk.domain.position import Position
from trademk.engine.clock import datetime_to_ns, ns_to_datetime
from trademk.storage.database import transaction
from trademk.storage.models import Base, FillRecord, OrderRecord, PositionRecord

_CLOSING_EVENTS = {
    OrderStatus.CANCELED: OrderCanceled,
    OrderStatus.EXPIRED: OrderExpired,
    OrderStatus.PENDING_CANCEL: OrderPendingCancel,
}


_ORDER_IDENTITY = frozenset({"client_order_id", "created_at"})


def _dt(ns: int | None) -> datetime | None:
    return None if ns is None else ns_to_datetime(ns)


def _order_values(order: Order) -> dict[str, object]:
    return {
        "client_order_id": order.client_order_id,
        "venue": order.venue,
        "venue_order_id": order.venue_order_id,
        "symbol": order.symbol,
        "side": str(order.side),
        "type": str(order.type),
        "time_in_force": str(order.time_in_force),
        "qty": order.qty,
        "price": order.limit_price,
        "stop_price": order.stop_price,
        "filled_qty": order.filled_qty,
        "filled_avg_price": order.avg_fill_price,
        "status": str(order.status),
        "strategy_id": order.strategy_id,
        "reason": order.reason or None,
        "submitted_at": _dt(order.submitted_ns),
        "filled_at": _dt(order.last_fill_ns) if order.status is OrderStatus.FILLED else None,
        "cancelled_at": _dt(order.canceled_ns),
        "created_at": ns_to_datetime(order.created_ns),
    }


def _table(model: type[Base]) -> SATable:
    """The Core table behind a mapped class (for executemany upserts)."""
    table = model.__table__
    assert isinstance(table, SATable)
    return table


def _fill_values(fill: Fill) -> dict[str, object]:
    return {
        "client_order_id": fill.client_order_id,
        "venue_order_id": fill.venue_order_id,
        "trade_id": fill.trade_id,
        "venue": fill.venue,
        "symbol": fill.symbol,
        "side": str(fill.side),
        "qty": fill.qty,
        "price": fill.price,
        "fee": fill.fee,
        "liquidity": fill.liquidity,
        "strategy_id": fill.strategy_id,
        "ts": ns_to_datetime(fill.ts_ns),
    }


def _position_values(position: Position) -> dict[str, object]:
    return {
        "symbol": position.symbol,
        "venue": position.venue,
        "qty": position.qty,
        "avg_price": position.avg_price,
        "realized_pnl": position.realized_pnl,
        "unrealized_pnl": position.unrealized_pnl,
        "last_price": position.last_price,
        "market_value": position.market_value,
        "cost_basis": position.cost_basis,
        "last_price_updated": _dt(position.updated_ns),
    }


def _fill_of(record: FillRecord) -> Fill:
    return Fill(
        client_order_id=record.client_order_id,
        venue_order_id=record.venue_order_id,
        trade_id=record.trade_id,
        symbol=record.symbol,
        side=OrderSide(record.side),
        qty=record.qty,
        price=record.price,
        fee=record.fee,
        ts_ns=datetime_to_ns(record.ts),
        venue=record.venue,
        strategy_id=record.strategy_id,
        liquidity=record.liquidity,  # type: ignore[arg-type]
    )


def restore_order(record: OrderRecord, fills: Sequence[Fill]) -> Order:
    """Rebuild a domain order by replaying the events its stored state implies."""
    order = Order(
        client_order_id=record.client_order_id,
        symbol=record.symbol,
        side=OrderSide(record.side),
        type=OrderType(record.type),
        qty=record.qty,
        venue=record.venue,
        created_ns=datetime_to_ns(record.created_at),
        limit_price=record.price,
        stop_price=record.stop_price,
        time_in_force=TimeInForce(record.time_in_force),
        strategy_id=record.strategy_id,
    )
    status = OrderStatus(record.status)
    cid = record.client_order_id
    ts = datetime_to_ns(record.updated_at)
    if status is OrderStatus.INITIALIZED:
        return order
    if status is OrderStatus.DENIED:
        order.apply(OrderDenied(cid, ts, record.reason or "denied"))
        return order
    submitted_ns = datetime_to_ns(record.submitted_at) if record.submitted_at else ts
    order.apply(OrderSubmitted(cid, submitted_ns))
    if status is OrderStatus.REJECTED:
        order.apply(OrderRejected(cid, ts, record.reason or "rejected"))
        return order
    if record.venue_order_id:
        order.apply(OrderAccepted(cid, submitted_ns, record.venue_order_id))
    for fill in sorted(fills, key=lambda f: f.ts_ns):
        order.apply(OrderFilled.of(fill))
    closing = _CLOSING_EVENTS.get(status)
    if closing is OrderCanceled:
        order.apply(OrderCanceled(cid, ts, record.reason or ""))
    elif closing is not None:
        order.apply(closing(cid, ts))
    return order


SAVE_CHUNK = 16
_T = TypeVar("_T")


def _chunks(items: Iterable[_T]) -> Iterator[list[_T]]:
    chunk: list[_T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == SAVE_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class TradingRepository:
    """Durable orders, fills and positions. Every write is an idempotent upsert."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        dialect = sessions.kw["bind"].dialect.name
        self._insert = pg_insert if dialect == "postgresql" else sqlite_insert
        # Built once: the journal writes with them every few milliseconds.
        self._save_orders = self._upsert(OrderRecord, ("client_order_id",), _ORDER_IDENTITY)
        self._save_fills = self._insert(_table(FillRecord)).on_conflict_do_nothing(
            index_elements=["venue", "trade_id"]
        )
        self._save_positions = self._upsert(PositionRecord, ("symbol", "venue"), frozenset())

    async def save(
        self,
        orders: Iterable[Order] = (),
        fills: Iterable[Fill] = (),
        positions: Iterable[Position] = (),
    ) -> None:
        """Write orders (latest state), new fills and positions in one transaction.

        Many rows per statement: the write-behind journal calls this with whatever
        accumulated, so the cost is per round, not per row. Rows are built and
        sent in chunks of ``SAVE_CHUNK``: building and binding them is Python work
        on the event loop, and between chunks the loop serves the trading path
        instead of waiting for a whole round.
        """
        async with transaction(self.sessions) as session:
            for order_chunk in _chunks(orders):
                await session.execute(self._save_orders, [_order_values(o) for o in order_chunk])
            for fill_chunk in _chunks(fills):
                await session.execute(self._save_fills, [_fill_values(f) for f in fill_chunk])
            for position_chunk in _chunks(positions):
                await session.execute(
                    self._save_positions, [_position_values(p) for p in position_chunk]
                )

    def _upsert(self, model: type[Base], keys: tuple[str, ...], keep: frozenset[str]) -> Any:
        """INSERT ... ON CONFLICT (keys) DO UPDATE every column but the keys and ``keep``."""
        table = _table(model)
        stmt = self._insert(table)
        fixed = {*keys, *keep, "id", "created_at", "updated_at"}
        updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in fixed}
        return stmt.on_conflict_do_update(index_elements=list(keys), set_=updates)

    async def _orders(self, query: Select[OrderRecord]) -> list[Order]:
        async with self.sessions() as session:
            records = (await session.scalars(query)).all()
            ids = [r.client_order_id for r in records]
            fill_rows = (
                await session.scalars(select(FillRecord).where(FillRecord.client_order_id.in_(ids)))
            ).all()
        by_order: dict[str, list[Fill]] = defaultdict(list)
        for row in fill_rows:
            by_order[row.client_order_id].append(_fill_of(row))
        return [restore_order(r, by_order[r.client_order_id]) for r in records]

    async def order(self, client_order_id: str) -> Order | None:
        found = await self._orders(
            select(OrderRecord).where(OrderRecord.client_order_id == client_order_id)
        )
        return found[0] if found else None

    async def open_orders(self) -> list[Order]:
        statuses = [str(s) for s in OPEN_STATUSES]
        return await self._orders(select(OrderRecord).where(OrderRecord.status.in_(statuses)))

    async def claim(self, order: Order) -> bool:
        """Insert ``order`` unless its client_order_id is stored; True if this call stored it.

        Several execution workers may take the same signal (a redelivery after a
        worker stalled); the unique client_order_id lets exactly one of them go on.
        """
        async with transaction(self.sessions) as session:
            inserted = await session.execute(
                self._insert(OrderRecord)
                # Stamped with the claimer's clock, as ``take_over`` compares and stamps.
                .values(**_order_values(order), updated_at=ns_to_datetime(order.created_ns))
                .on_conflict_do_nothing(index_elements=["client_order_id"])
                .returning(OrderRecord.client_order_id)
            )
            return inserted.first() is not None

    async def take_over(self, client_order_id: str, now_ns: int, stale_ns: int) -> bool:
        """Take an order another worker claimed but never sent: True for exactly one
        caller, and only while it is still INITIALIZED and untouched for ``stale_ns``
        (its worker died between claiming and sending). Taking it stamps it
        ``now_ns``, so it is fresh again for everyone else."""
        async with transaction(self.sessions) as session:
            taken = await session.execute(
                update(OrderRecord)
                .where(
                    OrderRecord.client_order_id == client_order_id,
                    OrderRecord.status == str(OrderStatus.INITIALIZED),
                    OrderRecord.updated_at < ns_to_datetime(now_ns - stale_ns),
                )
                .values(updated_at=ns_to_datetime(now_ns))
                .returning(OrderRecord.client_order_id)
            )
            return taken.first() is not None

    async def client_order_ids(self) -> set[str]:
        """Every client_order_id ever stored (the OMS's idempotency memory across restarts)."""
        async with self.sessions() as session:
            return set((await session.scalars(select(OrderRecord.client_order_id))).all())

    async def fills(self, venue: str | None = None) -> list[Fill]:
        query = select(FillRecord).order_by(FillRecord.ts, FillRecord.created_at)
        if venue is not None:
            query = query.where(FillRecord.venue == venue)
        async with self.sessions() as session:
            return [_fill_of(row) for row in (await session.scalars(query)).all()]

    async def fills_recorded_since(
        self, venue: str, since: datetime | None
    ) -> tuple[list[Fill], datetime | None]:
        """Fills of ``venue`` stored at or after ``since`` (all when None), oldest first,
        and the newest storage time among them (the database's clock, not ours)."""
        query = select(FillRecord).where(FillRecord.venue == venue)
        if since is not None:
            query = query.where(FillRecord.created_at >= since)
        query = query.order_by(FillRecord.ts, FillRecord.created_at)
        async with self.sessions() as session:
            rows = (await session.scalars(query)).all()
        newest = max((row.created_at for row in rows), default=None)
        return [_fill_of(row) for row in rows], newest

    async def newest_fill_recorded(self, venue: str) -> datetime | None:
        """When the newest fill of ``venue`` was stored (the database's clock), if any."""
        async with self.sessions() as session:
            newest: datetime | None = await session.scalar(
                select(func.max(FillRecord.created_at)).where(FillRecord.venue == venue)
            )
        return newest

    async def order_records(
        self,
        limit: int = 100,
        status: Sequence[str] | None = None,
        symbol: str | None = None,
        since: datetime | None = None,
        strategy_id: str | None = None,
    ) -> list[OrderRecord]:
        """Stored orders, newest first, for the API."""
        query = select(OrderRecord).order_by(OrderRecord.created_at.desc()).limit(limit)
        if status:
            query = query.where(OrderRecord.status.in_(list(status)))
        if symbol:
            query = query.where(OrderRecord.symbol == symbol)
        if since is not None:
            query = query.where(OrderRecord.created_at >= since)
        if strategy_id:
            query = query.where(OrderRecord.strategy_id == strategy_id)
        async with self.sessions() as session:
            return list((await session.scalars(query)).all())

    async def order_record(self, key: str) -> OrderRecord | None:
        """By client_order_id, venue order id or row id."""
        async with self.sessions() as session:
            return await session.scalar(
                select(OrderRecord).where(
                    (OrderRecord.client_order_id == key) | (OrderRecord.venue_order_id == key)
                )
            )

    async def position_records(self, include_closed: bool = False) -> list[PositionRecord]:
        query = select(PositionRecord).order_by(PositionRecord.symbol)
        if not include_closed:
            query = query.where(PositionRecord.qty != Decimal(0))
        async with self.sessions() as session:
            return list((await session.scalars(query)).all())
