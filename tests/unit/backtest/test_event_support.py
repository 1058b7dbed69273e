"""Pieces of the event-driven backtest's driver: the bust guard and the GC pause."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

from trademk.backtest.event_support import BustGuard, cyclic_gc_paused


def brute_force_bust(
    close: np.ndarray, start: int, stop: int, cash: float, position: float
) -> int | None:
    for i in range(start, stop):
        if cash + position * float(close[i]) <= 0:
            return i
    return None


@pytest.mark.parametrize("seed", range(5))
def test_bust_guard_finds_exactly_what_a_scan_of_every_close_finds(seed: int) -> None:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.05, 400)))
    decisions = np.sort(rng.choice(np.arange(5, 395), size=30, replace=False)).astype(np.int64)
    guard = BustGuard(close, decisions)
    checked = busts = 0
    for segment, decision in enumerate(decisions.tolist()):
        following = int(decisions[segment + 1]) if segment + 1 < len(decisions) else len(close)
        for start in range(decision + 1, following):
            for position in (-50.0, -5.0, 5.0, 50.0):
                # cash around the level where this segment's extremes bust the account
                for cash in (-position * float(close[start]) * f for f in (0.8, 1.0, 1.2)):
                    expected = brute_force_bust(close, start, following, cash, position)
                    found = guard.first_bust(segment, start, following, cash, position)
                    assert found == expected, (segment, start, cash, position)
                    checked += 1
                    busts += expected is not None
    assert checked > 1000 and 0 < busts < checked


def test_gc_pause_restores_the_collector_once_the_last_overlapping_run_leaves() -> None:
    assert gc.isenabled()
    entered = threading.Event()
    release = threading.Event()

    def other_run() -> None:
        with cyclic_gc_paused():
            entered.set()
            release.wait(5)

    worker = threading.Thread(target=other_run)
    with cyclic_gc_paused():
        assert not gc.isenabled()
        worker.start()
        assert entered.wait(5)
    assert not gc.isenabled()  # the other run is still inside
    release.set()
    worker.join(5)
    assert gc.isenabled()


def test_gc_pause_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    try:
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_gc_pause_turns_the_collector_back_on_after_an_error() -> None:
    with pytest.raises(ValueError), cyclic_gc_paused():
        raise ValueError("strategy broke")
    assert gc.isenabled()
