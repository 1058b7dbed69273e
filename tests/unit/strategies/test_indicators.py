from __future__ import annotations

import numpy as np
import pytest

from trademk.strategies import indicators as ind


def test_sma_is_the_mean_of_the_last_n_values() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    result = ind.sma(values, 3)
    assert np.isnan(result[:2]).all()
    np.testing.assert_allclose(result[2:], [2.0, 3.0, 17 / 3])


def test_ema_warms_up_like_sma_and_follows_the_recursion() -> None:
    values = np.arange(1.0, 11.0)
    result = ind.ema(values, 3)
    assert np.isnan(result[:2]).all()
    alpha = 0.5
    expected = values[0]
    for value in values[1:3]:
        expected = alpha * value + (1 - alpha) * expected
    assert result[2] == pytest.approx(expected)


def test_crossover_needs_strictly_below_then_strictly_above() -> None:
    a = np.array([1.0, 3.0, 3.0, 2.0, 2.0, 3.0, np.nan, 5.0])
    b = np.array([2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0])
    # index 1: 1<2 then 3>2 -> cross; index 4->5: 2==2 is not strictly below -> no cross
    assert ind.crossover(a, b).tolist() == [False, True, False, False, False, False, False, False]
    assert ind.crossunder(a, b).tolist() == [False] * 8
    assert ind.crossunder(b, a)[1]


def test_channels_and_shift() -> None:
    values = np.array([1.0, 5.0, 3.0, 2.0, 4.0])
    np.testing.assert_array_equal(ind.highest(values, 2)[1:], [5.0, 5.0, 3.0, 4.0])
    np.testing.assert_array_equal(ind.lowest(values, 3)[2:], [1.0, 2.0, 2.0])
    shifted = ind.shift(values, 2)
    assert np.isnan(shifted[:2]).all()
    np.testing.assert_array_equal(shifted[2:], [1.0, 5.0, 3.0])


def test_rate_of_change_and_rsi() -> None:
    values = np.array([100.0, 110.0, 121.0, 133.1])
    np.testing.assert_allclose(ind.rate_of_change(values, 1)[1:], [0.1, 0.1, 0.1])
    rising = np.linspace(1, 100, 60)
    rsi = ind.rsi(rising, 14)
    assert np.isnan(rsi[:14]).all()
    assert rsi[-1] == pytest.approx(100.0)
    noisy = 100 + np.sin(np.arange(200))
    assert np.nanmin(ind.rsi(noisy, 14)) >= 0 and np.nanmax(ind.rsi(noisy, 14)) <= 100


def test_first_valid_index_and_bad_windows() -> None:
    assert ind.first_valid_index(np.array([np.nan, np.nan, 1.0])) == 2
    assert ind.first_valid_index(np.array([np.nan, np.nan])) == 0
    with pytest.raises(ValueError, match="positive integer"):
        ind.sma([1.0, 2.0], 0)
    with pytest.raises(ValueError, match="1-d"):
        ind.sma(np.ones((2, 2)), 1)
