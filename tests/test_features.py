"""Tests for common.features: point-in-time correctness, open-day view, fixed feature list and categories."""

import numpy as np
import pandas as pd
import pytest

from common.errors import DataError
from common.features import (
    HOLIDAY_DISTANCE_CAP, build_features, feature_columns, lookback_days, warmup_days, y_unit_features,
)
from common.seasonality import SeasonalShape, fit_shape

NO_HOLIDAYS = pd.DataFrame({"date": pd.to_datetime([]), "holiday_name": pd.Series([], dtype="str")})


def random_history(n_days: int, seed: int = 0, series=("A", "B")) -> pd.DataFrame:
    """Random y, weekends and a few random weekdays closed (y=0 there), complete calendar."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=n_days, freq="D")
    parts = []
    for s in series:
        is_holiday = rng.random(n_days) < 0.03
        is_open = (dates.day_of_week < 5) & ~is_holiday
        y = np.where(is_open, rng.uniform(50, 150, n_days).round(), 0.0)
        parts.append(pd.DataFrame({"series": s, "date": dates, "y": y, "is_open": is_open, "is_holiday": is_holiday}))
    return pd.concat(parts, ignore_index=True)


def week_and_two_days() -> pd.DataFrame:
    """Mon 2024-01-01 .. Tue 2024-01-09; Sat/Sun closed with y=0."""
    dates = pd.date_range("2024-01-01", periods=9, freq="D")
    y = [10.0, 20, 30, 40, 50, 0, 0, 60, 70]
    is_open = [True] * 5 + [False, False] + [True, True]
    return pd.DataFrame({"series": "A", "date": dates, "y": y, "is_open": is_open, "is_holiday": False})


@pytest.mark.parametrize("level", ["window", "seasonal"])
def test_features_of_day_t_do_not_change_when_y_from_t_onwards_changes(level):
    history = random_history(560, seed=1)
    holidays = pd.DataFrame({"date": history.loc[history["is_holiday"], "date"].unique(), "holiday_name": "x"})
    cut = pd.Timestamp("2025-05-05")
    later = history["date"] >= cut
    changed = history.assign(y=np.where(later, np.random.default_rng(7).uniform(0, 1000, len(history)), history["y"]))
    # The seasonal shape is a model parameter fitted on the training rows, as the trees are: fixed here,
    # so what is checked is that the features of day T read y before T only.
    shape = fit_shape(history.loc[~later]) if level == "seasonal" else None
    assert shape is None or shape.yearly  # 16 months before the cut: the yearly cycle is part of what is checked

    before = build_features(history, holidays, shape=shape)
    after = build_features(changed, holidays, shape=shape)

    assert "lag_364" in feature_columns(before)  # 400 days: the yearly lag is part of what is checked
    upto = before["date"] <= cut
    pd.testing.assert_frame_equal(before.loc[upto].drop(columns="y"), after.loc[upto].drop(columns="y"))
    assert not before.loc[~upto, "lag_1"].equals(after.loc[~upto, "lag_1"])  # the check can see a change


def test_open_day_view_hand_computed():
    # Mon..Fri 10,20,30,40,50, Sat/Sun closed, Mon 60, Tue 70; holidays Wed 01-03 and Thu 01-11.
    holidays = pd.DataFrame({"date": pd.to_datetime(["2024-01-03", "2024-01-11"]), "holiday_name": "h"})
    out = build_features(week_and_two_days(), holidays, lags=(1, 7), windows=(3,)).set_index("date")

    fri, mon2, tue2 = out.loc["2024-01-05"], out.loc["2024-01-08"], out.loc["2024-01-09"]
    assert np.isnan(mon2["lag_1"])  # yesterday was a closed Sunday: missing, not 0
    assert mon2["lag_7"] == 10.0 and tue2["lag_1"] == 60.0 and tue2["lag_7"] == 20.0
    assert fri["roll_mean_3"] == 30.0 and fri["roll_std_3"] == 10.0  # Tue..Thu 20,30,40
    assert mon2["roll_mean_3"] == 50.0 and np.isnan(mon2["roll_std_3"])  # Fri 50, Sat/Sun skipped
    assert tue2["roll_mean_3"] == 60.0  # Sat, Sun skipped, Mon 60
    assert tue2["same_weekday_mean_4"] == 20.0  # only last Tuesday is known
    assert tue2["level"] == 35.0  # (10+20+30+40+50+60) / 6 open days
    assert tue2["days_to_holiday"] == 2 and tue2["days_since_holiday"] == 6
    assert out.loc["2024-01-03", "days_to_holiday"] == 8
    assert out.loc["2024-01-03", "days_since_holiday"] == HOLIDAY_DISTANCE_CAP  # none before it is known
    assert tue2["weekday"] == 1 and tue2["week_of_year"] == 2 and tue2["day_of_month"] == 9
    assert np.isnan(out.loc["2024-01-01", "level"])  # nothing known before the first day


def test_seasonal_level_hand_computed():
    # Weekday effects log(2) on Monday, 0 elsewhere (no yearly term); half-life 1 day.
    shape = SeasonalShape(anchor="2024-01-01", weekday={"A": [np.log(2.0)] + [0.0] * 6})
    out = build_features(week_and_two_days(), NO_HOLIDAYS, shape=shape, level_half_life=1.0).set_index("date")
    # Tue 01-02: only Mon 01-01 is known, 10 / 2 = 5 deseasonalised; Tuesday's shape is 1.
    assert out.loc["2024-01-02", "level"] == pytest.approx(5.0)
    # Mon 01-08: Fri 50 (age 3, weight 1/8), Thu 40 (1/16), Wed 30 (1/32), Tue 20 (1/64), Mon 10/2 (1/128);
    # the weekend is closed (skipped); times Monday's shape 2.
    w = 0.5 ** np.arange(3, 8)
    expected = 2 * (w @ [50, 40, 30, 20, 5]) / w.sum()
    assert out.loc["2024-01-08", "level"] == pytest.approx(expected)
    assert np.isnan(out.loc["2024-01-01", "level"])


def test_month_end_flag_and_is_open_feature():
    history = pd.DataFrame({"series": "A", "date": pd.date_range("2024-01-30", periods=3, freq="D"),
                            "y": [1.0, 2, 0], "is_open": [True, True, False], "is_holiday": False})
    out = build_features(history, NO_HOLIDAYS)
    assert out["is_month_end"].tolist() == [0.0, 1.0, 0.0]
    assert out["is_open"].tolist() == [1.0, 1.0, 0.0]


def test_yearly_lag_only_with_long_history_unless_feature_names_fix_it():
    long_names = feature_columns(build_features(random_history(400), NO_HOLIDAYS))
    short = build_features(random_history(300), NO_HOLIDAYS)
    assert "lag_364" in long_names and "lag_364" not in feature_columns(short)

    fixed = build_features(random_history(300), NO_HOLIDAYS, feature_names=long_names)
    assert feature_columns(fixed) == long_names
    assert fixed["lag_364"].isna().all()


def test_feature_names_that_cannot_be_built_raise():
    with pytest.raises(DataError, match="lag_5"):
        build_features(random_history(60), NO_HOLIDAYS, feature_names=["series", "lag_5"])


def test_series_categories_are_fixed_when_given():
    only_b = random_history(60, series=("B",))
    out = build_features(only_b, NO_HOLIDAYS, categories=["A", "B"])
    assert list(out["series"].cat.categories) == ["A", "B"]
    assert set(out["series"].cat.codes) == {1}


@pytest.mark.parametrize("level", ["window", "seasonal"])
def test_tail_rebuild_gives_bit_identical_last_row(level):
    history = random_history(500, seed=3)
    shape = fit_shape(history) if level == "seasonal" else None
    names = feature_columns(build_features(history, NO_HOLIDAYS))
    full = build_features(history, NO_HOLIDAYS, feature_names=names, shape=shape)
    last = history["date"].max()
    tail = history.loc[history["date"] >= last - pd.Timedelta(days=lookback_days(names, shape is not None))]
    part = build_features(tail, NO_HOLIDAYS, feature_names=names, shape=shape)
    pd.testing.assert_frame_equal(full.loc[full["date"] == last].reset_index(drop=True),
                                  part.loc[part["date"] == last].reset_index(drop=True), check_exact=True)


def test_exogenous_joined_on_date_and_on_series_and_date():
    history = week_and_two_days()
    by_date = pd.DataFrame({"date": history["date"], "promo": np.arange(9.0)})
    by_series = pd.DataFrame({"series": "A", "date": history["date"], "mailing": np.arange(9.0) * 2})
    out = build_features(history, NO_HOLIDAYS, exogenous=by_date)
    assert feature_columns(out)[-1] == "promo" and out["promo"].tolist() == list(np.arange(9.0))
    out = build_features(history, NO_HOLIDAYS, exogenous=by_series)
    assert out["mailing"].tolist() == list(np.arange(9.0) * 2)


def test_gap_in_calendar_is_refused():
    history = week_and_two_days().drop(index=3)
    with pytest.raises(DataError, match="gap of 1 days before date 2024-01-05"):
        build_features(history, NO_HOLIDAYS)


def test_input_frame_is_not_modified():
    history = random_history(40)
    copy = history.copy()
    build_features(history, NO_HOLIDAYS)
    pd.testing.assert_frame_equal(history, copy)


def test_helpers_for_warmup_lookback_and_y_units():
    assert warmup_days() == 28  # lags up to 28, windows up to 28, 4 same weekdays
    assert lookback_days(["series", "lag_364", "roll_mean_28"]) == 364
    assert lookback_days(["series", "lag_28"]) == 91  # the level's fallback window
    assert lookback_days(["series", "lag_28"], seasonal_level=True) == 364
    assert y_unit_features(["series", "lag_7", "roll_std_7", "weekday", "same_weekday_mean_4"]) == [
        "lag_7", "roll_std_7", "same_weekday_mean_4"]
