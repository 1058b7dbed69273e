"""Fixed-window rate limits and login throttling on the in-memory store."""

from __future__ import annotations

import pytest

from trademk.engine.clock import SimClock
from trademk.security.rate_limit import LoginThrottle, RateLimit, RateLimitedError, RateLimiter
from trademk.security.store import MemoryStore

SECOND = 1_000_000_000
START = 1_800_000_000 * SECOND  # a multiple of 60 s: windows start here


async def test_limit_allows_up_to_the_limit_then_refuses_with_retry_after() -> None:
    clock = SimClock(START + 15 * SECOND)
    limiter = RateLimiter(MemoryStore(clock), clock)
    rule = RateLimit(3, 60)
    for _ in range(3):
        await limiter.hit("user:1", rule)
    with pytest.raises(RateLimitedError) as refused:
        await limiter.hit("user:1", rule)
    assert refused.value.retry_after == 45


async def test_a_new_window_starts_fresh_and_buckets_are_separate() -> None:
    clock = SimClock(START)
    limiter = RateLimiter(MemoryStore(clock), clock)
    rule = RateLimit(1, 60)
    await limiter.hit("user:1", rule)
    await limiter.hit("user:2", rule)
    with pytest.raises(RateLimitedError):
        await limiter.hit("user:1", rule)
    clock.advance(60 * SECOND)
    await limiter.hit("user:1", rule)


async def test_a_disabled_limiter_never_refuses() -> None:
    clock = SimClock(START)
    limiter = RateLimiter(MemoryStore(clock), clock, enabled=False)
    for _ in range(10):
        await limiter.hit("ip:1.2.3.4", RateLimit(1, 60))


def test_rate_limit_rules_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimit(0, 60)


def _throttle(clock: SimClock, store: MemoryStore) -> LoginThrottle:
    return LoginThrottle(store, clock, max_failures=2, max_failures_per_ip=3, window_seconds=300)


async def test_login_throttle_pauses_an_account_after_its_failures() -> None:
    clock = SimClock(START)
    throttle = _throttle(clock, MemoryStore(clock))
    await throttle.check("a@example.com", "10.0.0.1")
    await throttle.record_failure("A@example.com ", "10.0.0.1")
    await throttle.record_failure("a@example.com", "10.0.0.2")
    with pytest.raises(RateLimitedError) as paused:
        await throttle.check("a@example.com", "10.0.0.9")
    assert paused.value.retry_after == 300
    await throttle.check("b@example.com", "10.0.0.9")
    clock.advance(300 * SECOND)
    await throttle.check("a@example.com", "10.0.0.9")


async def test_login_throttle_pauses_an_address_trying_many_accounts() -> None:
    clock = SimClock(START)
    throttle = _throttle(clock, MemoryStore(clock))
    for n in range(3):
        await throttle.record_failure(f"user{n}@example.com", "10.0.0.1")
    with pytest.raises(RateLimitedError):
        await throttle.check("fresh@example.com", "10.0.0.1")
    await throttle.check("fresh@example.com", "10.0.0.2")


async def test_a_successful_login_clears_the_account_failures() -> None:
    clock = SimClock(START)
    throttle = _throttle(clock, MemoryStore(clock))
    await throttle.record_failure("a@example.com", "10.0.0.1")
    await throttle.record_success("a@example.com", "10.0.0.1")
    await throttle.record_failure("a@example.com", "10.0.0.1")
    await throttle.check("a@example.com", "10.0.0.1")


async def test_memory_store_marks_expire_with_the_clock() -> None:
    clock = SimClock(START)
    store = MemoryStore(clock)
    await store.mark("deny:abc", 10)
    assert await store.is_marked("deny:abc")
    clock.advance(10 * SECOND)
    assert not await store.is_marked("deny:abc")
    assert await store.count("missing") == 0
