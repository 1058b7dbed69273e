"""The security services of one process, built from settings."""

from __future__ import annotations

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trademk.config import Settings
from trademk.engine.clock import Clock
from trademk.security.api_keys import ApiKeyService
from trademk.security.audit import AuditLog
from trademk.security.bootstrap import FirstAdmin, ensure_first_admin
from trademk.security.passwords import PasswordHasher
from trademk.security.rate_limit import LoginThrottle, RateLimit, RateLimiter
from trademk.security.sessions import SessionTokens
from trademk.security.store import MemoryStore, RedisStore, SecurityStore
from trademk.security.tokens import TokenCodec
from trademk.security.users import UserService


class SecurityServices:
    """Users, sessions, API keys, rate limits and the audit log, wired together."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        sessions: async_sessionmaker[AsyncSession],
        redis: aioredis.Redis | None = None,
    ) -> None:
        self.settings = settings
        self.hasher = PasswordHasher(
            memory_kib=settings.password_hash_memory_kib,
            time_cost=settings.password_hash_time_cost,
        )
        previous = settings.secret_key_previous
        self.tokens = TokenCodec(
            settings.secret_key.get_secret_value(),
            clock,
            access_ttl_seconds=settings.access_token_minutes * 60,
            refresh_ttl_seconds=settings.refresh_token_days * 86400,
            previous_secrets=(previous.get_secret_value(),) if previous else (),
        )
        self.store: SecurityStore = (
            RedisStore(redis, settings.security_redis_prefix) if redis else MemoryStore(clock)
        )
        self.limiter = RateLimiter(self.store, clock, enabled=settings.rate_limit_enabled)
        self.principal_limit = RateLimit(settings.rate_limit_per_minute, 60)
        self.ip_limit = RateLimit(settings.rate_limit_ip_per_minute, 60)
        self.login_throttle = LoginThrottle(
            self.store,
            clock,
            max_failures=settings.login_max_failures,
            max_failures_per_ip=settings.login_max_failures_per_ip,
            window_seconds=settings.login_failure_window_seconds,
        )
        self.users = UserService(sessions, self.hasher, clock)
        self.session_tokens = SessionTokens(sessions, self.tokens, self.store, clock)
        self.api_keys = ApiKeyService(sessions, clock)
        self.audit = AuditLog(sessions, clock)

    async def ensure_first_admin(self, generate: bool = False) -> FirstAdmin | None:
        """Create the first admin from TRADEMK_ADMIN_* (or a generated password)."""
        password = self.settings.trademk_admin_password
        return await ensure_first_admin(
            self.users,
            self.audit,
            email=self.settings.trademk_admin_email,
            password=password.get_secret_value() if password else None,
            generate=generate,
        )
