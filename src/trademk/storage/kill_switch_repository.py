"""The kill switch in the ``configs`` table (scope ``trading``, key ``halt``).

An operator's halt outlives the process that received it: every process that
trades reads it when it starts, so a restarted or newly added execution worker
does not trade while the platform is halted. Halts the platform decides on its
own (reconciliation differences) are not stored: they are re-evaluated on every
start.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trademk.storage.database import transaction
from trademk.storage.models import ConfigEntry

TRADING_SCOPE: Final = "trading"
HALT_KEY: Final = "halt"


class KillSwitchRepository:
    """Stores whether an operator halted trading, and why."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def halt_reason(self) -> str | None:
        """The reason of the stored halt, or None when trading is not halted."""
        async with self._sessions() as session:
            value = await session.scalar(
                select(ConfigEntry.value).where(
                    ConfigEntry.scope == TRADING_SCOPE, ConfigEntry.key == HALT_KEY
                )
            )
        if isinstance(value, dict):
            return str(value.get("reason") or "halted")
        return None

    async def halt(self, reason: str) -> None:
        async with transaction(self._sessions) as session:
            row = await session.scalar(
                select(ConfigEntry).where(
                    ConfigEntry.scope == TRADING_SCOPE, ConfigEntry.key == HALT_KEY
                )
            )
            if row is None:
                session.add(
                    ConfigEntry(
                        key=HALT_KEY,
                        value={"reason": reason},
                        scope=TRADING_SCOPE,
                        description="Kill switch: trading halted by an operator",
                    )
                )
            else:
                row.value = {"reason": reason}

    async def resume(self) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(
                delete(ConfigEntry).where(
                    ConfigEntry.scope == TRADING_SCOPE, ConfigEntry.key == HALT_KEY
                )
            )
