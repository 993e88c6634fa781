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
