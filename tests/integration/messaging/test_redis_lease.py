"""The Redis lease: one holder at a time, handed over on stop, given up when Redis is away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlparse

import pytest
import redis.asyncio as aioredis

from tests.fakes.tcp_proxy import TcpProxy
from trademk.messaging.redis_lease import RedisLease

pytestmark = pytest.mark.redis

TTL = 1.0
RENEW = 0.2
SAFETY = 0.2


async def wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[list[aioredis.Redis]]:
    made = [aioredis.from_url(redis_url, socket_timeout=1) for _ in range(2)]
    yield made
    for client in made:
        await client.aclose()


def lease(client: aioredis.Redis, key: str, holder: str) -> RedisLease:
    return RedisLease(client, key, holder, ttl=TTL, renew_every=RENEW, safety=SAFETY)


async def test_two_candidates_never_hold_at_once_and_the_lease_moves_when_its_holder_stops(
    clients: list[aioredis.Redis], unique_name: str
) -> None:
    first, second = lease(clients[0], unique_name, "a"), lease(clients[1], unique_name, "b")
    await first.start()
    await second.start()
    try:
        assert (first.held, second.held) == (True, False)
        for _ in range(30):  # several renewals: the holder keeps it, the other never gets it
            await asyncio.sleep(0.05)
            assert (first.held, second.held) == (True, False)
        await first.stop()
        assert not first.held
        await wait_until(lambda: second.held, within=RENEW * 5)
        assert await clients[0].get(unique_name) == b"b"
    finally:
        await second.stop()
        await first.stop()
    assert await clients[0].exists(unique_name) == 0


async def test_a_holder_cut_off_from_redis_stops_acting_before_another_takes_over(
    redis_url: str, clients: list[aioredis.Redis], unique_name: str
) -> None:
    target = urlparse(redis_url)
    async with TcpProxy(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        via_proxy = aioredis.from_url(
            f"redis://127.0.0.1:{proxy.port}/0", socket_timeout=0.3, socket_connect_timeout=0.3
        )
        cut_off = lease(via_proxy, unique_name, "cut-off")
        other = lease(clients[1], unique_name, "other")
        await cut_off.start()
        await other.start()
        try:
            assert cut_off.held and not other.held
            await proxy.cut()
            overlap = False
            async with asyncio.timeout(TTL * 5):
                while not other.held:
                    overlap = overlap or (cut_off.held and other.held)
                    await asyncio.sleep(0.01)
            assert not cut_off.held and not overlap
        finally:
            await other.stop()
            await cut_off.stop()
            await via_proxy.aclose()


async def test_a_restarted_holder_takes_its_own_unexpired_key_back_at_once(
    clients: list[aioredis.Redis], unique_name: str
) -> None:
    await clients[0].set(unique_name, "same-holder", px=int(TTL * 1000))
    again = lease(clients[0], unique_name, "same-holder")
    await again.start()
    try:
        assert again.held
    finally:
        await again.stop()


def test_renewal_must_come_before_the_expiry() -> None:
    with pytest.raises(ValueError, match="renew_every"):
        RedisLease(None, "k", "h", ttl=1.0, renew_every=1.0)  # type: ignore[arg-type]
