"""The timing helpers of dgcn.models.profile (notebook 02's crossover study)."""

import math

import pytest

from dgcn.models import profile


def test_best_time_is_the_fastest_loop_per_call(monkeypatch):
    # a fake clock: every call of the timed function advances it by 1 ms, except during the
    # second timed loop, where another job "steals" the machine (3 ms a call)
    clock = {"now": 0.0, "calls": 0}
    monkeypatch.setattr(profile.time, "perf_counter", lambda: clock["now"])

    def work():
        clock["calls"] += 1
        slow = 12 <= clock["calls"] <= 15  # the second timed loop (after 7 + 4 calls)
        clock["now"] += 3e-3 if slow else 1e-3

    seconds = profile.best_time(work, repeats=3, min_seconds=4e-3)
    # calibration: loops of 1, 2 and 4 calls (1 + 2 + 4 = 7 calls); then 3 loops of 4 calls
    assert clock["calls"] == 7 + 3 * 4
    assert seconds == pytest.approx(1e-3)


def test_best_time_refuses_no_repeats():
    with pytest.raises(ValueError, match="repeats"):
        profile.best_time(lambda: None, repeats=0)


def test_crossover_interpolates_in_log_log():
    # ratio = size / 100 exactly: crosses 1 at 100, between the measured 50 and 200
    sizes = [25, 50, 200, 400]
    assert profile.crossover(sizes, [s / 100 for s in sizes]) == pytest.approx(100)
    # the last crossing from below counts (a dip at small sizes is call overhead)
    ratios = [0.5, 2.0, 0.8, 3.2]
    expected = math.exp(math.log(200) + math.log(1 / 0.8) / math.log(4) * math.log(2))
    assert profile.crossover(sizes, ratios) == pytest.approx(expected)
    assert math.isnan(profile.crossover(sizes, [2, 3, 4, 5]))  # never below 1
    with pytest.raises(ValueError):
        profile.crossover([1, 2], [1])
