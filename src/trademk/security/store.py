"""Short-lived shared security state: rate-limit counters and revoked token ids.

With REDIS_URL set every process of a deployment shares one Redis, so a limit
or a logout holds across processes; without it the state lives in memory.
"""

from __future__ import annotations

from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from trademk.engine.clock import Clock

_NANOS = 1_000_000_000
_SWEEP_THRESHOLD = 10_000


class StoreUnavailableError(Exception):
    """The shared store could not be reached."""


class SecurityStore(Protocol):
    """Counters and markers that expire on their own."""

    async def increment(self, key: str, ttl_seconds: int) -> int:
        """Add one to ``key`` (created with the given lifetime) and return the new count."""
        ...

    async def count(self, key: str) -> int: ...

    async def reset(self, key: str) -> None: ...

    async def mark(self, key: str, ttl_seconds: int) -> None:
        """Remember ``key`` for ``ttl_seconds``."""
        ...

    async def is_marked(self, key: str) -> bool: ...


class MemoryStore:
    """The in-process store: one process only."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._entries: dict[str, tuple[int, int]] = {}

    def _live(self, key: str) -> int | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires_ns = entry
        if self._clock.now_ns() >= expires_ns:
            del self._entries[key]
            return None
        return value

    def _sweep(self) -> None:
        now = self._clock.now_ns()
        for key in [k for k, (_, expires) in self._entries.items() if expires <= now]:
            del self._entries[key]

    async def increment(self, key: str, ttl_seconds: int) -> int:
        if len(self._entries) > _SWEEP_THRESHOLD:
            self._sweep()
        current = self._live(key)
        if current is None:
            self._entries[key] = (1, self._clock.now_ns() + ttl_seconds * _NANOS)
            return 1
        self._entries[key] = (current + 1, self._entries[key][1])
        return current + 1

    async def count(self, key: str) -> int:
        return self._live(key) or 0

    async def reset(self, key: str) -> None:
        self._entries.pop(key, None)

    async def mark(self, key: str, ttl_seconds: int) -> None:
        if len(self._entries) > _SWEEP_THRESHOLD:
            self._sweep()
        self._entries[key] = (1, self._clock.now_ns() + ttl_seconds * _NANOS)

    async def is_marked(self, key: str) -> bool:
        return self._live(key) is not None


class RedisStore:
    """The shared store: every process pointing at the same Redis and prefix agrees."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix.rstrip(":")

    def _key(self, key: str) -> str:
        return f"{self._prefix}:{key}"

    async def increment(self, key: str, ttl_seconds: int) -> int:
        name = self._key(key)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, ttl_seconds, nx=True)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as err:
            raise StoreUnavailableError(f"redis: {err}") from err
        return int(count)

    async def count(self, key: str) -> int:
        try:
            value = await self._redis.get(self._key(key))
        except (RedisError, OSError) as err:
            raise StoreUnavailableError(f"redis: {err}") from err
        return int(value) if value is not None else 0

    async def reset(self, key: str) -> None:
        try:
            await self._redis.delete(self._key(key))
        except (RedisError, OSError) as err:
            raise StoreUnavailableError(f"redis: {err}") from err

    async def mark(self, key: str, ttl_seconds: int) -> None:
        try:
            await self._redis.set(self._key(key), 1, ex=max(ttl_seconds, 1))
        except (RedisError, OSError) as err:
            raise StoreUnavailableError(f"redis: {err}") from err

    async def is_marked(self, key: str) -> bool:
        try:
            return bool(await self._redis.exists(self._key(key)))
        except (RedisError, OSError) as err:
            raise StoreUnavailableError(f"redis: {err}") from err
