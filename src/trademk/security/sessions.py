"""Login sessions: access tokens plus rotating, revocable refresh tokens.

A login opens a token family. Each refresh spends the presented refresh token
and issues a new one in the same family; presenting a spent token again means
it was copied, so the whole family is revoked. Refresh tokens are stored as
SHA-256 digests only. Logging out revokes the family and puts the access
token's id on a deny list (shared through Redis when configured) until it
expires.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trademk.engine.clock import Clock, ns_to_datetime, utc_now
from trademk.security.errors import AuthenticationError
from trademk.security.store import SecurityStore
from trademk.security.tokens import TokenClaims, TokenCodec, TokenError, TokenType
from trademk.storage.auth_models import RefreshTokenRecord
from trademk.storage.database import transaction
from trademk.storage.models import User

_NANOS = 1_000_000_000


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a login or refresh hands to the client."""

    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int
    user_id: uuid.UUID
    token_type: str = "bearer"  # noqa: S105 - the OAuth 2 token type, not a secret


class SessionTokens:
    """Issues, rotates and revokes session tokens."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        codec: TokenCodec,
        store: SecurityStore,
        clock: Clock,
    ) -> None:
        self._sessions = sessions
        self._codec = codec
        self._store = store
        self._clock = clock

    async def open(self, user_id: uuid.UUID) -> TokenPair:
        """A new session (token family) for a user who just proved their password."""
        async with transaction(self._sessions) as session:
            pair, _ = await self._issue(session, user_id, uuid.uuid4())
        return pair

    async def _issue(
        self, session: AsyncSession, user_id: uuid.UUID, family_id: uuid.UUID
    ) -> tuple[TokenPair, uuid.UUID]:
        access = self._codec.issue(user_id, TokenType.ACCESS)
        refresh = self._codec.issue(user_id, TokenType.REFRESH, family_id=family_id)
        record = RefreshTokenRecord(
            user_id=user_id,
            token_hash=token_digest(refresh.token),
            family_id=family_id,
            expires_at=ns_to_datetime(refresh.claims.expires_at * _NANOS),
        )
        session.add(record)
        await session.flush()
        pair = TokenPair(
            access_token=access.token,
            refresh_token=refresh.token,
            expires_in=self._codec.ttl_seconds(TokenType.ACCESS),
            refresh_expires_in=self._codec.ttl_seconds(TokenType.REFRESH),
            user_id=user_id,
        )
        return pair, record.id

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Spend a refresh token for a new pair; AuthenticationError if it may not be used."""
        try:
            claims = self._codec.decode(refresh_token, TokenType.REFRESH)
        except TokenError as err:
            raise AuthenticationError(str(err)) from None
        reused = False
        async with transaction(self._sessions) as session:
            record = await session.scalar(
                select(RefreshTokenRecord).where(
                    RefreshTokenRecord.token_hash == token_digest(refresh_token)
                )
            )
            if record is None or record.user_id != claims.user_id:
                raise AuthenticationError("refresh token not recognised")
            if record.revoked_at is not None or not await self._spend(session, record):
                await self._revoke_family(session, record.family_id)
                reused = True
            else:
                user = await session.get(User, record.user_id)
                if user is None or not user.is_active:
                    raise AuthenticationError("user is inactive")
                pair, new_id = await self._issue(session, record.user_id, record.family_id)
                record.replaced_by_id = new_id
        if reused:
            raise AuthenticationError("refresh token already used; the session is revoked")
        return pair

    async def _spend(self, session: AsyncSession, record: RefreshTokenRecord) -> bool:
        """Mark the token used; False if another request spent it first."""
        result = await session.execute(
            update(RefreshTokenRecord)
            .where(RefreshTokenRecord.id == record.id, RefreshTokenRecord.revoked_at.is_(None))
            .values(revoked_at=utc_now(self._clock))
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def _revoke_family(self, session: AsyncSession, family_id: uuid.UUID) -> None:
        await session.execute(
            update(RefreshTokenRecord)
            .where(
                RefreshTokenRecord.family_id == family_id, RefreshTokenRecord.revoked_at.is_(None)
            )
            .values(revoked_at=utc_now(self._clock))
            .execution_options(synchronize_session=False)
        )

    async def close(
        self, user_id: uuid.UUID, refresh_token: str | None = None, all_sessions: bool = False
    ) -> None:
        """End the session the refresh token belongs to, or every session of the user."""
        async with transaction(self._sessions) as session:
            if all_sessions:
                await session.execute(
                    update(RefreshTokenRecord)
                    .where(
                        RefreshTokenRecord.user_id == user_id,
                        RefreshTokenRecord.revoked_at.is_(None),
                    )
                    .values(revoked_at=utc_now(self._clock))
                )
                return
            if refresh_token is None:
                return
            record = await session.scalar(
                select(RefreshTokenRecord).where(
                    RefreshTokenRecord.token_hash == token_digest(refresh_token),
                    RefreshTokenRecord.user_id == user_id,
                )
            )
            if record is not None:
                await self._revoke_family(session, record.family_id)

    async def deny_access_token(self, token_id: str) -> None:
        """Refuse this access token from now until it would have expired anyway."""
        await self._store.mark(f"deny:{token_id}", self._codec.ttl_seconds(TokenType.ACCESS) + 1)

    async def verify_access(self, token: str) -> TokenClaims:
        """Claims of a valid, not logged-out access token; AuthenticationError otherwise."""
        try:
            claims = self._codec.decode(token, TokenType.ACCESS)
        except TokenError as err:
            raise AuthenticationError(str(err)) from None
        if await self._store.is_marked(f"deny:{claims.token_id}"):
            raise AuthenticationError("token revoked")
        return claims
