"""Rate limits per API key, user and client address, and login throttling.

Counting uses fixed windows aligned to the platform clock, kept in a
:class:`~trademk.security.store.SecurityStore` (Redis when configured, so all
processes share one count). When the store is unreachable requests are let
through and a warning is logged: an outage of Redis must not lock every user
out of a platform that may need to halt trading.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import structlog

from trademk.engine.clock import Clock
from trademk.security.store import SecurityStore, StoreUnavailableError

log = structlog.get_logger(__name__)
_NANOS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``limit`` events per ``window_seconds``."""

    limit: int
    window_seconds: int = 60

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_seconds < 1:
            raise ValueError("a rate limit needs a positive limit and window")


class RateLimitedError(Exception):
    """Too many requests; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(retry_after, 1)


def _window(clock: Clock, window_seconds: int) -> tuple[int, int]:
    """The index of the current window and the seconds until it ends."""
    now = clock.now_ns() // _NANOS
    index = now // window_seconds
    return index, (index + 1) * window_seconds - now


class RateLimiter:
    """Counts events per bucket and refuses those over the limit."""

    def __init__(self, store: SecurityStore, clock: Clock, enabled: bool = True) -> None:
        self._store = store
        self._clock = clock
        self.enabled = enabled

    async def hit(self, bucket: str, rule: RateLimit) -> None:
        """Count one event in ``bucket``; RateLimitedError when over ``rule``."""
        if not self.enabled:
            return
        index, retry_after = _window(self._clock, rule.window_seconds)
        try:
            count = await self._store.increment(
                f"rl:{bucket}:{rule.window_seconds}:{index}", rule.window_seconds + 1
            )
        except StoreUnavailableError as err:
            log.warning("rate limit store unavailable; request allowed", error=str(err))
            return
        if count > rule.limit:
            raise RateLimitedError(
                f"rate limit of {rule.limit} requests per {rule.window_seconds} s exceeded",
                retry_after,
            )


def _email_key(email: str) -> str:
    # Hashed so Redis keys carry no addresses.
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


class LoginThrottle:
    """Brute-force protection: too many failed logins for an account or address pause it."""

    def __init__(
        self,
        store: SecurityStore,
        clock: Clock,
        max_failures: int,
        max_failures_per_ip: int,
        window_seconds: int,
    ) -> None:
        self._store = store
        self._clock = clock
        self._max_failures = max_failures
        self._max_per_ip = max_failures_per_ip
        self._window_seconds = window_seconds

    def _keys(self, email: str, ip: str) -> tuple[str, str, int]:
        index, retry_after = _window(self._clock, self._window_seconds)
        return (
            f"lf:e:{_email_key(email)}:{index}",
            f"lf:ip:{ip}:{index}",
            retry_after,
        )

    async def check(self, email: str, ip: str) -> None:
        """RateLimitedError while the account or the address has too many recent failures."""
        email_key, ip_key, retry_after = self._keys(email, ip)
        try:
            by_email = await self._store.count(email_key)
            by_ip = await self._store.count(ip_key)
        except StoreUnavailableError as err:
            log.warning("login throttle store unavailable; attempt allowed", error=str(err))
            return
        if by_email >= self._max_failures or by_ip >= self._max_per_ip:
            raise RateLimitedError("too many failed logins; try again later", retry_after)

    async def record_failure(self, email: str, ip: str) -> None:
        email_key, ip_key, _ = self._keys(email, ip)
        ttl = self._window_seconds + 1
        try:
            await self._store.increment(email_key, ttl)
            await self._store.increment(ip_key, ttl)
        except StoreUnavailableError as err:
            log.warning("login throttle store unavailable; failure not counted", error=str(err))

    async def record_success(self, email: str, ip: str) -> None:
        """A successful login clears the account's failures (not the address's)."""
        email_key, _, _ = self._keys(email, ip)
        try:
            await self._store.reset(email_key)
        except StoreUnavailableError as err:
            log.warning("login throttle store unavailable", error=str(err))
