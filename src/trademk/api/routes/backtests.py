"""Backtests: queue a job, follow it, read its statistics, trades and report.

Traders create and delete jobs; viewers read them. A job runs in a worker process
(``trademk.backtest.jobs``); ``POST`` answers 202 at once with the queued job.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.responses import FileResponse, HTMLResponse

from trademk.api.dependencies import PlatformDep
from trademk.api.errors import unprocessable
from trademk.api.schemas.backtests import (
    BacktestIn,
    BacktestJobOut,
    BacktestJobSummary,
    JobStatusName,
)
from trademk.api.security import AuditDep, TraderDep, ViewerDep, error_responses
from trademk.backtest.jobs import BacktestJob, InvalidBacktestRequest, JobStatus
from trademk.runtime import Platform

router = APIRouter(prefix="/api/v1/backtests", tags=["backtests"])

_NOT_FOUND = error_responses({404: "No such backtest"})
_NO_REPORT = error_responses(
    {404: "No such backtest, or it failed", 409: "The backtest has not finished yet"}
)


def _job(platform: Platform, job_id: uuid.UUID) -> BacktestJob:
    job = platform.backtests.get(str(job_id))
    if job is None:
        raise HTTPException(404, f"no backtest with id {job_id}")
    return job


def _report_file(platform: Platform, job_id: uuid.UUID, suffix: str) -> FileResponse:
    job = _job(platform, job_id)
    if not job.finished:
        raise HTTPException(409, f"backtest {job_id} is {job.status.value}: no report yet")
    if job.status is JobStatus.FAILED:
        raise HTTPException(404, f"backtest {job_id} failed, so it has no report: {job.error}")
    path = platform.backtests.report_path(job.id).with_suffix(suffix)
    if not path.is_file():
        raise HTTPException(404, f"the report of backtest {job_id} is missing")
    media = "text/html; charset=utf-8" if suffix == ".html" else "image/png"
    return FileResponse(path, media_type=media)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BacktestJobOut,
    summary="Queue a backtest; follow it at the Location answered",
)
async def create_backtest(
    body: BacktestIn,
    response: Response,
    principal: TraderDep,
    platform: PlatformDep,
    audit: AuditDep,
) -> BacktestJobOut:
    try:
        job = platform.backtests.submit(body.request())
    except InvalidBacktestRequest as err:
        raise unprocessable((("body", err.field), str(err))) from None
    response.headers["Location"] = f"/api/v1/backtests/{job.id}"
    await audit.record("backtest_create", target=job.id, detail={"strategy": job.request.strategy})
    return BacktestJobOut.with_trades(job)


@router.get("", response_model=list[BacktestJobSummary], summary="Backtests, newest first")
async def list_backtests(
    principal: ViewerDep,
    platform: PlatformDep,
    state: Annotated[
        JobStatusName | None, Query(alias="status", description="Only jobs in this state")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[BacktestJobSummary]:
    found = platform.backtests.jobs(None if state is None else JobStatus(state), limit)
    return [BacktestJobSummary.of(job) for job in found]


@router.get(
    "/{job_id}",
    response_model=BacktestJobOut,
    summary="One backtest: status, statistics, trades, report link",
    responses=_NOT_FOUND,
)
async def get_backtest(
    job_id: uuid.UUID, principal: ViewerDep, platform: PlatformDep
) -> BacktestJobOut:
    return BacktestJobOut.with_trades(_job(platform, job_id))


@router.get(
    "/{job_id}/report",
    response_class=HTMLResponse,
    summary="The backtest's HTML report (interactive charts, statistics, trades)",
    responses={
        200: {"content": {"text/html": {"schema": {"type": "string"}}}},
        **_NO_REPORT,
    },
)
async def backtest_report(
    job_id: uuid.UUID, principal: ViewerDep, platform: PlatformDep
) -> FileResponse:
    return _report_file(platform, job_id, ".html")


@router.get(
    "/{job_id}/report.png",
    response_class=FileResponse,
    summary="The backtest's chart as a PNG image",
    responses={
        200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
        **_NO_REPORT,
    },
)
async def backtest_chart(
    job_id: uuid.UUID, principal: ViewerDep, platform: PlatformDep
) -> FileResponse:
    return _report_file(platform, job_id, ".png")


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a finished backtest and its report",
    responses=error_responses({404: "No such backtest", 409: "The backtest has not finished"}),
)
async def delete_backtest(
    job_id: uuid.UUID, principal: TraderDep, platform: PlatformDep, audit: AuditDep
) -> Response:
    try:
        deleted = platform.backtests.delete(str(job_id))
    except ValueError as err:
        raise HTTPException(409, str(err)) from None
    if not deleted:
        raise HTTPException(404, f"no backtest with id {job_id}")
    await audit.record("backtest_delete", target=str(job_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
