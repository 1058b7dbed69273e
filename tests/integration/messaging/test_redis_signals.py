"""RedisSignalQueue on the real Redis: sharing, retries, dead letters, outages, shutdown.

The multi-process acceptance test (SIGKILL of a worker) is in
test_redis_signal_workers.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tests.fakes.tcp_proxy import TcpProxy
from trademk.domain.errors import TransientError
from trademk.domain.orders import OrderSide
from trademk.domain.signals import OrderRequest
from trademk.messaging.redis_signals import RedisSignalQueue
from trademk.venues.reconnect import ExponentialBackoff

pytestmark = pytest.mark.redis

GROUP = "execution"


async def wait_until(predicate: Callable[[], bool], within: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


async def wait_for_value(
    probe: Callable[[], Awaitable[Any]], expected: Any, within: float = 15.0
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (value := await probe()) != expected:
        if loop.time() > deadline:
            raise AssertionError(f"expected {expected!r}, still {value!r}")
        await asyncio.sleep(0.01)


def make_request(n: int, prefix: str = "coid") -> OrderRequest:
    return OrderRequest(f"{prefix}-{n:04d}", "BTCUSDT", OrderSide.BUY, Decimal("0.01"))


def make_queue(
    client: aioredis.Redis, stream: str, consumer: str, **options: Any
) -> RedisSignalQueue:
    settings: dict[str, Any] = {
        "claim_idle_ms": 200,
        "block_ms": 50,
        "batch": 16,
        "backoff": ExponentialBackoff(0.01, 0.1),
    }
    settings.update(options)
    return RedisSignalQueue(client, stream=stream, group=GROUP, consumer=consumer, **settings)


@contextlib.asynccontextmanager
async def consuming(
    queue: RedisSignalQueue, handler: Callable[[OrderRequest], Awaitable[None]]
) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(queue.consume(handler))
    try:
        yield task
    finally:
        await queue.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def recorder(handled: list[str]) -> Callable[[OrderRequest], Awaitable[None]]:
    async def handle(request: OrderRequest) -> None:
        handled.append(request.client_order_id)

    return handle


@pytest.fixture
async def stream(redis_client: aioredis.Redis, unique_name: str) -> AsyncIterator[str]:
    name = f"{unique_name}:signals"
    yield name
    await redis_client.delete(name, f"{name}:dead")


async def unacknowledged(client: aioredis.Redis, stream: str) -> int:
    return int((await client.xpending(stream, GROUP))["pending"])


async def test_two_consumers_in_one_group_handle_each_signal_exactly_once(
    redis_client: aioredis.Redis, stream: str
) -> None:
    producer = make_queue(redis_client, stream, "producer")
    first = make_queue(redis_client, stream, "worker-1", claim_idle_ms=30_000)
    second = make_queue(redis_client, stream, "worker-2", claim_idle_ms=30_000)
    by_worker: dict[str, list[str]] = {"worker-1": [], "worker-2": []}

    async with (
        consuming(first, recorder(by_worker["worker-1"])),
        consuming(second, recorder(by_worker["worker-2"])),
    ):
        for n in range(1000):
            await producer.put(make_request(n))
        await wait_until(lambda: sum(map(len, by_worker.values())) >= 1000)
        await wait_for_value(lambda: unacknowledged(redis_client, stream), 0)

    handled = by_worker["worker-1"] + by_worker["worker-2"]
    assert len(handled) == 1000
    assert set(handled) == {f"coid-{n:04d}" for n in range(1000)}
    assert by_worker["worker-1"] and by_worker["worker-2"]
    assert first.counters.claimed == second.counters.claimed == 0
    assert first.counters.executed + second.counters.executed == 1000


async def test_a_poison_signal_is_dead_lettered_after_max_deliveries_attempts(
    redis_client: aioredis.Redis, stream: str
) -> None:
    queue = make_queue(redis_client, stream, "worker", claim_idle_ms=100, max_deliveries=3)
    attempts: Counter[str] = Counter()

    async def handler(request: OrderRequest) -> None:
        attempts[request.client_order_id] += 1
        if request.client_order_id == "poison":
            raise ValueError("no such symbol at the venue")

    await queue.put(make_request(1))
    await queue.put(OrderRequest("poison", "NOPE", OrderSide.SELL, Decimal("1")))
    await queue.put(make_request(2))
    poison_id = (await redis_client.xrange(stream))[1][0].decode()

    async with consuming(queue, handler):
        await wait_for_value(lambda: redis_client.xlen(queue.dead_letter_stream), 1)
        await wait_for_value(lambda: unacknowledged(redis_client, stream), 0)
        status = await queue.refresh_status()

    [(_, dead)] = await redis_client.xrange(queue.dead_letter_stream)
    assert dead[b"client_order_id"] == b"poison"
    assert dead[b"dead_id"].decode() == poison_id
    assert dead[b"dead_error"] == b"ValueError: no such symbol at the venue"
    assert dead[b"dead_deliveries"] == b"3"
    assert dead[b"dead_consumer"] == b"worker"
    assert attempts == {"coid-0001": 1, "poison": 3, "coid-0002": 1}
    assert (status["failed"], status["dead_lettered"], status["executed"]) == (3, 1, 2)
    assert (status["dead_letter_length"], status["pending"]) == (1, 0)


async def test_an_undecodable_signal_is_dead_lettered_without_reaching_the_handler(
    redis_client: aioredis.Redis, stream: str
) -> None:
    queue = make_queue(redis_client, stream, "worker")
    handled: list[str] = []
    await redis_client.xadd(stream, {"symbol": "BTCUSDT", "qty": "1"})
    await redis_client.xadd(
        stream, {"client_order_id": "bad-side", "symbol": "X", "side": "sideways", "qty": "1"}
    )
    await queue.put(make_request(7))

    async with consuming(queue, recorder(handled)):
        await wait_for_value(lambda: redis_client.xlen(queue.dead_letter_stream), 2)
        await wait_until(lambda: handled == ["coid-0007"])
        await wait_for_value(lambda: unacknowledged(redis_client, stream), 0)

    dead = [fields for _, fields in await redis_client.xrange(queue.dead_letter_stream)]
    assert all(fields[b"dead_error"].startswith(b"undecodable signal") for fields in dead)
    assert [fields[b"dead_deliveries"] for fields in dead] == [b"1", b"1"]
    assert dead[1][b"client_order_id"] == b"bad-side"
    assert queue.counters.failed == 0


async def test_a_signal_that_killed_its_workers_max_deliveries_times_is_not_tried_again(
    redis_client: aioredis.Redis, stream: str
) -> None:
    queue = make_queue(redis_client, stream, "survivor", claim_idle_ms=100, max_deliveries=3)
    handled: list[str] = []
    await queue.put(make_request(1, prefix="crasher"))
    await redis_client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    [[_, [(entry_id, _)]]] = await redis_client.xreadgroup(GROUP, "ghost", {stream: ">"}, count=1)
    for _ in range(2):  # two more workers took it over and died
        await redis_client.xclaim(stream, GROUP, "ghost", 0, [entry_id])
    [pending] = await redis_client.xpending_range(stream, GROUP, "-", "+", 1)
    assert pending["times_delivered"] == 3

    async with consuming(queue, recorder(handled)):
        await wait_for_value(lambda: redis_client.xlen(queue.dead_letter_stream), 1)

    [(_, dead)] = await redis_client.xrange(queue.dead_letter_stream)
    assert dead[b"dead_error"] == b"delivered 3 times without being acknowledged"
    assert handled == []
    assert await unacknowledged(redis_client, stream) == 0


async def test_the_consumer_reconnects_after_its_connection_is_cut_and_loses_nothing(
    redis_client: aioredis.Redis, stream: str
) -> None:
    server = redis_client.connection_pool.connection_kwargs
    handled: list[str] = []

    async def slow_handler(request: OrderRequest) -> None:
        await asyncio.sleep(0.001)
        handled.append(request.client_order_id)

    async with TcpProxy(server["host"], server.get("port", 6379)) as proxy:
        through_proxy = aioredis.from_url(
            f"redis://127.0.0.1:{proxy.port}/0", retry=Retry(NoBackoff(), 0)
        )
        producer = make_queue(redis_client, stream, "producer")
        queue = make_queue(through_proxy, stream, "worker", claim_idle_ms=300)
        for n in range(300):
            await producer.put(make_request(n))
        try:
            async with consuming(queue, slow_handler):
                await wait_until(lambda: len(handled) >= 100)
                await proxy.cut()
                for n in range(300, 600):
                    await producer.put(make_request(n))
                await wait_until(lambda: queue.counters.reconnects >= 1)
                assert queue.status()["state"] == "degraded"
                await proxy.restore()
                await wait_until(lambda: len(set(handled)) == 600)
                await wait_for_value(lambda: unacknowledged(redis_client, stream), 0)
                assert queue.status()["state"] == "running"
                assert queue.connected
        finally:
            await through_proxy.aclose()

    assert set(handled) == {f"coid-{n:04d}" for n in range(600)}
    # At-least-once: only a signal whose XACK was cut off can come twice.
    assert len(handled) - 600 <= 1


async def test_a_killed_client_connection_is_reopened_without_losing_signals(
    redis_client: aioredis.Redis, stream: str, unique_name: str
) -> None:
    url = "redis://{host}:{port}/0".format(**redis_client.connection_pool.connection_kwargs)
    consumer_client = aioredis.from_url(url, client_name=unique_name, retry=Retry(NoBackoff(), 0))
    producer = make_queue(redis_client, stream, "producer")
    queue = make_queue(consumer_client, stream, "worker")
    handled: list[str] = []
    try:
        async with consuming(queue, recorder(handled)):
            for n in range(50):
                await producer.put(make_request(n))
            await wait_until(lambda: len(handled) == 50)
            ours = [c["id"] for c in await redis_client.client_list() if c["name"] == unique_name]
            assert ours
            for client_id in ours:
                await redis_client.client_kill_filter(_id=client_id)
            for n in range(50, 100):
                await producer.put(make_request(n))
            await wait_until(lambda: len(set(handled)) == 100)
            await wait_until(lambda: queue.counters.reconnects >= 1)
    finally:
        await consumer_client.aclose()

    assert set(handled) == {f"coid-{n:04d}" for n in range(100)}


async def test_stop_finishes_the_handler_in_flight_and_leaves_the_rest_unacknowledged(
    redis_client: aioredis.Redis, stream: str
) -> None:
    stopping = make_queue(redis_client, stream, "stopping")
    handled: list[str] = []
    entered, release = asyncio.Event(), asyncio.Event()

    async def blocking(request: OrderRequest) -> None:
        entered.set()
        await release.wait()
        handled.append(request.client_order_id)

    for n in range(3):
        await stopping.put(make_request(n))
    task = asyncio.create_task(stopping.consume(blocking))
    await entered.wait()
    stop = asyncio.create_task(stopping.stop())
    await asyncio.sleep(0.05)
    assert not stop.done()
    release.set()
    await stop
    await task  # consume() returns after stop()

    assert handled == ["coid-0000"]
    assert stopping.status()["state"] == "stopped"
    held = await redis_client.xpending_range(stream, GROUP, "-", "+", 10)
    assert [(p["consumer"], p["times_delivered"]) for p in held] == [(b"stopping", 1)] * 2

    successor = make_queue(redis_client, stream, "successor", claim_idle_ms=50)
    async with consuming(successor, recorder(handled)):
        await wait_until(lambda: len(handled) == 3)
        await wait_for_value(lambda: unacknowledged(redis_client, stream), 0)
    assert handled == ["coid-0000", "coid-0001", "coid-0002"]
    assert successor.counters.claimed == 2


async def test_trimming_keeps_every_unacknowledged_signal(
    redis_client: aioredis.Redis, stream: str
) -> None:
    queue = make_queue(
        redis_client, stream, "worker", claim_idle_ms=60, maxlen=5, max_deliveries=1_000
    )
    failing = True

    async def handler(request: OrderRequest) -> None:
        if failing and request.client_order_id >= "coid-0020":
            raise RuntimeError("venue down")

    for n in range(30):
        await queue.put(make_request(n))
    async with consuming(queue, handler):
        await wait_for_value(lambda: redis_client.xlen(stream), 10)
        kept = [f[b"client_order_id"].decode() for _, f in await redis_client.xrange(stream)]
        assert kept == [f"coid-{n:04d}" for n in range(20, 30)]
        failing = False
        await wait_for_value(lambda: unacknowledged(redis_client, stream), 0)
        await wait_for_value(lambda: redis_client.xlen(stream), 5)

    assert queue.counters.trimmed == 25
    assert queue.counters.lost == 0
    assert queue.counters.executed == 30


async def test_a_vanished_stream_and_group_are_recreated(
    redis_client: aioredis.Redis, stream: str
) -> None:
    queue = make_queue(redis_client, stream, "worker")
    handled: list[str] = []
    async with consuming(queue, recorder(handled)):
        for n in range(5):
            await queue.put(make_request(n))
        await wait_until(lambda: len(handled) == 5)
        await redis_client.delete(stream)  # as if Redis restarted without persistence
        for n in range(5, 10):
            await queue.put(make_request(n))
        await wait_until(lambda: len(handled) == 10)

    assert handled == [f"coid-{n:04d}" for n in range(10)]


async def test_departed_consumers_are_forgotten_but_not_those_holding_signals(
    redis_client: aioredis.Redis, stream: str
) -> None:
    queue = make_queue(redis_client, stream, "worker", claim_idle_ms=30_000)
    queue.forget_consumer_idle_ms = 5
    await redis_client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    taken = {}
    for consumer in ("departed", "holder"):
        await queue.put(make_request(0, prefix=consumer))
        [[_, [(taken[consumer], _)]]] = await redis_client.xreadgroup(
            GROUP, consumer, {stream: ">"}, count=1
        )
    await redis_client.xack(stream, GROUP, taken["departed"])  # it finished its work
    await queue.put(make_request(0, prefix="worker"))
    await asyncio.sleep(0.01)
    handled: list[str] = []

    async def names() -> set[str]:
        return {c["name"].decode() for c in await redis_client.xinfo_consumers(stream, GROUP)}

    assert await names() == {"departed", "holder"}
    async with consuming(queue, recorder(handled)):
        await wait_until(lambda: handled == ["worker-0000"])
        await wait_for_value(names, {"holder", "worker"})
        status = await queue.refresh_status()
    assert status["consumers"] == 2
    assert status["unacked"] == 1


async def test_put_says_the_queue_is_unreachable_with_a_transient_error(
    closed_port: int, unique_name: str
) -> None:
    client = aioredis.from_url(f"redis://127.0.0.1:{closed_port}/0", retry=Retry(NoBackoff(), 0))
    queue = make_queue(client, f"{unique_name}:signals", "producer")
    try:
        with pytest.raises(TransientError, match="could not queue signal 'coid-0001'"):
            await queue.put(make_request(1))
    finally:
        await client.aclose()
    assert queue.counters.received == 0


async def test_bad_settings_are_refused(redis_client: aioredis.Redis) -> None:
    with pytest.raises(ValueError, match="claim_idle_ms must be positive"):
        RedisSignalQueue(redis_client, claim_idle_ms=0)
    with pytest.raises(ValueError, match="max_deliveries must be positive"):
        RedisSignalQueue(redis_client, max_deliveries=0)
    with pytest.raises(ValueError, match="stream name and a group name"):
        RedisSignalQueue(redis_client, stream="")
    with pytest.raises(ValueError, match="consumer name must not be empty"):
        RedisSignalQueue(redis_client, consumer="")
