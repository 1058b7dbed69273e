"""The write-behind journal: coalesced rounds, flush as a durability barrier, retries."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from decimal import Decimal

from trademk.domain.fills import Fill
from trademk.domain.orders import Order, OrderSide, OrderType
from trademk.domain.position import Position
from trademk.engine.journal_writer import JournalWriter


class RecordingJournal:
    def __init__(self, failures: int = 0) -> None:
        self.rounds: list[list[str]] = []
        self.failures = failures

    async def save(
        self,
        orders: Iterable[Order] = (),
        fills: Iterable[Fill] = (),
        positions: Iterable[Position] = (),
    ) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("database unreachable")
        self.rounds.append([order.client_order_id for order in orders])

    async def order(self, client_order_id: str) -> Order | None:
        return None

    async def open_orders(self) -> list[Order]:
        return []

    async def fills(self, venue: str | None = None) -> list[Fill]:
        return []

    async def client_order_ids(self) -> set[str]:
        return set()

    async def claim(self, order: Order) -> bool:
        return True


def _order(cid: str) -> Order:
    return Order(
        client_order_id=cid,
        symbol="BTCUSDT",
        side=OrderSide.BUY,
        type=OrderType.MARKET,
        qty=Decimal("0.1"),
        venue="paper",
        created_ns=1,
    )


async def test_changes_in_one_burst_are_written_in_one_round() -> None:
    journal = RecordingJournal()
    writer = JournalWriter(journal, coalesce=0.05)
    writer.start()
    for cid in ("a", "b", "c"):
        writer.order(_order(cid))
    async with asyncio.timeout(5):
        while not journal.rounds:
            await asyncio.sleep(0.01)
    await writer.stop()
    assert journal.rounds == [["a", "b", "c"]]


async def test_flush_does_not_wait_for_the_coalescing_pause() -> None:
    journal = RecordingJournal()
    writer = JournalWriter(journal, coalesce=30.0)
    writer.start()
    writer.order(_order("urgent"))
    async with asyncio.timeout(5):  # far below the 30 s pause: flush cut it short
        await writer.flush()
    assert journal.rounds == [["urgent"]]
    await writer.stop()


async def test_failed_rounds_are_retried_and_lose_nothing() -> None:
    journal = RecordingJournal(failures=2)
    writer = JournalWriter(journal, retry_initial=0.01, coalesce=0.0)
    writer.start()
    writer.order(_order("kept"))
    async with asyncio.timeout(5):
        await writer.flush()
    assert journal.rounds == [["kept"]]
    assert writer.write_errors == 2
    assert writer.status()["state"] == "running"
    await writer.stop()
