"""SignalQueue contract: the in-process queue and the Redis Streams queue (DESIGN.md §3, §5).

One difference is declared, not hidden: ``redelivers_failed``. The Redis queue
leaves a signal whose handler raised unacknowledged and hands it out again (after
``claim_idle_ms``); the in-process queue counts it as failed and moves on (there is
no other worker to take it over, and the caller sees the failure in ``status()``).
Everything else — order, exact round trip, counters — is the same.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from trademk.domain.orders import OrderSide, OrderType, TimeInForce
from trademk.domain.signals import OrderRequest
from trademk.engine.signal_queue import InProcessSignalQueue, SignalHandler
from trademk.messaging.redis_signals import RedisSignalQueue
from trademk.venues.reconnect import ExponentialBackoff

BACKENDS = ["in-process", "redis"]


async def wait_until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


@dataclass
class QueueUnderTest:
    """One queue implementation plus what the suite needs to drive it."""

    backend: str
    queue: Any
    redelivers_failed: bool
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, handler: SignalHandler) -> None:
        self.tasks.append(asyncio.create_task(self.queue.consume(handler)))

    async def status(self) -> dict[str, Any]:
        if isinstance(self.queue, RedisSignalQueue):
            return await self.queue.refresh_status()
        return dict(self.queue.status())

    async def status_until(
        self, predicate: Callable[[dict[str, Any]], bool], within: float = 10.0
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not predicate(status := await self.status()):
            if loop.time() > deadline:
                raise AssertionError(f"status never matched: {status}")
            await asyncio.sleep(0.01)
        return status

    async def close(self) -> None:
        if isinstance(self.queue, RedisSignalQueue):
            await self.queue.stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(backend name, Redis URL); resolved outside the event loop."""
    if request.param == "redis":
        return "redis", request.getfixturevalue("redis_url")
    return request.param, None


@pytest.fixture
async def subject(
    backend: tuple[str, str | None], unique_name: str
) -> AsyncIterator[QueueUnderTest]:
    name, redis_url = backend
    if redis_url is None:
        harness = QueueUnderTest(name, InProcessSignalQueue(), redelivers_failed=False)
        yield harness
        await harness.close()
        return
    client = aioredis.from_url(redis_url)
    queue = RedisSignalQueue(
        client,
        stream=f"{unique_name}:signals",
        group="execution",
        consumer="contract-worker",
        claim_idle_ms=100,
        block_ms=50,
        backoff=ExponentialBackoff(0.01, 0.1),
    )
    harness = QueueUnderTest("redis", queue, redelivers_failed=RedisSignalQueue.redelivers_failed)
    try:
        yield harness
    finally:
        await harness.close()
        await client.delete(queue.stream, queue.dead_letter_stream)
        await client.aclose()


def make_request(n: int) -> OrderRequest:
    return OrderRequest(
        client_order_id=f"coid-{n}", symbol="BTCUSDT", side=OrderSide.BUY, qty=Decimal("0.5")
    )


def recorder(handled: list[OrderRequest]) -> Callable[[OrderRequest], Awaitable[None]]:
    async def handle(request: OrderRequest) -> None:
        handled.append(request)

    return handle


async def test_signals_are_handled_in_the_order_they_were_put(subject: QueueUnderTest) -> None:
    handled: list[OrderRequest] = []
    for n in range(20):
        await subject.queue.put(make_request(n))
    subject.start(recorder(handled))
    await wait_until(lambda: len(handled) == 20)
    for n in range(20, 25):
        await subject.queue.put(make_request(n))
    await wait_until(lambda: len(handled) == 25)

    assert [r.client_order_id for r in handled] == [f"coid-{n}" for n in range(25)]


async def test_handler_receives_the_exact_order_request(subject: QueueUnderTest) -> None:
    sent = [
        OrderRequest(
            client_order_id="rt-limit",
            symbol="BTCUSDT",
            side=OrderSide.BUY,
            qty=Decimal("0.00012300"),
            type=OrderType.LIMIT,
            limit_price=Decimal("64123.4500"),
            time_in_force=TimeInForce.IOC,
            strategy_id="sma-cross",
            reason="fast SMA crossed above slow",
        ),
        OrderRequest("rt-bare", "AAPL", OrderSide.SELL, Decimal("100")),
        OrderRequest(
            client_order_id="rt-stop-limit",
            symbol="ETH/USD",
            side=OrderSide.SELL,
            qty=Decimal("1E-8"),
            type=OrderType.STOP_LIMIT,
            limit_price=Decimal("2999.99"),
            stop_price=Decimal("3000.1"),
            time_in_force=TimeInForce.GTC,
            reason="stop — ünïcode ✓",
        ),
    ]
    handled: list[OrderRequest] = []
    for request in sent:
        await subject.queue.put(request)
    subject.start(recorder(handled))
    await wait_until(lambda: len(handled) == len(sent))

    assert handled == sent
    # Equal Decimals can differ in exponent; the wire must keep it exactly.
    assert [str(r.qty) for r in handled] == ["0.00012300", "100", "1E-8"]
    assert [str(r.limit_price) for r in handled] == ["64123.4500", "None", "2999.99"]
    assert handled[1].time_in_force is None
    assert handled[1].strategy_id is None
    assert handled[1].reason is None
    assert handled[1].stop_price is None


async def test_a_failing_handler_neither_stalls_the_queue_nor_loses_the_signal_silently(
    subject: QueueUnderTest,
) -> None:
    attempts: Counter[str] = Counter()

    async def flaky(request: OrderRequest) -> None:
        attempts[request.client_order_id] += 1
        if request.client_order_id == "coid-1" and attempts["coid-1"] == 1:
            raise RuntimeError("venue hiccup")

    for n in range(3):
        await subject.queue.put(make_request(n))
    subject.start(flaky)

    if subject.redelivers_failed:
        await wait_until(lambda: attempts["coid-1"] == 2)
        status = await subject.status_until(lambda s: s["pending"] == 0)
        assert status["executed"] == 3
    else:
        await subject.queue.drain()
        status = await subject.status()
        assert status["executed"] == 2
    assert status["failed"] == 1
    expected_retries = 2 if subject.redelivers_failed else 1
    assert attempts == {"coid-0": 1, "coid-1": expected_retries, "coid-2": 1}


async def test_status_reports_backend_and_counts(subject: QueueUnderTest) -> None:
    handled: list[OrderRequest] = []
    for n in range(3):
        await subject.queue.put(make_request(n))

    before = await subject.status()
    assert before["backend"] == subject.backend
    assert (before["received"], before["pending"], before["executed"], before["failed"]) == (
        3,
        3,
        0,
        0,
    )

    subject.start(recorder(handled))
    after = await subject.status_until(lambda s: s["executed"] == 3 and s["pending"] == 0)
    assert (after["received"], after["failed"]) == (3, 0)
    assert len(handled) == 3
