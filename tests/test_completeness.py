"""The completeness check's pieces on tiny hand-built interval frames; the chance bounds against plain sums."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from common import completeness
from common.completeness import (
    chance_at_least, chance_at_most, check_completeness, interval_activity, judge_days, usual_profile,
)


def intervals(days: list[str], offered: dict[str, list[float]], source_rows: dict[str, list[int]] | None = None,
              queue: str = "Ops") -> pd.DataFrame:
    """One row per day per half-hour from 00:00 (all open): `offered[day]` per slot; `source_rows` likewise."""
    rows = []
    for day in days:
        start = pd.Timestamp(day)
        for k, n in enumerate(offered[day]):
            row = {"queue": queue, "date": start, "interval_start": start + pd.Timedelta(minutes=30 * k),
                   "offered": float(n), "offered_outside_hours": 0.0, "short_abandoned": np.nan, "is_open": True}
            if source_rows is not None:
                row["source_rows"] = source_rows[day][k]
            rows.append(row)
    return pd.DataFrame(rows)


DAYS = [f"2025-03-{d:02d}" for d in range(3, 17)]  # two weeks, Monday 03-03 .. Sunday 03-16
LAST = DAYS[-1]


def test_an_interval_report_row_of_zero_calls_is_data_and_a_missing_row_is_not() -> None:
    # A 24/7 queue busy day and night (5 calls every half-hour); on the last day the report says 0 for
    # 00:00-07:30. With a row for each of those half-hours the export covered them: 0 calls is a fact.
    offered = {d: [5] * 48 for d in DAYS} | {LAST: [0] * 16 + [5] * 32}
    reported = {d: [1] * 48 for d in DAYS}
    history = intervals(DAYS[:-1], offered, reported)
    assert check_completeness(intervals([LAST], offered, reported), 0.8, 2.0, history=history)[0].passed

    # Without rows for them, 16 of the 48 usual half-hours have no data (67%): missing, and named.
    unreported = reported | {LAST: [0] * 16 + [1] * 32}
    [result] = check_completeness(intervals([LAST], offered, unreported), 0.8, 2.0, history=history)
    assert (result.passed, result.severity, result.queue) == (False, "critical", "Ops")
    assert result.detail.startswith("queue Ops: Sun 2025-03-16 data in 32 of the 48 intervals that normally "
                                    "carry calls (none 00:00-08:00). Load the export for queue Ops on 2025-03-16")


def test_a_busy_day_reported_as_explicit_zeros_is_no_calls() -> None:
    offered = {d: [5] * 48 for d in DAYS} | {LAST: [0] * 48}
    reported = {d: [1] * 48 for d in DAYS}
    [result] = check_completeness(intervals([LAST], offered, reported), 0.8, 2.0,
                                  history=intervals(DAYS[:-1], offered, reported))
    assert not result.passed
    assert "Sun 2025-03-16 no calls (usually about 240)" in result.detail


def test_quiet_hours_are_not_expected_and_a_quiet_queue_is_not_judged() -> None:
    # Calls from 08:00 to 17:30 only (3 a half-hour): the night never carries calls, so an empty night
    # is not missing; the day's 20 half-hours are all there.
    offered = {d: [0] * 16 + [3] * 20 + [0] * 12 for d in DAYS}
    [result] = check_completeness(intervals(DAYS, offered), 0.8, 1.0)
    assert result.passed and result.detail.startswith("14 queue-days judged")
    # Below validation.min_calls_per_open_interval on average (60 / 48 = 1.25 < 2): not judged at all.
    [result] = check_completeness(intervals(DAYS, offered), 0.8, 2.0)
    assert result.passed and "no queue busy enough" in result.detail


def test_min_share_zero_turns_the_check_off() -> None:
    offered = {d: [5] * 48 for d in DAYS} | {LAST: [0] * 48}
    [result] = check_completeness(intervals(DAYS, offered), 0.0, 2.0)
    assert result.passed and "completeness_min_share is 0" in result.detail


def test_days_before_halt_from_are_one_warning_and_ignore_dates_are_not_judged() -> None:
    offered = {d: [5] * 48 for d in DAYS} | {"2025-03-05": [0] * 48, "2025-03-12": [0] * 48}
    frame = intervals(DAYS, offered)
    results = check_completeness(frame, 0.8, 2.0, halt_from=date(2025, 3, 13))
    assert [(r.severity, r.passed) for r in results] == [("critical", True), ("warning", False)]
    warning = next(r for r in results if r.severity == "warning")
    assert warning.detail.startswith("2 earlier queue-days look incomplete; they are from before 2025-03-13")
    assert "Ops Wed 2025-03-05 no calls" in warning.detail and "Ops Wed 2025-03-12 no calls" in warning.detail
    # Every day can halt: one critical result for the queue, naming both days.
    [critical] = check_completeness(frame, 0.8, 2.0)
    assert "Load the export for queue Ops on 2025-03-05, 2025-03-12, or list the dates" in critical.detail
    # A known outage is neither judged nor compared with.
    [result] = check_completeness(frame, 0.8, 2.0, [date(2025, 3, 5), date(2025, 3, 12)])
    assert result.passed


def test_a_day_that_stops_early_is_a_half_day_and_a_late_start_is_missing() -> None:
    hours = [0] * 16 + [4] * 20 + [0] * 12  # 08:00-18:00
    profiled = usual_profile(interval_activity(intervals(DAYS, {d: hours for d in DAYS} | {
        "2025-03-13": [0] * 16 + [4] * 8 + [0] * 24,           # Thu: calls until 12:00, then none
        "2025-03-14": [0] * 16 + [0] * 8 + [4] * 12 + [0] * 12,  # Fri: none before 12:00
    })))
    days = judge_days(profiled, 0.8).set_index("date")
    assert days.loc["2025-03-13", "verdict"] == "stopped_early" and days.loc["2025-03-13", "covered"] == 8
    assert days.loc["2025-03-14", "verdict"] == "short"
    assert days.loc["2025-03-12", "verdict"] == "ok"


def test_comparable_days_are_the_nearest_same_weekdays_earlier_first() -> None:
    # One queue, one slot, 12 Mondays; Monday k had calls when k is odd. Oracle: a plain loop.
    mondays = pd.date_range("2025-01-06", periods=12, freq="7D")
    frame = pd.DataFrame({"queue": "Ops", "date": mondays, "slot": 600, "weekday": 0,
                          "calls": [float(k % 2) for k in range(12)], "has_calls": [k % 2 == 1 for k in range(12)],
                          "has_data": True, "offered": 0.0})
    profiled = usual_profile(frame)
    for k in range(12):
        before = list(range(max(0, k - 8), k))
        after = list(range(k + 1, min(12, k + 1 + 8 - len(before))))
        near = before + after
        assert profiled.loc[k, "n_comparable"] == len(near)
        assert profiled.loc[k, "share_with_calls"] == pytest.approx(sum(j % 2 for j in near) / len(near))


def test_a_saturday_without_saturday_history_is_not_judged_against_weekdays() -> None:
    # Mon-Fri 08:00-18:00 with 4 calls a half-hour, and one Saturday 10:00-14:00 with none: no Saturday
    # and no day of the same hours to compare with, so it is not judged (weekday volumes say nothing of it).
    days = [d for d in DAYS if pd.Timestamp(d).weekday() < 5]
    frame = intervals(days, {d: [0] * 16 + [4] * 20 + [0] * 12 for d in days})
    frame = frame[frame["interval_start"].dt.hour.between(8, 17)]
    saturday = intervals(["2025-03-15"], {"2025-03-15": [0] * 48})
    saturday = saturday[saturday["interval_start"].dt.hour.between(10, 13)]
    [result] = check_completeness(pd.concat([frame, saturday]), 0.8, 2.0)
    assert result.passed and "1 not judged" in result.detail


@pytest.mark.parametrize("mu", [0.01, 0.3, 1.0, 1.8, 3.0, 7.5, 20.0])
def test_chance_bounds_are_never_below_the_exact_poisson_tails(mu: float) -> None:
    def pmf(k: int) -> float:
        return math.exp(-mu + k * math.log(mu) - math.lgamma(k + 1))

    for m in range(40):
        exact = 1 - sum(pmf(k) for k in range(m))
        bound = float(chance_at_least(np.array([m]), np.array([mu]))[0])
        assert bound >= exact - 1e-12
        if 1e-200 < exact < 0.01:
            assert bound < 2 * exact  # tight where it decides
    for c in range(int(mu)):
        exact = sum(pmf(k) for k in range(c + 1))
        bound = float(chance_at_most(np.array([c]), np.array([mu]))[0])
        assert exact - 1e-12 <= bound <= (1.1 * exact if c <= completeness.NEAR_ZERO_SHARE * mu else 1.0)
