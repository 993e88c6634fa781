"""Tests for common.seasonality: the fitted weekday / yearly / trend shape behind the seasonal level."""

import json

import numpy as np
import pandas as pd
import pytest

from common.errors import DataError
from common.seasonality import MIN_YEARLY_DAYS, SeasonalShape, fit_shape


def frame(series: str, dates: pd.DatetimeIndex, y: np.ndarray, is_open: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"series": series, "date": dates, "y": np.where(is_open, y, 0.0), "is_open": is_open})


def test_weekday_effects_are_recovered_exactly_and_centred_over_open_weekdays():
    dates = pd.date_range("2024-01-01", periods=56, freq="D")  # Monday, 8 weeks: too short for a yearly cycle
    factor = np.array([2.0, 1.0, 1.0, 1.0, 0.5, 1.0, 1.0])[dates.day_of_week]
    shape = fit_shape(frame("A", dates, 100 * factor, dates.day_of_week < 5))
    # log effects log 2, 0, 0, 0, log 0.5 average 0 already; closed Saturday and Sunday get 0.
    assert shape.weekday["A"] == pytest.approx([np.log(2), 0, 0, 0, -np.log(2), 0, 0], abs=1e-12)
    assert shape.yearly == () and shape.trend == 0.0
    assert shape.log_shape(["A", "A"], pd.to_datetime(["2024-03-04", "2024-03-08"])) == pytest.approx(
        [np.log(2), -np.log(2)])


def test_pooled_yearly_cycle_and_trend_are_recovered_from_noise_free_history():
    dates = pd.date_range("2023-01-01", periods=730, freq="D")
    years = (dates - dates[-1]).days.to_numpy() / 365.25
    cycle = 0.10 * np.cos(2 * np.pi * dates.day_of_year.to_numpy() / 365.25)
    weekday = np.array([0.2, 0.0, 0.0, 0.0, -0.2, -1.0, 0.0])[dates.day_of_week]
    is_open = dates.day_of_week < 6
    history = pd.concat([
        frame("Big", dates, 3000 * np.exp(0.04 * years + cycle + weekday), is_open),
        frame("Small", dates, 50 * np.exp(0.04 * years + cycle), dates.day_of_week < 5),
    ], ignore_index=True)
    shape = fit_shape(history)
    assert shape.trend == pytest.approx(0.04, abs=1e-9)
    assert shape.yearly == pytest.approx([0.10, 0, 0, 0, 0, 0], abs=1e-9)
    # Big is open Monday to Saturday: its effects are centred over those six days (mean -1/6).
    assert shape.weekday["Big"] == pytest.approx([0.2 + 1 / 6, 1 / 6, 1 / 6, 1 / 6, -0.2 + 1 / 6, -1 + 1 / 6, 0])
    assert shape.weekday["Small"] == pytest.approx([0] * 7, abs=1e-9)


def test_noisy_fit_equals_weighted_least_squares_with_one_dummy_column_per_series_and_weekday():
    rng = np.random.default_rng(3)
    dates = pd.date_range("2023-01-01", periods=600, freq="D")
    parts = [frame(name, dates, rng.poisson(size * (1 + 0.2 * np.cos(dates.day_of_year.to_numpy() / 58.1))) + 1.0,
                   dates.day_of_week < days) for name, size, days in (("A", 40, 5), ("B", 900, 6))]
    history = pd.concat(parts, ignore_index=True)
    shape = fit_shape(history)
    # The textbook form: log y on [series x weekday dummies | trend, cos/sin 1..3], weights 1 / (1/mean + CV^2).
    rows = history.loc[history["is_open"]]
    t = (rows["date"] - rows["date"].max()).dt.days.to_numpy() / 365.25
    doy = rows["date"].dt.day_of_year.to_numpy()
    cal = [t] + [f(2 * np.pi * k * doy / 365.25) for k in (1, 2, 3) for f in (np.cos, np.sin)]
    cells = [((rows["series"] == s) & (rows["date"].dt.day_of_week == d)).to_numpy(float)
             for s, days in (("A", 5), ("B", 6)) for d in range(days)]
    X = np.column_stack(cells + cal)
    mean = rows.groupby("series")["y"].transform("mean").to_numpy()
    root = np.sqrt(1 / (1 / mean + 0.15**2))
    beta, *_ = np.linalg.lstsq(X * root[:, None], np.log(rows["y"].to_numpy()) * root, rcond=None)
    assert [shape.trend, *shape.yearly] == pytest.approx(beta[11:], abs=1e-9)
    a, b = beta[:5], beta[5:11]
    assert shape.weekday["A"] == pytest.approx([*(a - a.mean()), 0, 0], abs=1e-9)
    assert shape.weekday["B"] == pytest.approx([*(b - b.mean()), 0], abs=1e-9)


def test_only_the_last_fit_days_are_fitted():
    dates = pd.date_range("2024-01-01", periods=70, freq="D")
    factor = np.where(dates < pd.Timestamp("2024-02-05"), 5.0, 1.0) * np.where(dates.day_of_week == 0, 2.0, 1.0)
    old_friday_peak = np.where((dates < pd.Timestamp("2024-02-05")) & (dates.day_of_week == 4), 9.0, 1.0)
    history = frame("A", dates, 100 * factor * old_friday_peak, dates.day_of_week < 5)
    recent = fit_shape(history, fit_days=35)  # 2024-02-05 .. 03-10: Monday twice the other weekdays
    assert recent.weekday["A"] == pytest.approx(list(np.log([2, 1, 1, 1, 1]) - np.log(2) / 5) + [0, 0])
    assert fit_shape(history).weekday["A"] != pytest.approx(recent.weekday["A"])


def test_no_yearly_cycle_or_trend_before_min_yearly_days():
    dates = pd.date_range("2023-01-01", periods=MIN_YEARLY_DAYS - 1, freq="D")
    growing = 100 * np.exp(0.5 * np.arange(len(dates)) / 365.25)
    assert fit_shape(frame("A", dates, growing, np.ones(len(dates), bool))).yearly == ()
    dates = pd.date_range("2023-01-01", periods=MIN_YEARLY_DAYS, freq="D")
    longer = fit_shape(frame("A", dates, 100 * np.exp(0.5 * np.arange(len(dates)) / 365.25), np.ones(len(dates), bool)))
    assert len(longer.yearly) == 6 and longer.trend == pytest.approx(0.5, abs=1e-6)


def test_unknown_series_get_a_neutral_shape_and_the_shape_survives_json():
    shape = SeasonalShape(anchor="2024-06-30", weekday={"A": [0.1, 0, 0, 0, -0.1, 0, 0]}, trend=0.03,
                          yearly=(0.1, 0.0, 0.0, 0.02))
    dates = pd.to_datetime(["2024-06-30", "2025-06-30"])  # a Sunday and a Monday, one year apart
    assert shape.log_shape(["B", "B"], dates)[1] - shape.log_shape(["B", "B"], dates)[0] == pytest.approx(
        0.03 * 365 / 365.25 + 0.1 * (np.cos(2 * np.pi * 181 / 365.25) - np.cos(2 * np.pi * 182 / 365.25))
        + 0.02 * (np.sin(4 * np.pi * 181 / 365.25) - np.sin(4 * np.pi * 182 / 365.25)))
    again = SeasonalShape.from_dict(json.loads(json.dumps(shape.to_dict())))
    assert again == shape
    np.testing.assert_array_equal(again.log_shape(["A", "B"], dates), shape.log_shape(["A", "B"], dates))


def test_history_without_calls_cannot_be_fitted():
    dates = pd.date_range("2024-01-01", periods=7, freq="D")
    with pytest.raises(DataError, match="no open day with calls"):
        fit_shape(frame("A", dates, np.zeros(7), np.ones(7, bool)))
