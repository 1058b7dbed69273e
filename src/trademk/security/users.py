"""Users: creation, lookup, password checks, role and status changes."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trademk.engine.clock import Clock, utc_now
from trademk.security.errors import ConflictError, InvalidInputError, NotFoundError
from trademk.security.passwords import PasswordHasher, check_password_policy
from trademk.security.roles import Role, stored_role
from trademk.storage.auth_models import RefreshTokenRecord
from trademk.storage.database import transaction
from trademk.storage.models import User

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,253}$")


def normalize_email(email: str) -> str:
    """The canonical (trimmed, lower-case) form of an address; InvalidInputError if malformed."""
    text = email.strip().lower()
    if not _EMAIL.match(text):
        raise InvalidInputError(f"{email!r} is not an email address", ("body", "email"))
    return text


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user as the rest of the platform sees it (never the password hash)."""

    id: uuid.UUID
    email: str
    role: Role
    is_active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: User) -> UserInfo:
        return cls(
            row.id, row.email, stored_role(row.role), row.is_active, row.created_at, row.updated_at
        )


class UserService:
    """Reads and changes users in the app database."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], hasher: PasswordHasher, clock: Clock
    ) -> None:
        self._sessions = sessions
        self._hasher = hasher
        self._clock = clock

    async def count(self) -> int:
        async with self._sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(User)) or 0)

    async def create(self, email: str, password: str, role: Role) -> UserInfo:
        """A new active user; ConflictError if the address is taken."""
        address = normalize_email(email)
        check_password_policy(password)
        password_hash = await self._hasher.hash_async(password)
        try:
            async with transaction(self._sessions) as session:
                if await session.scalar(select(User.id).where(User.email == address)):
                    raise ConflictError(f"a user with email {address} already exists")
                row = User(
                    email=address,
                    password_hash=password_hash,
                    role=role.value,
                    is_superuser=role is Role.ADMIN,
                    is_active=True,
                )
                session.add(row)
                await session.flush()
                return UserInfo.of(row)
        except IntegrityError:
            raise ConflictError(f"a user with email {address} already exists") from None

    async def get(self, user_id: uuid.UUID) -> UserInfo:
        async with self._sessions() as session:
            row = await session.get(User, user_id)
        if row is None:
            raise NotFoundError("no such user")
        return UserInfo.of(row)

    async def find_by_email(self, email: str) -> UserInfo | None:
        address = normalize_email(email)
        async with self._sessions() as session:
            row = await session.scalar(select(User).where(User.email == address))
        return UserInfo.of(row) if row else None

    async def active_user(self, user_id: uuid.UUID) -> UserInfo | None:
        """The user if it exists and is active, else None (for request authentication)."""
        async with self._sessions() as session:
            row = await session.get(User, user_id)
        return UserInfo.of(row) if row is not None and row.is_active else None

    async def list(self) -> list[UserInfo]:
        async with self._sessions() as session:
            rows = (await session.scalars(select(User).order_by(User.created_at, User.email))).all()
        return [UserInfo.of(row) for row in rows]

    async def authenticate(self, email: str, password: str) -> UserInfo | None:
        """The active user with this email and password, else None (same time either way)."""
        try:
            address = normalize_email(email)
        except InvalidInputError:
            await self._hasher.burn_time_async(password)
            return None
        async with self._sessions() as session:
            row = await session.scalar(select(User).where(User.email == address))
        if row is None:
            await self._hasher.burn_time_async(password)
            return None
        if not await self._hasher.verify_async(row.password_hash, password) or not row.is_active:
            return None
        if self._hasher.needs_rehash(row.password_hash):
            new_hash = await self._hasher.hash_async(password)
            async with transaction(self._sessions) as session:
                await session.execute(
                    update(User).where(User.id == row.id).values(password_hash=new_hash)
                )
        return UserInfo.of(row)

    async def update(
        self,
        user_id: uuid.UUID,
        *,
        role: Role | None = None,
        is_active: bool | None = None,
        password: str | None = None,
    ) -> UserInfo:
        """Change role, status or password. Deactivation and a new password end all sessions."""
        if password is not None:
            check_password_policy(password)
            password_hash = await self._hasher.hash_async(password)
        async with transaction(self._sessions) as session:
            row = await session.get(User, user_id, with_for_update=True)
            if row is None:
                raise NotFoundError("no such user")
            demoted = role is not None and role is not Role.ADMIN
            if (demoted or is_active is False) and await self._is_last_admin(session, row):
                raise ConflictError("the last active admin cannot be demoted or deactivated")
            if role is not None:
                row.role, row.is_superuser = role.value, role is Role.ADMIN
            if is_active is not None:
                row.is_active = is_active
            if password is not None:
                row.password_hash = password_hash
            if password is not None or is_active is False:
                await self._end_sessions(session, user_id)
            await session.flush()
            await session.refresh(row)
            return UserInfo.of(row)

    async def delete(self, user_id: uuid.UUID) -> UserInfo:
        """Remove a user with its keys and sessions; the audit trail keeps its email."""
        async with transaction(self._sessions) as session:
            row = await session.get(User, user_id, with_for_update=True)
            if row is None:
                raise NotFoundError("no such user")
            if await self._is_last_admin(session, row):
                raise ConflictError("the last active admin cannot be deleted")
            info = UserInfo.of(row)
            await session.delete(row)
        return info

    async def _is_last_admin(self, session: AsyncSession, row: User) -> bool:
        if row.role != Role.ADMIN.value or not row.is_active:
            return False
        others = await session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == Role.ADMIN.value, User.is_active.is_(True), User.id != row.id)
        )
        return not others

    async def _end_sessions(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        await session.execute(
            update(RefreshTokenRecord)
            .where(RefreshTokenRecord.user_id == user_id, RefreshTokenRecord.revoked_at.is_(None))
            .values(revoked_at=utc_now(self._clock))
        )
