"""``BacktestJobRunner``: queues jobs, runs them in worker processes, keeps their state."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Final

import orjson
import pandas as pd
import structlog

from trademk.backtest.data import load_from_tick_store
from trademk.backtest.jobs.checks import check_request
from trademk.backtest.jobs.model import (
    BacktestJob,
    BacktestRequest,
    JobStatus,
    TickStoreData,
)
from trademk.backtest.jobs.results import error_text, execute_backtest
from trademk.domain.ports import TickStore
from trademk.engine.clock import Clock, datetime_to_ns, utc_now

__all__ = ["INTERRUPTED", "BacktestJobRunner"]

log = structlog.get_logger(__name__)

INTERRUPTED: Final = "interrupted: the platform stopped while the job was running"


class BacktestJobRunner:
    """Queues, runs and remembers backtest jobs; see ``trademk.backtest.jobs``.

    ``known_symbol`` returns a symbol's canonical form or raises ``LookupError``
    (the platform passes ``MarketDataService.known``); ``store`` supplies bars
    for ``TickStoreData`` requests.
    """

    def __init__(
        self,
        data_dir: Path,
        clock: Clock,
        store: TickStore | None = None,
        *,
        known_symbol: Callable[[str], str] | None = None,
        reports_dir: Path | None = None,
        workers: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.reports_dir = reports_dir or data_dir / "reports"
        self.clock = clock
        self.store = store
        self.known_symbol = known_symbol or str.upper
        self.workers = max(1, workers or min(4, os.cpu_count() or 1))
        self._jobs: dict[str, BacktestJob] = {}
        self._finished: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self.workers)
        self._pool: ProcessPoolExecutor | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Load the jobs kept on disk; queue again those that never started."""
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        loaded = await asyncio.to_thread(self._read_job_files)
        for job in sorted(loaded, key=lambda j: j.created_at):
            self._jobs[job.id] = job
            self._finished[job.id] = asyncio.Event()
            if job.status is JobStatus.RUNNING:
                self._finish(job, JobStatus.FAILED, error=INTERRUPTED)
            elif job.status is JobStatus.QUEUED:
                self._launch(job)
            else:
                self._finished[job.id].set()
        log.info("backtest jobs loaded", jobs=len(loaded), reports_dir=str(self.reports_dir))

    async def stop(self) -> None:
        """Stop taking work: running jobs are marked failed, queued ones stay queued."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _read_job_files(self) -> list[BacktestJob]:
        jobs = []
        for path in self.reports_dir.glob("*.json"):
            try:
                jobs.append(BacktestJob.from_json(orjson.loads(path.read_bytes())))
            except (OSError, ValueError, KeyError, TypeError) as err:
                log.warning("unreadable backtest job file skipped", path=str(path), error=str(err))
        return jobs

    # -- queries -----------------------------------------------------------------------

    def get(self, job_id: str) -> BacktestJob | None:
        """The job with that id, if known."""
        return self._jobs.get(job_id)

    def jobs(self, status: JobStatus | None = None, limit: int = 100) -> list[BacktestJob]:
        """Jobs newest first, optionally only those in ``status``."""
        found = [j for j in reversed(self._jobs.values()) if status is None or j.status is status]
        return found[:limit]

    def report_path(self, job_id: str) -> Path:
        """Where the job's HTML report is (or will be) written."""
        return self.reports_dir / f"{job_id}.html"

    async def wait(self, job_id: str) -> BacktestJob:
        """The job once it is done or failed."""
        await self._finished[job_id].wait()
        return self._jobs[job_id]

    # -- submission ----------------------------------------------------------------------

    def check(self, request: BacktestRequest) -> BacktestRequest:
        """``check_request`` against this runner's data directory and symbols."""
        return check_request(request, data_dir=self.data_dir, known_symbol=self.known_symbol)

    def submit(self, request: BacktestRequest) -> BacktestJob:
        """Check ``request`` and queue it; returns the new job (status ``queued``)."""
        job = BacktestJob(str(uuid.uuid4()), self.check(request), utc_now(self.clock))
        self._jobs[job.id] = job
        self._finished[job.id] = asyncio.Event()
        self._save(job)
        self._launch(job)
        return job

    def _launch(self, job: BacktestJob) -> None:
        task = asyncio.create_task(self._run(job), name=f"backtest-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- execution -------------------------------------------------------------------------

    async def _run(self, job: BacktestJob) -> None:
        async with self._slots:
            job.status, job.started_at = JobStatus.RUNNING, utc_now(self.clock)
            self._save(job)
            try:
                payload = await self._execute(job)
            except asyncio.CancelledError:
                self._finish(job, JobStatus.FAILED, error=INTERRUPTED)
                raise
            except BrokenProcessPool:
                self._pool = None
                self._finish(job, JobStatus.FAILED, error="the backtest worker process died")
            except Exception as err:
                log.info("backtest job failed", job=job.id, error=error_text(err))
                self._finish(job, JobStatus.FAILED, error=error_text(err))
            else:
                self._finish(job, JobStatus.DONE, result=payload)

    async def _execute(self, job: BacktestJob) -> dict[str, Any]:
        request = job.request
        data: pd.DataFrame | str
        if isinstance(request.data, TickStoreData):
            if self.store is None:
                raise RuntimeError("no tick store is configured")
            source = request.data
            data = await load_from_tick_store(
                self.store,
                source.symbol,
                source.interval,
                datetime_to_ns(source.start),
                datetime_to_ns(source.end),
            )
        else:
            data = str(self.data_dir.resolve() / request.data.path)
        loop = asyncio.get_running_loop()
        payload: dict[str, Any] = await loop.run_in_executor(
            self._executor(),
            execute_backtest,
            request.to_json(),
            data,
            str(self.report_path(job.id)),
        )
        return payload

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # Spawned, not forked: this process runs threads and an event loop.
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def _finish(
        self,
        job: BacktestJob,
        status: JobStatus,
        *,
        error: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        job.status, job.error, job.result = status, error, result
        job.finished_at = utc_now(self.clock)
        self._save(job)
        self._finished[job.id].set()

    def _save(self, job: BacktestJob) -> None:
        path = self.reports_dir / f"{job.id}.json"
        partial = path.with_suffix(".json.partial")
        partial.write_bytes(orjson.dumps(job.to_json()))
        partial.replace(path)

    def delete(self, job_id: str) -> bool:
        """Forget a finished job and remove its files; False if there is no such job.

        ``ValueError`` if the job is still queued or running.
        """
        job = self._jobs.get(job_id)
        if job is None:
            return False
        if not job.finished:
            raise ValueError(f"backtest {job_id} is {job.status.value}: wait until it finishes")
        del self._jobs[job_id]
        del self._finished[job_id]
        for suffix in (".html", ".png", ".json"):
            with contextlib.suppress(FileNotFoundError):
                (self.reports_dir / f"{job_id}{suffix}").unlink()
        return True
