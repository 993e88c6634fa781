"""Intraday profile choice: a weekday's profile that fails its checks is replaced by the best robust candidate."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from common.calendar import interval_grid
from common.opening_hours import parse_opening_hours
from common.profiles import (
    FLAT, POOLED, SAME_WEEKDAY, ProfileSettings, _holdout_error, choose_profiles, hour_groups, pooled_profile,
    smoothed,
)

AS_OF = date(2025, 6, 1)  # a Sunday
# the bank's week: Sun-Thu 07-24, Fri 07-14, Sat a 5-hour evening shift 19-24
BANK = parse_opening_hours({"default": {"sun": "07:00-24:00", "mon": "07:00-24:00", "tue": "07:00-24:00",
                                        "wed": "07:00-24:00", "thu": "07:00-24:00", "fri": "07:00-14:00",
                                        "sat": "19:00-24:00"}, "queues": {}})
NO_CLOSED = pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]")})


def bank_history(weeks: int = 60, seed: int = 3) -> pd.DataFrame:
    """silver_interval rows of `weeks` weeks: a smooth midday curve of ~60 calls an interval on full days, and on the
    Saturday shift about one call an interval (Poisson), so its same-weekday shape is mostly noise."""
    start = AS_OF - timedelta(days=7 * weeks)
    grid = interval_grid(["Bank"], start, AS_OF - timedelta(days=1), 30, "Asia/Jerusalem", BANK, NO_CLOSED)
    hour = grid["interval_start"].dt.hour + grid["interval_start"].dt.minute / 60
    curve = 60 * np.exp(-((hour - 12.0) ** 2) / 18.0) + 5
    saturday = grid["date"].dt.day_of_week == 5
    rng = np.random.default_rng(seed)
    offered = rng.poisson(np.where(saturday, 1.0, curve)).astype(float)
    return grid.assign(offered=np.where(grid["is_open"], offered, 0.0))


def needed(days: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"queue": "Bank", "weekday": days})


def test_a_noisy_short_saturday_shift_gets_a_robust_profile_and_full_days_keep_theirs():
    profile, choice = choose_profiles(bank_history(), AS_OF, NO_CLOSED, BANK, needed([0, 4, 5, 6]))
    by_day = choice.set_index("weekday")
    assert by_day.loc[[0, 4, 6], "profile"].eq(SAME_WEEKDAY).all() and by_day.loc[[0, 4, 6], "passed"].all()
    saturday = by_day.loc[5]
    assert not saturday["passed"] and saturday["profile"] != SAME_WEEKDAY
    assert "Saturday intraday shape is noisy" in saturday["reason"] and "interval error" in saturday["reason"]
    # every weekday that did not choose flat has shares summing to 1 over its own opening hours
    sums = profile.groupby("weekday")["share"].sum()
    assert np.allclose(sums, 1.0)
    saturday_minutes = profile.loc[profile["weekday"] == 5, "minute"]
    assert saturday_minutes.empty or saturday_minutes.between(19 * 60, 23 * 60 + 30).all()


def test_weekdays_with_the_same_hours_pool_into_one_profile():
    history = bank_history(weeks=8)
    groups = hour_groups(["Bank"], BANK)
    assert groups.groupby("group")["weekday"].agg(list).to_dict() == {0: [0, 1, 2, 3, 6], 4: [4], 5: [5]}
    pooled = pooled_profile(history, AS_OF, 8, NO_CLOSED, groups)
    sun, mon = (pooled.loc[pooled["weekday"] == d].set_index("minute")["share"] for d in (6, 0))
    pd.testing.assert_series_equal(sun, mon)  # one curve for Sun-Thu
    assert pooled.loc[pooled["weekday"] == 0, "days"].max() == 5 * 8  # 5 weekdays x 8 weeks behind each time


def test_a_profile_resting_on_too_few_days_is_replaced_and_says_how_many():
    history = bank_history(weeks=20)
    history = history.loc[(history["date"].dt.day_of_week != 4) | (history["date"] >= pd.Timestamp("2025-05-20"))]
    _, choice = choose_profiles(history, AS_OF, NO_CLOSED, BANK, needed([4]))
    row = choice.iloc[0]
    assert not row["passed"] and row["reason"].startswith("only 2 Fridays of interval history in the last 16 weeks")


def test_smoothing_spreads_a_spike_to_its_neighbours_1_2_1():
    spike = pd.DataFrame({"queue": "Q", "weekday": 0, "minute": [600, 630, 660], "share": [0.0, 1.0, 0.0],
                          "days": 4})
    # edges average over two neighbours: 600: (2*0 + 1) / 3 = 1/3; 630: (0 + 2 + 0) / 4 = 1/2; 660: 1/3;
    # renormalised by 7/6: 2/7, 3/7, 2/7
    assert smoothed(spike)["share"].tolist() == pytest.approx([2 / 7, 3 / 7, 2 / 7])


def test_holdout_error_is_the_split_error_given_the_true_day_total():
    # a day of 30 + 10 calls split 50/50 gives 20 + 20: off by 10 + 10 of 40 = 50%; flat (no profile rows) the same
    actual = pd.DataFrame({"queue": "Q", "weekday": 0, "date": pd.Timestamp("2025-05-26"), "minute": [600, 630],
                           "offered": [30.0, 10.0]})
    half = pd.DataFrame({"queue": "Q", "weekday": 0, "minute": [600, 630], "share": [0.5, 0.5]})
    assert _holdout_error(half, actual, ("Q", 0)) == pytest.approx(0.5)
    assert _holdout_error(half.iloc[:0], actual, ("Q", 0)) == pytest.approx(0.5)
    right = half.assign(share=[0.75, 0.25])
    assert _holdout_error(right, actual, ("Q", 0)) == pytest.approx(0.0)


def test_without_recent_days_the_first_usable_candidate_is_used_and_flat_is_the_last_resort():
    history = bank_history(weeks=20)
    history = history.loc[history["date"].dt.day_of_week != 5]  # never a Saturday with data
    profile, choice = choose_profiles(history, AS_OF, NO_CLOSED, BANK, needed([5]),
                                      ProfileSettings(long_weeks=20))
    row = choice.iloc[0]
    assert row["profile"] == FLAT and "no Saturdays with calls in the last 16 weeks" in row["reason"]
    assert profile.empty
    assert POOLED not in row["reason"]  # Saturday has no weekday with the same hours to pool with
