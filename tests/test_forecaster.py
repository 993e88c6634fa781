"""Tests for common.forecaster: quantile LightGBM, recursion, seasonal naive, backtest."""

import json

import numpy as np
import pandas as pd
import pytest

from common.backtest import backtest
from common.baselines import seasonal_naive_forecast
from common.errors import ConfigError, DataError, ModelError
from common.features import build_features
from common.forecast_frame import postprocess_quantiles, quantile_column, recursive_forecast
from common.forecaster import QuantileForecaster

FAST = {"n_estimators": 20, "min_data_in_leaf": 5}
HOLIDAY_DATES = pd.to_datetime(["2024-05-01", "2024-12-25", "2025-01-01", "2025-02-12"])
HOLIDAYS = pd.DataFrame({"date": HOLIDAY_DATES, "holiday_name": "holiday"})


def synthetic(n_days: int = 400, start: str = "2024-01-01", horizon: int = 14, series=("A", "B"), seed: int = 0,
              yearly: float = 0.0):
    """Weekday-seasonal Poisson series (and a yearly cycle of amplitude `yearly`), closed weekends and holidays;
    returns (history, future)."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=n_days + horizon, freq="D")
    parts = []
    for i, s in enumerate(series):
        is_holiday = dates.isin(HOLIDAY_DATES)
        is_open = (dates.day_of_week < 5) & ~is_holiday
        mean = (100 + 150 * i) * np.array([1.3, 1.1, 1.0, 0.9, 0.8, 1, 1])[dates.day_of_week]
        mean = mean * (1 + yearly * np.cos(2 * np.pi * dates.day_of_year.to_numpy() / 365.25))
        y = np.where(is_open, rng.poisson(mean), 0).astype(float)
        parts.append(pd.DataFrame({"series": s, "date": dates, "y": y, "is_open": is_open, "is_holiday": is_holiday}))
    frame = pd.concat(parts, ignore_index=True)
    cut = dates[n_days]
    return frame.loc[frame["date"] < cut].reset_index(drop=True), frame.loc[frame["date"] >= cut].drop(columns="y")


@pytest.fixture(scope="module")
def data():
    return synthetic()


@pytest.fixture(scope="module")
def fitted(data):
    history, _ = data
    return QuantileForecaster(params=FAST).fit(history, HOLIDAYS)


def test_forecast_grain_quantiles_ordered_nonnegative_and_closed_days_zero(data, fitted):
    history, future = data
    out = fitted.forecast(history, future, HOLIDAYS)
    assert list(out.columns) == ["series", "date", "horizon_day", "p10", "p50", "p90"]
    assert len(out) == 28 and out["horizon_day"].tolist() == list(range(1, 15)) * 2
    assert (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all() and (out["p10"] >= 0).all()
    closed = out.merge(future, on=["series", "date"])["is_open"].to_numpy() == False  # noqa: E712
    assert closed.sum() == 2 * 5  # per series: two weekends + the Wed 2025-02-12 holiday
    assert (out.loc[closed, ["p10", "p50", "p90"]] == 0).all().all()
    assert (out.loc[~closed, "p50"] > 0).all()


def test_postprocess_sorts_crossed_quantiles_clips_and_zeros_closed_days():
    raw = np.array([[12.0, 10.0, 15.0], [-3.0, 2.0, 1.0], [5.0, 6.0, 7.0], [np.nan, 1.0, 2.0]])
    out = postprocess_quantiles(raw, np.array([True, True, False, True]))
    np.testing.assert_array_equal(out, [[10, 12, 15], [0, 1, 2], [0, 0, 0], [0, 1, 2]])


def test_two_fits_give_byte_identical_model_files(data, tmp_path):
    history, _ = data
    first = QuantileForecaster(params=FAST).fit(history, HOLIDAYS).to_files(tmp_path / "a")
    second = QuantileForecaster(params=FAST).fit(history, HOLIDAYS).to_files(tmp_path / "b")
    assert [p.name for p in first] == ["model_p10.txt", "model_p50.txt", "model_p90.txt", "meta.json"]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_feature_list_is_the_same_in_fit_and_forecast(data, fitted):
    history, future = data
    assert all(m.feature_name() == fitted.feature_names_ for m in fitted.models_.values())
    assert "lag_364" in fitted.feature_names_
    seen = []

    def spy(rows):
        seen.append(list(rows.columns))
        return fitted.predict_features(rows)

    short = history.loc[history["date"] >= history["date"].max() - pd.Timedelta(days=99)]

    def make(frame):
        return build_features(frame, HOLIDAYS, feature_names=fitted.feature_names_, categories=fitted.categories_)

    recursive_forecast(short, future, make, spy, fitted.quantiles_, lookback=fitted.lookback_)
    expected = ["series", "date", "y", "level", *fitted.feature_names_[1:]]
    assert seen and all(cols == expected for cols in seen)  # 100 days of history still give lag_364 (as NaN)


def test_categories_are_fixed_so_a_subset_of_series_forecasts_the_same(data, fitted):
    history, future = data
    both = fitted.forecast(history, future, HOLIDAYS)
    only_b = fitted.forecast(history.loc[history["series"] == "B"], future.loc[future["series"] == "B"], HOLIDAYS)
    pd.testing.assert_frame_equal(both.loc[both["series"] == "B"].reset_index(drop=True), only_b)


def test_recursion_feeds_the_p50_of_day_t_into_lag_1_of_day_t_plus_1():
    # every day open, last actual 10; the "model" says p10 = lag_1, p50 = lag_1 + 1, p90 = lag_1 + 2,
    # so p50 must climb 11, 12, 13 and each day's p10 is the previous day's p50.
    dates = pd.date_range("2024-03-01", periods=33, freq="D")
    frame = pd.DataFrame({"series": "A", "date": dates, "y": np.r_[np.full(29, 5.0), 10.0, np.nan, np.nan, np.nan],
                          "is_open": True, "is_holiday": False})
    history, future = frame.iloc[:30], frame.iloc[30:].drop(columns="y")

    def predict(rows):
        lag = rows["lag_1"].to_numpy()
        return np.column_stack([lag, lag + 1, lag + 2])

    def make(f):
        return build_features(f, HOLIDAYS, lags=(1, 7))

    out = recursive_forecast(history, future, make, predict, lookback=40)
    assert out["p50"].tolist() == [11.0, 12.0, 13.0]
    assert out["p10"].tolist() == [10.0, 11.0, 12.0]


def test_fast_tail_recursion_equals_plain_full_history_loop(data, fitted):
    history, future = data

    def make(frame):
        return build_features(frame, HOLIDAYS, feature_names=fitted.feature_names_, categories=fitted.categories_)

    fast = recursive_forecast(history, future, make, fitted.predict_features, fitted.quantiles_, fitted.lookback_)
    plain = recursive_forecast(history, future, make, fitted.predict_features, fitted.quantiles_, lookback=None)
    pd.testing.assert_frame_equal(fast, plain, check_exact=True)
    assert fast["p50"].nunique() > 10  # a real forecast, not a constant


def test_short_history_raises_data_error():
    history, _ = synthetic(n_days=28)
    with pytest.raises(DataError, match="history too short to train: 0 training rows"):
        QuantileForecaster(params=FAST).fit(history, HOLIDAYS)


@pytest.fixture(scope="module")
def yearly_data():
    return synthetic(n_days=560, yearly=0.2)


@pytest.fixture(scope="module")
def yearly_fitted(yearly_data):
    history, _ = yearly_data
    return QuantileForecaster(params=FAST, calibrate=False).fit(history, HOLIDAYS)


def test_seasonal_level_only_once_a_yearly_cycle_can_be_fitted(data, fitted, yearly_fitted):
    assert fitted.level == "seasonal" and fitted.shape_ is None  # 400 days: the 28-day window level
    assert yearly_fitted.shape_ is not None and yearly_fitted.shape_.yearly[0] == pytest.approx(0.2, abs=0.05)
    assert yearly_fitted.lookback_ == 364
    window = QuantileForecaster(params=FAST, calibrate=False, level="window").fit(data[0], HOLIDAYS)
    assert window.shape_ is None and window.lookback_ == fitted.lookback_


def test_seasonal_level_model_round_trips_and_its_tail_recursion_is_exact(yearly_data, yearly_fitted, tmp_path):
    history, future = yearly_data
    yearly_fitted.to_files(tmp_path)
    loaded = QuantileForecaster.from_files(tmp_path)
    assert loaded.shape_ == yearly_fitted.shape_
    expected = yearly_fitted.forecast(history, future, HOLIDAYS)
    pd.testing.assert_frame_equal(loaded.forecast(history, future, HOLIDAYS), expected, check_exact=True)

    def make(frame):
        return build_features(frame, HOLIDAYS, feature_names=loaded.feature_names_, categories=loaded.categories_,
                              shape=loaded.shape_)

    plain = recursive_forecast(history, future, make, loaded.predict_features, loaded.quantiles_, lookback=None)
    pd.testing.assert_frame_equal(plain, expected, check_exact=True)


def test_files_round_trip_gives_identical_forecasts(data, fitted, tmp_path):
    history, future = data
    fitted.to_files(tmp_path)
    loaded = QuantileForecaster.from_files(tmp_path)
    assert loaded.feature_names_ == fitted.feature_names_ and loaded.categories_ == fitted.categories_
    pd.testing.assert_frame_equal(loaded.forecast(history, future, HOLIDAYS),
                                  fitted.forecast(history, future, HOLIDAYS), check_exact=True)


def test_missing_model_file_raises_model_error(fitted, tmp_path):
    fitted.to_files(tmp_path)
    (tmp_path / "model_p90.txt").unlink()
    with pytest.raises(ModelError, match="cannot load model"):
        QuantileForecaster.from_files(tmp_path)


def test_models_from_before_the_seasonal_level_load_as_window_level_and_a_broken_shape_is_a_model_error(
        fitted, yearly_fitted, tmp_path):
    old, broken = tmp_path / "old", tmp_path / "broken"
    fitted.to_files(old)
    meta = json.loads((old / "meta.json").read_text())
    del meta["init"]["level"], meta["init"]["level_half_life"], meta["seasonal_shape"]
    (old / "meta.json").write_text(json.dumps(meta))
    loaded = QuantileForecaster.from_files(old)
    assert loaded.level == "window" and loaded.shape_ is None
    yearly_fitted.to_files(broken)
    meta = json.loads((broken / "meta.json").read_text())
    del meta["seasonal_shape"]["weekday"]
    (broken / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="cannot load model .*weekday"):
        QuantileForecaster.from_files(broken)


def test_raw_target_fits_and_forecasts(data):
    history, future = data
    out = QuantileForecaster(params=FAST, target="raw").fit(history, HOLIDAYS).forecast(history, future, HOLIDAYS)
    assert len(out) == 28 and (out["p10"] <= out["p90"]).all()


def test_bad_settings_and_misuse_raise_clear_errors(data, fitted):
    history, future = data
    with pytest.raises(ConfigError, match="including 0.5"):
        QuantileForecaster(quantiles=(0.1, 0.9)).fit(history, HOLIDAYS)
    with pytest.raises(ConfigError, match="target == 'sqrt'"):  # 'log' became a valid target
        QuantileForecaster(target="sqrt").fit(history, HOLIDAYS)
    with pytest.raises(ModelError, match="not fitted"):
        QuantileForecaster().forecast(history, future, HOLIDAYS)
    with pytest.raises(DataError, match=r"series \['C'\] were not in the training data"):
        fitted.forecast(history, future.assign(series="C"), HOLIDAYS)
    with pytest.raises(DataError, match="consecutive days starting"):
        fitted.forecast(history, future.iloc[1:], HOLIDAYS)


def test_seasonal_naive_hand_computed():
    # Weeks from Mon 2024-01-01, weekends closed. Week 1: 100 x5. Week 2: 96, 98, 101, 102, 104.
    # Week 3: 100, 100, Wed holiday (closed), 100, 110.
    # Errors y - previous open same weekday: wk2: -4, -2, 1, 2, 4; wk3: 4, 2, -2 (Thu vs 102), 6 (Fri vs 104).
    # Sorted [-4,-2,-2,1,2,2,4,4,6]: q0.1 at position 0.8 -> -4 + 0.8*2 = -2.4; q0.9 at 7.2 -> 4 + 0.2*2 = 4.4.
    # Points: Mon 100, Tue 100, Wed 101 (week-3 Wed was closed -> week 2), Thu 100, Fri 110, weekend 0.
    dates = pd.date_range("2024-01-01", periods=21, freq="D")
    week = [[100, 100, 100, 100, 100], [96, 98, 101, 102, 104], [100, 100, 0, 100, 110]]
    y = np.concatenate([w + [0, 0] for w in week]).astype(float)
    is_open = (dates.day_of_week < 5) & (dates != "2024-01-17")
    history = pd.DataFrame({"series": "A", "date": dates, "y": y, "is_open": is_open, "is_holiday": ~is_open})
    fdates = pd.date_range("2024-01-22", periods=14, freq="D")
    f_open = (fdates.day_of_week < 5) & (fdates != "2024-02-02")  # a future holiday on Fri 2024-02-02
    future = pd.DataFrame({"series": "A", "date": fdates, "is_open": f_open, "is_holiday": ~f_open})

    out = seasonal_naive_forecast(history, future)

    point = np.array([100, 100, 101, 100, 110, 0, 0] * 2, dtype=float)
    point[11] = 0  # the future holiday
    open_ = point > 0
    np.testing.assert_allclose(out["p50"], point)
    np.testing.assert_allclose(out["p10"], np.where(open_, point - 2.4, 0))
    np.testing.assert_allclose(out["p90"], np.where(open_, point + 4.4, 0))
    assert out["horizon_day"].tolist() == list(range(1, 15))


def test_backtest_shape_origins_and_methods(data):
    history, _ = data
    out = backtest(lambda: QuantileForecaster(params=FAST), history, HOLIDAYS, origins=2, horizon=7, step_days=7)
    assert list(out.columns) == ["origin", "series", "date", "horizon_day", "y", "is_open", "p10", "p50", "p90",
                                 "method"]
    assert len(out) == 2 * 2 * 2 * 7  # methods x origins x series x days
    last = history["date"].max()
    assert sorted(out["origin"].unique()) == [last - pd.Timedelta(days=13), last - pd.Timedelta(days=6)]
    assert set(out["method"]) == {"lightgbm", "seasonal_naive"}
    assert out["y"].notna().all() and (out["date"] <= last).all()
    naive_only = backtest(None, history, HOLIDAYS, origins=1, horizon=7)
    assert set(naive_only["method"]) == {"seasonal_naive"} and len(naive_only) == 14


def test_quantile_column_names():
    assert [quantile_column(q) for q in (0.1, 0.5, 0.9, 0.975)] == ["p10", "p50", "p90", "p97.5"]


def test_feature_importance_has_one_row_per_quantile_per_feature(fitted):
    table = fitted.feature_importance()
    assert len(table) == 3 * len(fitted.feature_names_)
    assert set(table["quantile"]) == {0.1, 0.5, 0.9} and table["gain"].sum() > 0


def test_a_shared_calibration_cache_gives_the_same_bands_and_backtest_with_fewer_inner_fits(data):
    from common.calibration import CalibrationCache
    from common.training import backtest_origins, rolling_backtest

    history, _ = data

    def make():
        return QuantileForecaster(params=FAST, calibration_origins=3)

    origins = backtest_origins(history["date"].min(), history["date"].max(), 2, 14, 7)
    cache = CalibrationCache()
    cached = make().fit(history, HOLIDAYS, calibration_cache=cache)
    cached_bt = rolling_backtest(history, HOLIDAYS, make, origins, 14, calibration_cache=cache)
    plain = make().fit(history, HOLIDAYS)
    plain_bt = rolling_backtest(history, HOLIDAYS, make, origins, 14)
    assert cached.adjustments_ == plain.adjustments_ and cached.adjustments_["band_factors"]
    pd.testing.assert_frame_equal(cached_bt.frame, plain_bt.frame)
    # Last day L: the final model's inner origins are weeks 0, 1, 2 back (L-13, L-20, L-27); the backtest models,
    # trained up to weeks 1 and 0 back (origins L-20 and L-13), need weeks 3..5 and 2..4: 6 distinct of 9 asked.
    assert (cache.misses, cache.hits) == (6, 3)
    # ... and both backtest models were trained on exactly the rows of two of those inner models: adopted, not refit.
    assert cache.models_reused == 2
