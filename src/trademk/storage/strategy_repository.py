"""Strategy instances in the app database, their fills and orders, and the default set."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trademk.domain.fills import Fill
from trademk.storage.database import transaction
from trademk.storage.models import ConfigEntry, FillRecord, OrderRecord
from trademk.storage.strategy_models import StrategyRecord
from trademk.storage.trading_repository import _fill_of

STRATEGIES_SCOPE: Final = "strategies"
DEFAULTS_SEEDED_KEY: Final = "defaults_seeded"


class StrategyNameTaken(ValueError):
    """Another strategy already has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a strategy named {name!r} already exists")
        self.name = name


@dataclass(frozen=True, slots=True)
class StrategyValues:
    """What a client sets on a strategy (create and full update), already validated."""

    name: str
    strategy_class: str
    symbols: list[str]
    interval: str
    capital_allocation: Decimal
    params: dict[str, Any] = field(default_factory=dict)
    sizing: str = "all_in"
    enabled: bool = False
    mode: str = "paper"

    def columns(self) -> dict[str, Any]:
        return asdict(self)


class StrategyRepository:
    """CRUD for strategy instances, their state, and their fills and orders."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # -------------------------------------------------------------- instances
    async def create(self, values: StrategyValues, state: str = "stopped") -> StrategyRecord:
        """Store a new strategy; ``StrategyNameTaken`` if the name is in use."""
        record = StrategyRecord(**values.columns(), state=state)
        try:
            async with transaction(self._sessions) as session:
                session.add(record)
        except IntegrityError:
            raise StrategyNameTaken(values.name) from None
        return record

    async def get(self, strategy_id: uuid.UUID) -> StrategyRecord | None:
        async with self._sessions() as session:
            return await session.get(StrategyRecord, strategy_id)

    async def find(self, *, enabled: bool | None = None) -> list[StrategyRecord]:
        """Strategies, oldest first, optionally only the enabled (or disabled) ones."""
        query = select(StrategyRecord).order_by(StrategyRecord.created_at, StrategyRecord.name)
        if enabled is not None:
            query = query.where(StrategyRecord.enabled == enabled)
        async with self._sessions() as session:
            return list((await session.scalars(query)).all())

    async def replace(
        self, strategy_id: uuid.UUID, values: StrategyValues
    ) -> StrategyRecord | None:
        """Set every client field; None if the strategy does not exist."""
        try:
            async with transaction(self._sessions) as session:
                record = await session.get(StrategyRecord, strategy_id)
                if record is None:
                    return None
                for column, value in values.columns().items():
                    setattr(record, column, value)
        except IntegrityError:
            raise StrategyNameTaken(values.name) from None
        return await self.get(strategy_id)

    async def set_state(
        self,
        strategy_id: uuid.UUID,
        state: str,
        *,
        error: str | None = None,
        enabled: bool | None = None,
    ) -> None:
        """Record what the strategy is doing (and optionally whether it should run)."""
        values: dict[str, Any] = {"state": state, "last_error": error}
        if enabled is not None:
            values["enabled"] = enabled
        async with transaction(self._sessions) as session:
            await session.execute(
                update(StrategyRecord).where(StrategyRecord.id == strategy_id).values(**values)
            )

    async def delete(self, strategy_id: uuid.UUID) -> bool:
        """Delete a strategy (its orders and fills stay); False if it did not exist."""
        async with transaction(self._sessions) as session:
            result = await session.execute(
                delete(StrategyRecord).where(StrategyRecord.id == strategy_id)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # ------------------------------------------------------- fills and orders
    async def strategy_fills(self, strategy_id: str) -> list[Fill]:
        """Every fill of the strategy's orders, oldest first."""
        return (await self.fills_by_strategy([strategy_id])).get(strategy_id, [])

    async def fills_by_strategy(self, strategy_ids: Sequence[str]) -> dict[str, list[Fill]]:
        """Fills of each of ``strategy_ids``, oldest first."""
        if not strategy_ids:
            return {}
        query = (
            select(FillRecord)
            .where(FillRecord.strategy_id.in_(list(strategy_ids)))
            .order_by(FillRecord.ts, FillRecord.created_at)
        )
        found: dict[str, list[Fill]] = defaultdict(list)
        async with self._sessions() as session:
            for row in (await session.scalars(query)).all():
                found[str(row.strategy_id)].append(_fill_of(row))
        return dict(found)

    async def order_counts(self, strategy_id: str) -> dict[str, int]:
        """How many of the strategy's orders are in each status."""
        query = (
            select(OrderRecord.status, func.count())
            .where(OrderRecord.strategy_id == strategy_id)
            .group_by(OrderRecord.status)
        )
        async with self._sessions() as session:
            return {status: int(count) for status, count in (await session.execute(query)).all()}

    # --------------------------------------------------------------- defaults
    async def seed_once(self, defaults: Iterable[StrategyValues]) -> int:
        """Store ``defaults`` the first time ever (a marker in ``configs`` remembers it, so
        strategies a user deleted do not come back); names already taken are skipped."""
        try:
            return await self._seed(defaults)
        except IntegrityError:  # another process seeded at the same moment
            return 0

    async def _seed(self, defaults: Iterable[StrategyValues]) -> int:
        async with transaction(self._sessions) as session:
            marker = await session.scalar(
                select(ConfigEntry).where(
                    ConfigEntry.scope == STRATEGIES_SCOPE, ConfigEntry.key == DEFAULTS_SEEDED_KEY
                )
            )
            if marker is not None:
                return 0
            taken = set((await session.scalars(select(StrategyRecord.name))).all())
            added = 0
            for values in defaults:
                if values.name not in taken:
                    session.add(StrategyRecord(**values.columns(), state="stopped"))
                    added += 1
            session.add(
                ConfigEntry(
                    key=DEFAULTS_SEEDED_KEY,
                    value="true",
                    scope=STRATEGIES_SCOPE,
                    description="The default strategies were created once",
                )
            )
        return added
