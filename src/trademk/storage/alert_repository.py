"""Price alerts and their history in the app database, mapped to and from the domain."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trademk.domain.alerts import NANOS_PER_SECOND, Alert, AlertCondition, AlertMode, AlertRule
from trademk.engine.alert_engine import AlertEvent
from trademk.engine.clock import ns_to_datetime
from trademk.engine.webhooks import DeliveryOutcome
from trademk.storage.alert_models import AlertEventRecord, AlertRecord
from trademk.storage.database import transaction

MAX_HISTORY_LIMIT = 1000


def rule_of(
    *,
    symbol: str,
    condition: str,
    level: float | None,
    percent: float | None,
    window_seconds: float | None,
    mode: str,
    cooldown_seconds: float,
) -> AlertRule:
    """The domain rule for stored or submitted fields (AlertRuleError/ValueError if bad)."""
    return AlertRule(
        symbol=symbol,
        condition=AlertCondition(condition),
        level=level,
        percent=percent,
        window_ns=None if window_seconds is None else round(window_seconds * NANOS_PER_SECOND),
        mode=AlertMode(mode),
        cooldown_ns=round(cooldown_seconds * NANOS_PER_SECOND),
    )


def alert_of(record: AlertRecord) -> Alert:
    """The engine's view of a stored alert."""
    rule = rule_of(
        symbol=record.symbol,
        condition=record.condition,
        level=record.level,
        percent=record.percent,
        window_seconds=record.window_seconds,
        mode=record.mode,
        cooldown_seconds=record.cooldown_seconds,
    )
    return Alert(str(record.id), rule, record.name, record.webhook_url)


@dataclass(frozen=True, slots=True)
class AlertValues:
    """What a client sets on an alert (create and full update)."""

    rule: AlertRule
    name: str = ""
    webhook_url: str | None = None
    active: bool = True

    def columns(self) -> dict[str, object]:
        rule = self.rule
        return {
            "name": self.name,
            "symbol": rule.symbol,
            "condition": str(rule.condition),
            "level": rule.level,
            "percent": rule.percent,
            "window_seconds": None if rule.window_ns is None else rule.window_ns / NANOS_PER_SECOND,
            "mode": str(rule.mode),
            "cooldown_seconds": rule.cooldown_ns / NANOS_PER_SECOND,
            "webhook_url": self.webhook_url,
            "active": self.active,
        }


class AlertRepository:
    """CRUD for alerts, their history, and the engine's journal of firings."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # ------------------------------------------------------------------ alerts
    async def create(self, values: AlertValues, created_by: uuid.UUID | None) -> AlertRecord:
        record = AlertRecord(**values.columns(), created_by=created_by, trigger_count=0)
        async with transaction(self._sessions) as session:
            session.add(record)
        return record

    async def get(self, alert_id: uuid.UUID) -> AlertRecord | None:
        async with self._sessions() as session:
            return await session.get(AlertRecord, alert_id)

    async def find(
        self, *, symbol: str | None = None, active: bool | None = None
    ) -> list[AlertRecord]:
        """Alerts, newest first, optionally by symbol and by whether they are active."""
        query = select(AlertRecord).order_by(AlertRecord.created_at.desc(), AlertRecord.id)
        if symbol is not None:
            query = query.where(AlertRecord.symbol == symbol)
        if active is not None:
            query = query.where(AlertRecord.active == active)
        async with self._sessions() as session:
            return list((await session.scalars(query)).all())

    async def replace(self, alert_id: uuid.UUID, values: AlertValues) -> AlertRecord | None:
        """Set every client field of an alert; None if it does not exist."""
        async with transaction(self._sessions) as session:
            record = await session.get(AlertRecord, alert_id)
            if record is None:
                return None
            for column, value in values.columns().items():
                setattr(record, column, value)
        return await self.get(alert_id)

    async def delete(self, alert_id: uuid.UUID) -> bool:
        """Delete an alert (its history stays); False if it did not exist."""
        async with transaction(self._sessions) as session:
            result = await session.execute(delete(AlertRecord).where(AlertRecord.id == alert_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # ----------------------------------------------------------------- history
    async def history(
        self,
        alert_id: uuid.UUID | None = None,
        *,
        limit: int = 100,
        before: datetime | None = None,
        symbol: str | None = None,
    ) -> list[AlertEventRecord]:
        """Firings, newest first; of one alert or of all."""
        if not 1 <= limit <= MAX_HISTORY_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_HISTORY_LIMIT}")
        query = select(AlertEventRecord).order_by(
            AlertEventRecord.fired_at.desc(), AlertEventRecord.id
        )
        if alert_id is not None:
            query = query.where(AlertEventRecord.alert_id == alert_id)
        if symbol is not None:
            query = query.where(AlertEventRecord.symbol == symbol)
        if before is not None:
            query = query.where(AlertEventRecord.fired_at < before)
        async with self._sessions() as session:
            return list((await session.scalars(query.limit(limit))).all())

    # ------------------------------------------------ AlertJournal (the engine)
    async def record_trigger(self, event: AlertEvent) -> None:
        """Keep one firing and count it on its alert (deactivating a spent one)."""
        trigger = event.trigger
        fired_at = ns_to_datetime(trigger.ts_ns)
        alert_id = uuid.UUID(event.alert.id)
        changes: dict[str, object] = {
            "trigger_count": AlertRecord.trigger_count + 1,
            "last_triggered_at": fired_at,
        }
        if trigger.spent:
            changes["active"] = False
        async with transaction(self._sessions) as session:
            session.add(
                AlertEventRecord(
                    id=uuid.UUID(event.id),
                    alert_id=alert_id,
                    alert_name=event.alert.name,
                    symbol=trigger.symbol,
                    condition=str(trigger.condition),
                    price=trigger.price,
                    reference_price=trigger.reference_price,
                    change_pct=trigger.change_pct,
                    message=trigger.message,
                    fired_at=fired_at,
                    webhook_url=event.alert.webhook_url,
                    delivery_status=str(event.delivery),
                    attempts=0,
                )
            )
            await session.execute(
                update(AlertRecord).where(AlertRecord.id == alert_id).values(**changes)
            )

    async def record_delivery(
        self, event_id: str, outcome: DeliveryOutcome, delivered_ns: int | None
    ) -> None:
        """Store how a firing's webhook delivery ended."""
        async with transaction(self._sessions) as session:
            await session.execute(
                update(AlertEventRecord)
                .where(AlertEventRecord.id == uuid.UUID(event_id))
                .values(
                    delivery_status=str(outcome.status),
                    attempts=outcome.attempts,
                    last_error=outcome.error,
                    delivered_at=None if delivered_ns is None else ns_to_datetime(delivered_ns),
                )
            )
