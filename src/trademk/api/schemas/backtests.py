"""API types for backtest jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trademk.backtest.jobs import BacktestJob, BacktestRequest, FileData, TickStoreData

ParamScalar = bool | int | float | str
JsonScalar = bool | int | float | str | None
JobStatusName = Literal["queued", "running", "done", "failed"]
MAX_PARAMS = 64
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


class BacktestIn(BaseModel):
    """A backtest to run: a strategy over stored bars (``symbol`` + ``start``/``end``/
    ``interval``, from the tick store) or over a CSV/Parquet file on the server
    (``data_file``, a path relative to DATA_DIR). ``commission`` is a fraction of traded
    value charged on every fill; ``engine`` ``auto`` runs signal strategies on the fast
    path; ``close_at_end`` closes a position still open on the last bar so it counts."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "strategy": "sma_cross",
                    "params": {"fast": 10, "slow": 20},
                    "symbol": "BTCUSDT",
                    "start": "2025-01-01T00:00:00Z",
                    "end": "2025-02-01T00:00:00Z",
                    "interval": "1h",
                    "cash": 10000,
                    "commission": 0.001,
                },
                {"strategy": "sma_cross", "data_file": "uploads/goog.csv", "commission": 0.002},
            ]
        },
    )

    strategy: str = Field(min_length=1, max_length=64, examples=["sma_cross"])
    params: dict[str, ParamScalar] = Field(
        default_factory=dict, max_length=MAX_PARAMS, description="The strategy's parameters"
    )
    symbol: str | None = Field(default=None, min_length=1, max_length=32)
    start: datetime | None = Field(default=None, description="Inclusive start (UTC if naive)")
    end: datetime | None = Field(default=None, description="Exclusive end (UTC if naive)")
    interval: Literal["1m", "5m", "15m", "1h", "1d"] = "1m"
    data_file: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        pattern=_PRINTABLE,
        description="CSV or Parquet file, relative to the server's DATA_DIR",
    )
    cash: float = Field(default=10_000.0, gt=0, le=1e15)
    commission: float = Field(default=0.0, ge=0, lt=0.1)
    engine: Literal["auto", "fast", "event"] = "auto"
    close_at_end: bool = False

    @model_validator(mode="after")
    def _one_data_source(self) -> BacktestIn:
        if (self.symbol is None) == (self.data_file is None):
            raise ValueError("give either symbol (with start and end) or data_file, not both")
        if self.symbol is not None and (self.start is None or self.end is None):
            raise ValueError("a backtest over stored bars needs start and end")
        return self

    def request(self) -> BacktestRequest:
        """The job request (checked by the runner, which may still refuse it)."""
        data: TickStoreData | FileData
        if self.symbol is not None:
            assert self.start is not None and self.end is not None  # the validator checked
            data = TickStoreData(self.symbol, self.interval, self.start, self.end)
        else:
            assert self.data_file is not None
            data = FileData(self.data_file)
        return BacktestRequest(
            strategy=self.strategy,
            data=data,
            params=dict(self.params),
            cash=self.cash,
            commission=self.commission,
            engine=self.engine,
            close_at_end=self.close_at_end,
        )


class OpenPositionOut(BaseModel):
    """A position still open after the last bar (not among the trades)."""

    size: float
    entry_price: float
    entry_time: datetime


class BacktestJobSummary(BaseModel):
    """A backtest job without its trade list."""

    id: uuid.UUID
    status: JobStatusName
    strategy: str
    params: dict[str, ParamScalar]
    symbol: str | None = None
    interval: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    data_file: str | None = None
    cash: float
    commission: float
    engine: str = Field(description="The engine asked for (auto, fast or event)")
    ran_on: str | None = Field(default=None, description="The engine that ran it (fast, event)")
    close_at_end: bool
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = Field(default=None, description="Why the job failed")
    stats: dict[str, JsonScalar] | None = Field(
        default=None,
        description="backtesting.py's statistics; times ISO 8601 UTC, durations in days",
    )
    open_position: OpenPositionOut | None = None
    report_url: str | None = Field(default=None, description="The HTML report (when done)")
    chart_url: str | None = Field(default=None, description="The PNG chart (when done)")

    @classmethod
    def of(cls, job: BacktestJob, **extra: Any) -> Self:
        """The API view of ``job``."""
        request = job.request.to_json()
        result = job.result or {}
        done = job.status.value == "done"
        base = f"/api/v1/backtests/{job.id}"
        return cls(
            id=uuid.UUID(job.id),
            status=job.status.value,
            ran_on=result.get("engine"),
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            error=job.error,
            stats=result.get("stats"),
            open_position=result.get("open_position"),
            report_url=f"{base}/report" if done else None,
            chart_url=f"{base}/report.png" if done else None,
            **request,
            **extra,
        )


class BacktestJobOut(BacktestJobSummary):
    """A backtest job with its closed trades (backtesting.py's columns; ``Duration`` in
    days, ``EntryTime``/``ExitTime`` ISO 8601 UTC)."""

    trades: list[dict[str, JsonScalar]] | None = None

    @classmethod
    def with_trades(cls, job: BacktestJob) -> BacktestJobOut:
        """The API view of ``job``, trades included."""
        trades = None if job.result is None else job.result.get("trades")
        return cls.of(job, trades=trades)
