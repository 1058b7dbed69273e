"""A lease in Redis: at most one process of a deployment does something at a time.

Several ``trademk api`` replicas all evaluate price alerts (so each one's
state follows every tick), but only the holder of the ``alerts`` lease fires
them: one history row, one webhook call, one WebSocket message per firing.

The lease is a key set with ``NX`` and an expiry, renewed by its holder well
before it runs out. The holder counts itself as holding only until the expiry
it asked for, measured from *before* it sent the request, minus a margin: if
it cannot reach Redis to renew, it stops acting before anyone else can take
over, so two holders never act at once. A holder that stops releases the key
at once (only if it still holds it), so another takes over without waiting
for the expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

import redis.asyncio as aioredis
import structlog

from trademk.messaging.redis_signals import TRANSIENT_REDIS_ERRORS

log = structlog.get_logger(__name__)

_RENEW: Final = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE: Final = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class RedisLease:
    """Holds ``key`` for ``holder`` while it can; ``held`` says whether to act now."""

    def __init__(
        self,
        redis: aioredis.Redis,
        key: str,
        holder: str,
        *,
        ttl: float = 5.0,
        renew_every: float = 1.0,
        safety: float = 0.5,
    ) -> None:
        if not 0 < renew_every < ttl - safety:
            raise ValueError("renew_every must be positive and shorter than ttl - safety")
        self.redis = redis
        self.key = key
        self.holder = holder
        self.ttl = ttl
        self.renew_every = renew_every
        self.safety = safety
        self.acquired = 0
        self.lost = 0
        self._held_until = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def held(self) -> bool:
        return asyncio.get_running_loop().time() < self._held_until

    async def start(self) -> None:
        """Try once at once (so a lone process holds it from the start), then keep trying."""
        if self._task is not None:
            return
        await self._attempt()
        self._task = asyncio.create_task(self._keep(), name=f"lease:{self.key}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._held_until:
            self._held_until = 0.0
            with contextlib.suppress(*TRANSIENT_REDIS_ERRORS):
                await self.redis.eval(_RELEASE, 1, self.key, self.holder)

    def status(self) -> dict[str, Any]:
        return {"key": self.key, "holder": self.holder, "held": self.held, "lost": self.lost}

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self.renew_every)
            await self._attempt()

    async def _attempt(self) -> None:
        loop = asyncio.get_running_loop()
        asked_at = loop.time()
        ttl_ms = int(self.ttl * 1000)
        was_held = self.held
        try:
            if was_held:
                ours = bool(await self.redis.eval(_RENEW, 1, self.key, self.holder, ttl_ms))
            else:
                ours = bool(await self.redis.set(self.key, self.holder, nx=True, px=ttl_ms))
                if not ours:  # a restart of ours may find its own key still there
                    ours = bool(await self.redis.eval(_RENEW, 1, self.key, self.holder, ttl_ms))
        except TRANSIENT_REDIS_ERRORS as err:
            log.warning("lease not renewed; Redis unreachable", key=self.key, error=str(err))
            return  # ``held`` runs out on its own
        if ours:
            self._held_until = asked_at + self.ttl - self.safety
            if not was_held:
                self.acquired += 1
                log.info("lease acquired", key=self.key, holder=self.holder)
        else:
            if was_held:
                self.lost += 1
                log.warning("lease lost to another holder", key=self.key)
            self._held_until = 0.0
