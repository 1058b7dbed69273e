"""/api/v1/backtests: jobs queued over HTTP, run in worker processes, read back.

The platform is served on a real socket; its DATA_DIR is the test's tmp_path,
where the GOOG daily bars are written as a CSV. The numbers are backtesting.py's
for SmaCross(10, 20) with cash 10,000 and commission 0.2 %.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from backtesting.test import GOOG

from tests.integration.api.live_server import LiveApi, live_api
from trademk.domain.market import Tick, TickKind
from trademk.security.roles import Role

pytestmark = pytest.mark.timeout(90)

GOOG_RUN = {"strategy": "sma_cross", "data_file": "uploads/goog.csv", "commission": 0.002}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[LiveApi]:
    (tmp_path / "uploads").mkdir()
    GOOG.to_csv(tmp_path / "uploads" / "goog.csv")
    async with live_api(tmp_path) as running:
        yield running


async def headers(api: LiveApi, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {(await api.user_token(role))[1]}"}


async def finished(api: LiveApi, job_id: str, auth: dict[str, str]) -> dict[str, Any]:
    await asyncio.wait_for(api.platform.backtests.wait(job_id), 60)
    response = await api.http.get(f"/api/v1/backtests/{job_id}", headers=auth)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


async def test_a_trader_queues_a_backtest_reads_its_results_and_report_then_deletes_it(
    api: LiveApi, tmp_path: Path
) -> None:
    trader, viewer = await headers(api, Role.TRADER), await headers(api, Role.VIEWER)

    created = await api.http.post("/api/v1/backtests", json=GOOG_RUN, headers=trader)

    assert created.status_code == 202, created.text
    queued = created.json()
    assert queued["status"] in ("queued", "running") and queued["stats"] is None
    assert created.headers["location"] == f"/api/v1/backtests/{queued['id']}"
    job = await finished(api, queued["id"], viewer)
    assert job["status"] == "done", job["error"]
    assert (job["ran_on"], job["engine"], job["data_file"]) == ("fast", "auto", "uploads/goog.csv")
    assert job["stats"]["Equity Final [$]"] == pytest.approx(56263.52, abs=0.01)
    assert job["stats"]["# Trades"] == len(job["trades"]) == 93
    assert job["stats"]["Duration"] == 3116.0
    assert job["trades"][0]["Duration"] == 19.0
    assert job["open_position"]["size"] == 69.0

    report = await api.http.get(job["report_url"], headers=viewer)
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/html")
    assert "Price and trades" in report.text and "Plotly.newPlot" in report.text
    chart = await api.http.get(job["chart_url"], headers=viewer)
    assert chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(PNG_MAGIC)
    listed = (await api.http.get("/api/v1/backtests", headers=viewer)).json()
    assert [j["id"] for j in listed] == [job["id"]] and "trades" not in listed[0]
    done = await api.http.get("/api/v1/backtests", params={"status": "done"}, headers=viewer)
    failed = await api.http.get("/api/v1/backtests", params={"status": "failed"}, headers=viewer)
    assert (len(done.json()), failed.json()) == (1, [])

    path = f"/api/v1/backtests/{job['id']}"
    assert (await api.http.delete(path, headers=viewer)).status_code == 403
    assert (await api.http.delete(path, headers=trader)).status_code == 204
    assert (await api.http.get(path, headers=viewer)).status_code == 404
    assert (await api.http.delete(path, headers=trader)).status_code == 404
    assert list((tmp_path / "reports").glob(f"{job['id']}.*")) == []


async def _store_goog(api: LiveApi, symbol: str) -> None:
    """One trade print per OHLC value of each GOOG day: the store's 1d bars are GOOG's."""
    hour = 3_600_000_000_000
    ticks = []
    for day, row in zip(GOOG.index, GOOG.itertuples(), strict=True):
        midnight = pd.Timestamp(day, tz="UTC").value
        for offset, price in enumerate((row.Open, row.High, row.Low, row.Close), start=1):
            ts = midnight + offset * hour
            ticks.append(Tick(symbol, "TEST", TickKind.TRADE, ts, float(price), 1.0, received=ts))
    await api.platform.market.store.write(ticks)


async def test_a_backtest_over_stored_bars_runs_on_the_event_engine(api: LiveApi) -> None:
    trader = await headers(api, Role.TRADER)
    await _store_goog(api, "BTCUSDT")
    body = {
        "strategy": "sma_cross",
        "symbol": "btcusdt",
        "start": "2004-01-01T00:00:00Z",
        "end": "2014-01-01",
        "interval": "1d",
        "commission": 0.002,
        "engine": "event",
        "close_at_end": True,
    }

    created = await api.http.post("/api/v1/backtests", json=body, headers=trader)
    assert created.status_code == 202, created.text
    job = await finished(api, created.json()["id"], trader)

    assert job["status"] == "done", job["error"]
    assert (job["symbol"], job["ran_on"], job["close_at_end"]) == ("BTCUSDT", "event", True)
    assert job["end"] == "2014-01-01T00:00:00Z"
    assert job["stats"]["# Trades"] == 94  # the open position closed on the last bar
    assert job["open_position"] is None


BAD_REQUESTS = [
    # (change to a valid request, the field named, words of the message)
    ({"strategy": "nope"}, "strategy", "unknown strategy 'nope' (known: "),
    ({"params": {"fast": 0}}, "params", "parameter 'fast' must be >= 1, got 0"),
    ({"params": {"speed": 3}}, "params", "SmaCross has no parameter 'speed'"),
    ({"params": {"fast": 30}}, "params", "sma_cross needs fast < slow"),
    ({"params": {"fast": "ten"}}, "params", "parameter 'fast' must be an integer"),
    ({"data_file": "../goog.csv"}, "data_file", "outside the server's data directory"),
    ({"data_file": "uploads/none.csv"}, "data_file", "no data file 'uploads/none.csv'"),
    ({"data_file": "uploads/goog.xlsx"}, "data_file", "use .csv or .parquet"),
    (
        {"data_file": None, "symbol": "DOGE/EUR", "start": "2024-01-01", "end": "2024-02-01"},
        "symbol",
        "unknown symbol 'DOGE/EUR'",
    ),
    (
        {"data_file": None, "symbol": "BTCUSDT", "start": "2024-02-01", "end": "2024-01-01"},
        "start",
        "must be before end",
    ),
    (
        {"data_file": None, "symbol": "BTCUSDT", "start": "2024-02-01"},
        "body",
        "needs start and end",
    ),
    (
        {"data_file": None, "symbol": "BTCUSDT", "start": "2024-13-01", "end": "2024-12-01"},
        "start",
        "datetime",
    ),
    ({"data_file": None}, "body", "give either symbol (with start and end) or data_file"),
    ({"symbol": "BTCUSDT"}, "body", "not both"),
    ({"commission": 0.5}, "commission", "less than 0.1"),
    ({"cash": 0}, "cash", "greater than 0"),
    ({"engine": "warp"}, "engine", "'auto', 'fast' or 'event'"),
]


async def test_bad_requests_are_refused_with_422_naming_the_field_and_the_problem(
    api: LiveApi,
) -> None:
    trader = await headers(api, Role.TRADER)

    for change, field, message in BAD_REQUESTS:
        body = {k: v for k, v in {**GOOG_RUN, **change}.items() if v is not None}
        refused = await api.http.post("/api/v1/backtests", json=body, headers=trader)

        assert refused.status_code == 422, (change, refused.text)
        problem = refused.json()["detail"][0]
        assert problem["loc"][-1] == field, (change, problem)
        assert message in problem["msg"], (change, problem)
    assert api.platform.backtests.jobs() == []


async def test_viewers_read_traders_create_and_strangers_are_refused(api: LiveApi) -> None:
    viewer = await headers(api, Role.VIEWER)

    created = await api.http.post("/api/v1/backtests", json=GOOG_RUN, headers=viewer)

    assert created.status_code == 403
    assert (await api.http.get("/api/v1/backtests")).status_code == 401
    assert (await api.http.get("/api/v1/backtests", headers=viewer)).json() == []
    missing = await api.http.get(
        "/api/v1/backtests/00000000-0000-4000-8000-000000000000", headers=viewer
    )
    assert missing.status_code == 404 and "no backtest with id" in missing.json()["detail"]


async def test_a_job_whose_data_cannot_be_read_fails_with_the_reason(
    api: LiveApi, tmp_path: Path
) -> None:
    trader = await headers(api, Role.TRADER)
    (tmp_path / "uploads" / "broken.csv").write_text("Date,Open,High\n2024-01-02,1,2\n")

    created = await api.http.post(
        "/api/v1/backtests", json={**GOOG_RUN, "data_file": "uploads/broken.csv"}, headers=trader
    )
    job = await finished(api, created.json()["id"], trader)

    assert job["status"] == "failed"
    assert "missing column(s) ['Low', 'Close']" in job["error"]
    assert (job["stats"], job["trades"], job["report_url"]) == (None, None, None)
    report = await api.http.get(f"/api/v1/backtests/{job['id']}/report", headers=trader)
    assert report.status_code == 404 and "failed" in report.json()["detail"]


async def test_finished_jobs_survive_a_restart_and_interrupted_ones_are_marked_failed(
    tmp_path: Path,
) -> None:
    (tmp_path / "uploads").mkdir()
    GOOG.to_csv(tmp_path / "uploads" / "goog.csv")
    async with live_api(tmp_path) as first:
        trader = await headers(first, Role.TRADER)
        created = await first.http.post("/api/v1/backtests", json=GOOG_RUN, headers=trader)
        job = await finished(first, created.json()["id"], trader)
    # A job file left "running" by a process that died mid-run.
    reports = tmp_path / "reports"
    crashed = orjson.loads((reports / f"{job['id']}.json").read_bytes())
    crashed.update(id="11111111-1111-4111-8111-111111111111", status="running", result=None)
    (reports / f"{crashed['id']}.json").write_bytes(orjson.dumps(crashed))

    async with live_api(tmp_path) as second:
        viewer = await headers(second, Role.VIEWER)
        again = await second.http.get(f"/api/v1/backtests/{job['id']}", headers=viewer)
        lost = await second.http.get(f"/api/v1/backtests/{crashed['id']}", headers=viewer)
        report = await second.http.get(f"/api/v1/backtests/{job['id']}/report", headers=viewer)

    assert again.json()["status"] == "done"
    assert again.json()["stats"] == job["stats"] and again.json()["trades"] == job["trades"]
    assert report.status_code == 200
    assert lost.json()["status"] == "failed" and "interrupted" in lost.json()["error"]
