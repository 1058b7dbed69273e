"""API types for price alerts and their history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from trademk.domain.alerts import AlertRule
from trademk.storage.alert_repository import rule_of

MAX_WINDOW_SECONDS = 7 * 86_400
MAX_COOLDOWN_SECONDS = 30 * 86_400


class AlertIn(BaseModel):
    """An alert to create, or the full new content of one (PUT).

    ``above``/``below``/``crossing`` need ``level``; ``percent_move`` needs
    ``percent`` and ``window_seconds``. ``once`` alerts fire a single time and are
    then deactivated; ``repeating`` ones fire again once the condition was false
    in between and ``cooldown_seconds`` passed.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "symbol": "BTCUSDT",
                    "condition": "crossing",
                    "level": 65000,
                    "mode": "repeating",
                    "cooldown_seconds": 60,
                    "name": "BTC through 65k",
                    "webhook_url": "https://example.com/hooks/trademk",
                }
            ]
        }
    )

    symbol: str = Field(min_length=1, max_length=32, examples=["BTCUSDT"])
    condition: Literal["above", "below", "crossing", "percent_move"]
    level: float | None = Field(default=None, gt=0, description="Price level (level rules)")
    percent: float | None = Field(
        default=None, gt=0, le=1000, description="Move in percent (percent_move)"
    )
    window_seconds: float | None = Field(
        default=None, gt=0, le=MAX_WINDOW_SECONDS, description="Look-back (percent_move)"
    )
    mode: Literal["once", "repeating"] = "once"
    cooldown_seconds: float = Field(default=0, ge=0, le=MAX_COOLDOWN_SECONDS)
    name: str = Field(default="", max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")
    webhook_url: HttpUrl | None = Field(
        default=None, description="POSTed a JSON payload on every firing (http or https)"
    )
    active: bool = True

    @model_validator(mode="after")
    def _rule_is_consistent(self) -> AlertIn:
        self.rule(self.symbol)  # raises ValueError: pydantic answers 422 with the message
        return self

    def rule(self, symbol: str) -> AlertRule:
        """The domain rule for ``symbol`` (the canonical form of ``self.symbol``)."""
        return rule_of(
            symbol=symbol,
            condition=self.condition,
            level=self.level,
            percent=self.percent,
            window_seconds=self.window_seconds,
            mode=self.mode,
            cooldown_seconds=self.cooldown_seconds,
        )


class AlertOut(BaseModel):
    id: uuid.UUID
    name: str
    symbol: str
    condition: str
    level: float | None
    percent: float | None
    window_seconds: float | None
    mode: str
    cooldown_seconds: float
    webhook_url: str | None
    active: bool
    trigger_count: int
    last_triggered_at: datetime | None
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class AlertEventOut(BaseModel):
    id: uuid.UUID
    alert_id: uuid.UUID
    alert_name: str
    symbol: str
    condition: str
    price: float
    reference_price: float | None
    change_pct: float | None
    message: str
    fired_at: datetime
    webhook_url: str | None
    delivery_status: Literal["none", "pending", "delivered", "failed"]
    attempts: int
    last_error: str | None
    delivered_at: datetime | None
