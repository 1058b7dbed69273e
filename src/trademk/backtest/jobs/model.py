"""Backtest job values: the request, the job and its status."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from trademk.strategies.params import ParamValue

__all__ = [
    "BacktestJob",
    "BacktestRequest",
    "FileData",
    "InvalidBacktestRequest",
    "JobStatus",
    "TickStoreData",
]


class JobStatus(enum.StrEnum):
    """Where a job is in its life: queued → running → done | failed."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class InvalidBacktestRequest(ValueError):
    """A request that cannot run; ``field`` names the offending input."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True, slots=True)
class TickStoreData:
    """Bars of ``symbol`` aggregated by the tick store over ``[start, end)`` (UTC)."""

    symbol: str
    interval: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class FileData:
    """A CSV or Parquet OHLCV file (``trademk.backtest.data``) on the server; once
    checked, ``path`` is relative to the data directory."""

    path: str


@dataclass(frozen=True, slots=True)
class BacktestRequest:
    """What to backtest and how; see ``trademk.backtest.backtest`` for the meanings."""

    strategy: str
    data: TickStoreData | FileData
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    cash: float = 10_000.0
    commission: float = 0.0
    engine: str = "auto"
    close_at_end: bool = False

    def to_json(self) -> dict[str, Any]:
        """Plain values (the job file and the API)."""
        data: dict[str, Any]
        if isinstance(self.data, TickStoreData):
            data = {
                "symbol": self.data.symbol,
                "interval": self.data.interval,
                "start": self.data.start.isoformat(),
                "end": self.data.end.isoformat(),
            }
        else:
            data = {"data_file": self.data.path}
        return {
            "strategy": self.strategy,
            "params": dict(self.params),
            "cash": self.cash,
            "commission": self.commission,
            "engine": self.engine,
            "close_at_end": self.close_at_end,
            **data,
        }

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> BacktestRequest:
        """The request ``to_json`` wrote."""
        data: TickStoreData | FileData
        if values.get("data_file") is not None:
            data = FileData(values["data_file"])
        else:
            data = TickStoreData(
                values["symbol"],
                values["interval"],
                datetime.fromisoformat(values["start"]),
                datetime.fromisoformat(values["end"]),
            )
        return cls(
            strategy=values["strategy"],
            data=data,
            params=dict(values.get("params") or {}),
            cash=float(values["cash"]),
            commission=float(values["commission"]),
            engine=values["engine"],
            close_at_end=bool(values["close_at_end"]),
        )


@dataclass(slots=True)
class BacktestJob:
    """One submitted backtest and, once finished, its outcome."""

    id: str
    request: BacktestRequest
    created_at: datetime
    status: JobStatus = JobStatus.QUEUED
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    result: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        """Done or failed."""
        return self.status in (JobStatus.DONE, JobStatus.FAILED)

    def to_json(self) -> dict[str, Any]:
        """Plain values, as stored in the job file."""
        return {
            "id": self.id,
            "status": self.status.value,
            "request": self.request.to_json(),
            "created_at": self.created_at.isoformat(),
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
            "error": self.error,
            "result": self.result,
        }

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> BacktestJob:
        """The job ``to_json`` wrote."""

        def when(key: str) -> datetime | None:
            text = values.get(key)
            return None if text is None else datetime.fromisoformat(text)

        created = when("created_at")
        if created is None:
            raise ValueError("a job file without created_at")
        return cls(
            id=str(values["id"]),
            request=BacktestRequest.from_json(values["request"]),
            created_at=created,
            status=JobStatus(values["status"]),
            started_at=when("started_at"),
            finished_at=when("finished_at"),
            error=values.get("error"),
            result=values.get("result"),
        )
