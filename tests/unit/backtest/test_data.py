from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trademk.backtest.data import DataError, bars_from_frame, load_ohlcv


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_with_lowercase_columns_and_a_date_column(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "bars.csv",
        "date,open,HIGH,low,Close,volume\n2024-01-03,2,3,1,2.5,10\n2024-01-02,1,2,0.5,1.5,5\n",
    )
    frame = load_ohlcv(path)
    assert list(frame.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert frame.index.is_monotonic_increasing  # sorted
    assert frame["Close"].tolist() == [1.5, 2.5]
    assert frame.index[0] == pd.Timestamp("2024-01-02")


def test_epoch_timestamps_are_recognised_by_size(tmp_path: Path) -> None:
    ms = 1_700_000_000_000
    path = write_csv(
        tmp_path / "ms.csv",
        f"timestamp,Open,High,Low,Close,Volume\n{ms},1,1,1,1,0\n{ms + 60_000},1,1,1,1,0\n",
    )
    frame = load_ohlcv(path)
    assert frame.index[1] - frame.index[0] == pd.Timedelta(minutes=1)
    assert str(frame.index.tz) == "UTC"
    bars = bars_from_frame(frame)
    assert bars.ts[0] == ms * 1_000_000


def test_parquet_and_datetime_column(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "Datetime": pd.date_range("2024-01-01", periods=3, freq="h", tz="America/New_York"),
            "Open": [1.0, 2, 3], "High": [1.0, 2, 3], "Low": [1.0, 2, 3], "Close": [1.0, 2, 3],
            "Volume": [1, 2, 3],
        }
    )  # fmt: skip
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path)
    loaded = load_ohlcv(path)
    assert str(loaded.index.tz) == "UTC"
    assert loaded.index[0] == pd.Timestamp("2024-01-01 05:00", tz="UTC")


def test_dataframe_without_volume_gets_nan_volume() -> None:
    index = pd.date_range("2024-01-01", periods=2, freq="D")
    frame = load_ohlcv(
        pd.DataFrame(
            {"open": [1.0, 2], "high": [1, 2], "low": [1, 2], "close": [1, 2]}, index=index
        )
    )
    assert np.isnan(frame["Volume"]).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("when,Open,High,Low,Close\n2024-01-01,1,1,1,1\n", "no time column"),
        ("Date,Open,High,Close\n2024-01-01,1,1,1\n", r"missing column\(s\) \['Low'\]"),
        ("Date,Open,High,Low,Close\n2024-01-01,1,1,,1\n", "missing price"),
        ("Date,Open,High,Low,Close\n2024-01-01,1,1,1,1\n2024-01-01,1,1,1,1\n", "duplicate"),
        ("Date,Open,High,Low,Close\n2024-01-01,1,1,x,1\n", "not numeric"),
        ("Date,Open,High,Low,Close\n2024-01-01,1,1,0,1\n", "positive"),
        ("Date,Open,High,Low,Close\n", "no rows"),
    ],
)
def test_bad_files_get_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_ohlcv(write_csv(tmp_path / "bad.csv", text))


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such data file"):
        load_ohlcv(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="unsupported data file"):
        load_ohlcv(write_csv(tmp_path / "bars.json", "{}"))
