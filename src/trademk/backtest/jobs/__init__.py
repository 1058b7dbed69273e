"""Backtest jobs: backtests run off the API's event loop, with their state and results kept.

A job is ``queued`` when submitted, ``running`` while a worker process executes it,
then ``done`` (statistics, trades, an HTML + PNG report) or ``failed`` (with the
error). The work runs in a pool of spawned processes, at most ``workers`` jobs at a
time, so a long event-driven run never stalls the API. Every state change is written
to ``<reports_dir>/<id>.json`` beside the job's ``<id>.html`` and ``<id>.png``: jobs
are held in memory and reloaded from those files at start, so finished jobs survive
a restart; a job still queued when the platform stopped is queued again, one that
was running is marked failed (it is not re-run: it may be what brought the process
down).
"""

from trademk.backtest.jobs.checks import DATA_SUFFIXES, check_request
from trademk.backtest.jobs.model import (
    BacktestJob,
    BacktestRequest,
    FileData,
    InvalidBacktestRequest,
    JobStatus,
    TickStoreData,
)
from trademk.backtest.jobs.results import execute_backtest, json_value, result_payload
from trademk.backtest.jobs.runner import INTERRUPTED, BacktestJobRunner

__all__ = [
    "DATA_SUFFIXES",
    "INTERRUPTED",
    "BacktestJob",
    "BacktestJobRunner",
    "BacktestRequest",
    "FileData",
    "InvalidBacktestRequest",
    "JobStatus",
    "TickStoreData",
    "check_request",
    "execute_backtest",
    "json_value",
    "result_payload",
]
