"""An in-memory TickStore that honours batch ids and fails on command.

Failure modes, settable at any time by a test:

* ``down = True``: every write raises ``ConnectionError`` without committing.
* ``fail_next = n``: the next ``n`` writes raise without committing.
* ``fail_after_commit_next = n``: the next ``n`` writes commit, then raise, as
  when a connection drops before the commit acknowledgement arrives.
* ``hang = True``: writes block until ``hang`` is cleared with ``release()``
  (or the caller gives up and cancels).
* ``write_delay = s``: every write takes ``s`` seconds (a slow store).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from trademk.domain.market import Bar, Tick, TickKind, interval_nanos


class FlakyTickStore:
    """TickStore fake; ``rows`` holds committed ticks in commit order."""

    def __init__(self) -> None:
        self.rows: list[Tick] = []
        self.committed: list[tuple[str | None, int]] = []  # (batch_id, size) per commit
        self.committed_ids: set[str] = set()
        self.attempted_ids: list[str | None] = []
        self.write_calls = 0
        self.max_concurrent_writes = 0
        self.down = False
        self.fail_next = 0
        self.fail_after_commit_next = 0
        self.write_delay = 0.0
        self._active_writes = 0
        self._released = asyncio.Event()
        self._released.set()
        self.started = False

    # -- failure controls -------------------------------------------------

    @property
    def hang(self) -> bool:
        return not self._released.is_set()

    @hang.setter
    def hang(self, value: bool) -> None:
        if value:
            self._released.clear()
        else:
            self._released.set()

    def release(self) -> None:
        """Let hanging writes continue."""
        self.hang = False

    # -- TickStore --------------------------------------------------------

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.started = False

    async def write(self, batch: Sequence[Tick], batch_id: str | None = None) -> int:
        self.write_calls += 1
        self.attempted_ids.append(batch_id)
        self._active_writes += 1
        self.max_concurrent_writes = max(self.max_concurrent_writes, self._active_writes)
        try:
            await self._released.wait()
            if self.write_delay:
                await asyncio.sleep(self.write_delay)
            if self.down:
                raise ConnectionError("tick store is down")
            if self.fail_next > 0:
                self.fail_next -= 1
                raise ConnectionError("tick store write failed")
            if batch_id is not None and batch_id in self.committed_ids:
                return 0
            self.rows.extend(batch)
            self.committed.append((batch_id, len(batch)))
            if batch_id is not None:
                self.committed_ids.add(batch_id)
            if self.fail_after_commit_next > 0:
                self.fail_after_commit_next -= 1
                raise ConnectionError("connection lost after commit")
            return len(batch)
        finally:
            self._active_writes -= 1

    def _select(
        self, symbol: str, start: int | None, end: int | None, exchange: str | None
    ) -> list[Tick]:
        return [
            t
            for t in self.rows
            if t.symbol == symbol
            and (exchange is None or t.exchange == exchange)
            and (start is None or t.ts >= start)
            and (end is None or t.ts < end)
        ]

    async def ticks(
        self,
        symbol: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = 1000,
        exchange: str | None = None,
    ) -> list[Tick]:
        selected = self._select(symbol, start, end, exchange)
        selected.sort(key=lambda t: t.ts, reverse=True)
        return selected[:limit]

    async def latest(self, symbol: str, exchange: str | None = None) -> Tick | None:
        newest = await self.ticks(symbol, limit=1, exchange=exchange)
        return newest[0] if newest else None

    async def bars(
        self,
        symbol: str,
        interval: str,
        start: int | None = None,
        end: int | None = None,
        limit: int = 1000,
        exchange: str | None = None,
    ) -> list[Bar]:
        step = interval_nanos(interval)
        trades = [t for t in self._select(symbol, start, end, exchange) if t.kind == TickKind.TRADE]
        trades.sort(key=lambda t: t.ts)
        buckets: dict[int, list[Tick]] = {}
        for trade in trades:
            buckets.setdefault(trade.ts - trade.ts % step, []).append(trade)
        bars = []
        for open_ts, group in sorted(buckets.items()):
            volume = sum(t.qty for t in group)
            notional = sum(t.price * t.qty for t in group)
            bars.append(
                Bar(
                    symbol=symbol,
                    exchange=group[0].exchange,
                    interval=interval,
                    ts=open_ts,
                    open=group[0].price,
                    high=max(t.price for t in group),
                    low=min(t.price for t in group),
                    close=group[-1].price,
                    volume=volume,
                    vwap=notional / volume if volume else group[-1].price,
                    trades=len(group),
                )
            )
        return bars[-limit:]

    async def health(self) -> dict[str, Any]:
        if self.down:
            raise ConnectionError("tick store is down")
        return {"backend": "flaky-memory", "rows": len(self.rows)}
