"""Forecast guards on hand-made frames: each check fails only the queue built to break it; fallback rules."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from common.calendar import interval_grid, parse_opening_hours
from common.guards import (
    CHECK_NON_NEGATIVE, CHECK_PEAK, CHECK_SHAPE, CHECK_TOTAL, GuardLimits, apply_fallback, check_forecast,
    check_history_recency, complete_history, day_calendar, failed_reasons, fallback_forecast, model_eligibility,
)

AS_OF = date(2025, 3, 10)  # a Monday
HOURS = parse_opening_hours({"default": {"mon": "08:00-18:00", "tue": "08:00-18:00", "wed": "08:00-18:00",
                                         "thu": "08:00-18:00", "fri": "08:00-18:00", "sat": "closed",
                                         "sun": "closed"}, "queues": {}})
NO_CLOSED = pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]")})
QUEUES = ["Good", "Negative", "Shape", "Spike", "Total"]
MINUTES = np.arange(480, 1080, 60)  # the ten open hours 08:00..17:00


def peaked(at_minute: int, peak: float) -> np.ndarray:
    """Shares over the ten open hours: `peak` at one hour, the rest spread evenly."""
    return np.where(MINUTES == at_minute, peak, (1 - peak) / 9)


# the history's shape: 40% of the day at 12:00, 6.67% in each other hour
PROFILE = pd.concat([pd.DataFrame({"queue": q, "weekday": wd, "minute": MINUTES, "share": peaked(720, 0.4)})
                     for q in QUEUES for wd in range(5)], ignore_index=True)


def history() -> pd.DataFrame:
    """Four weeks before the as-of: 100 on every open weekday, 0 on weekends and on the holiday Monday 02-17."""
    dates = pd.date_range("2025-02-10", "2025-03-09", freq="D")
    is_open = (dates.day_of_week < 5) & (dates != pd.Timestamp("2025-02-17"))
    return pd.concat([pd.DataFrame({"queue": q, "date": dates, "offered": np.where(is_open, 100.0, 0.0),
                                    "is_open": is_open, "is_holiday": dates == pd.Timestamp("2025-02-17")})
                      for q in QUEUES], ignore_index=True)


def forecast() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily and interval forecasts for 03-10..03-16, each queue broken in one way (Good in none)."""
    dates = pd.date_range("2025-03-10", "2025-03-16", freq="D")
    is_open = dates.day_of_week < 5
    level = {"Total": 150.0}  # +50% over the recent 100
    daily = pd.concat([pd.DataFrame({"queue": q, "date": dates, "horizon_day": np.arange(1, 8), "is_open": is_open,
                                     "p10": np.where(is_open, 0.8, 0) * level.get(q, 100.0),
                                     "p50": np.where(is_open, 1.0, 0) * level.get(q, 100.0),
                                     "p90": np.where(is_open, 1.2, 0) * level.get(q, 100.0)})
                       for q in QUEUES], ignore_index=True)
    daily.loc[(daily["queue"] == "Negative") & (daily["date"] == "2025-03-12"), "p10"] = -5.0
    shares = {"Spike": peaked(720, 0.6),   # 0.6 / 0.1 = 6x the mean hour, same shape as history
              "Shape": peaked(480, 0.4)}   # the peak moved to 08:00
    grid = interval_grid(QUEUES, date(2025, 3, 10), date(2025, 3, 16), 60, "Europe/Stockholm", HOURS, NO_CLOSED)
    minute = grid["interval_start"].dt.hour * 60
    share = np.zeros(len(grid))
    for q in QUEUES:
        rows = (grid["queue"] == q).to_numpy() & grid["is_open"].to_numpy()
        lookup = dict(zip(MINUTES, shares.get(q, peaked(720, 0.4))))
        share[rows] = minute[rows].map(lookup).to_numpy()
    intervals = grid.merge(daily[["queue", "date", "p10", "p50", "p90"]], on=["queue", "date"])
    intervals = intervals.assign(**{c: intervals[c] * share for c in ("p10", "p50", "p90")})
    return daily, intervals


def test_each_check_fails_only_the_queue_built_to_break_it():
    daily, intervals = forecast()
    results = check_forecast(daily, intervals, history(), PROFILE, AS_OF, GuardLimits())
    assert len(results) == 4 * len(QUEUES)
    failed = {(r.queue, r.check_name) for r in results if not r.passed}
    assert failed == {("Negative", CHECK_NON_NEGATIVE), ("Total", CHECK_TOTAL), ("Spike", CHECK_PEAK),
                      ("Shape", CHECK_SHAPE)}
    value = {(r.queue, r.check_name): r.value for r in results}
    # Negative: one daily p10 and its 10 intervals are below 0 = 11 values
    assert value[("Negative", CHECK_NON_NEGATIVE)] == 11
    # Total: 5 open days x 150 = 750 vs 5 x 100 = 500 -> +50%; Good exactly 0 because the closed
    # holiday Monday 02-17 is not averaged in (with it the Monday mean would be 75)
    assert value[("Total", CHECK_TOTAL)] == pytest.approx(0.5)
    assert value[("Good", CHECK_TOTAL)] == pytest.approx(0.0)
    # peaks: Good 0.4 / 0.1 = 4x, Spike 0.6 / 0.1 = 6x
    assert value[("Good", CHECK_PEAK)] == pytest.approx(4.0)
    assert value[("Spike", CHECK_PEAK)] == pytest.approx(6.0)
    # shape: one-peak vectors with the peak in another hour correlate -1/9; same hour: 1
    assert value[("Shape", CHECK_SHAPE)] == pytest.approx(-1 / 9)
    assert value[("Spike", CHECK_SHAPE)] == pytest.approx(1.0)
    assert {r.severity for r in results} == {"warning"}


def test_only_the_broken_queues_fall_back_with_their_failed_check_as_reason():
    daily, intervals = forecast()
    reasons = failed_reasons(check_forecast(daily, intervals, history(), PROFILE, AS_OF, GuardLimits()))
    assert sorted(reasons) == ["Negative", "Shape", "Spike", "Total"]
    assert CHECK_TOTAL in reasons["Total"] and "+50%" in reasons["Total"] and CHECK_PEAK not in reasons["Total"]
    naive = daily.drop(columns="is_open").assign(p10=1.0, p50=2.0, p90=3.0)
    out = apply_fallback(daily.drop(columns="is_open"), naive, reasons, "v1")
    methods = out.groupby("queue")["method"].agg(set).to_dict()
    assert methods == {"Good": {"lightgbm"}, "Negative": {"seasonal_naive"}, "Shape": {"seasonal_naive"},
                       "Spike": {"seasonal_naive"}, "Total": {"seasonal_naive"}}
    good = out.loc[out["queue"] == "Good"]
    assert good["model_version"].eq("v1").all() and good["fallback_reason"].isna().all()
    assert good["p50"].tolist() == [100.0] * 5 + [0.0] * 2
    shape = out.loc[out["queue"] == "Shape"]
    assert shape["model_version"].isna().all() and shape["p50"].eq(2.0).all()
    assert shape["fallback_reason"].str.startswith("guard failed: forecast_intraday_shape").all()


def test_a_flat_day_against_a_shaped_history_has_no_shape_in_common():
    daily, intervals = forecast()
    good_open = (intervals["queue"] == "Good") & intervals["is_open"]
    intervals.loc[good_open, "p50"] = 10.0  # 100 spread evenly over the ten open hours
    results = check_forecast(daily, intervals, history(), PROFILE, AS_OF, GuardLimits())
    shape = next(r for r in results if r.queue == "Good" and r.check_name == CHECK_SHAPE)
    # a flat vector has no variance: its correlation with the peaked history is taken as 0
    assert not shape.passed and shape.value == 0.0


@pytest.mark.parametrize("limit, passes", [(0.49, False), (0.5, True), (0.6, True)])
def test_total_limit_is_configurable(limit, passes):
    daily, intervals = forecast()
    results = check_forecast(daily, intervals, history(), PROFILE, AS_OF, GuardLimits(max_total_deviation=limit))
    total = next(r for r in results if r.queue == "Total" and r.check_name == CHECK_TOTAL)
    assert total.passed is passes


def test_checks_without_history_to_judge_pass_and_say_so():
    daily, intervals = forecast()
    results = check_forecast(daily, intervals, history().iloc[:0], PROFILE.iloc[:0], AS_OF, GuardLimits())
    by_check = {r.check_name: r for r in results if r.queue == "Good"}
    assert by_check[CHECK_TOTAL].passed and "not judged" in by_check[CHECK_TOTAL].detail
    assert by_check[CHECK_SHAPE].passed and "not judged" in by_check[CHECK_SHAPE].detail


def test_model_eligibility_names_unknown_short_and_modelless_queues():
    dates = pd.date_range("2025-01-01", periods=60, freq="D")
    hist = pd.concat([pd.DataFrame({"queue": q, "date": dates[-n:], "offered": 10.0, "is_open": True})
                      for q, n in (("Known", 60), ("Short", 20), ("New", 60))], ignore_index=True)
    reasons, results = model_eligibility(hist, ["Known", "Short"], 56, None)
    assert sorted(reasons) == ["New", "Short"]
    assert "unknown to the production model" in reasons["New"]
    assert reasons["Short"] == "history too short: 20 open days < training.min_history_days 56"
    assert {r.queue: r.passed for r in results} == {"Known": True, "New": False, "Short": False}
    reasons, _ = model_eligibility(hist.loc[hist["queue"] != "Short"], None, 56,
                                   "production model not usable: no production model")
    assert set(reasons.values()) == {"production model not usable: no production model"}


def test_without_a_model_a_short_queue_reason_leads_with_history_too_short():
    # The Anonymous Bank month: step 2 skipped (no queue had 56 open days), so there is no production model;
    # the analyst must read why. Short: 20 open days < 56 -> history too short first, then the model problem;
    # Long: 60 open days -> the missing model is its reason.
    dates = pd.date_range("2025-01-01", periods=60, freq="D")
    hist = pd.concat([pd.DataFrame({"queue": q, "date": dates[-n:], "offered": 10.0, "is_open": True})
                      for q, n in (("Long", 60), ("Short", 20))], ignore_index=True)
    problem = "production model not usable: no production model in model_registry"
    reasons, results = model_eligibility(hist, None, 56, problem)
    assert reasons["Short"] == ("history too short: 20 open days < training.min_history_days 56, so step 2 trains "
                                f"no model on this queue yet; {problem}")
    assert reasons["Long"] == problem
    assert {r.queue: r.passed for r in results} == {"Long": False, "Short": False}


def test_fallback_is_seasonal_naive_with_bands_and_the_open_day_mean_below_7_days():
    # Long: two Mon-Fri weeks (Mon-Fri 100, 90, 80, 70, 60 then 110, 90, 80, 70, 50)
    long_dates = pd.date_range("2025-02-24", "2025-03-09", freq="D")
    values = [100, 90, 80, 70, 60, 0, 0, 110, 90, 80, 70, 50, 0, 0]
    long = pd.DataFrame({"queue": "Long", "date": long_dates, "offered": np.array(values, dtype=float),
                         "is_open": long_dates.day_of_week < 5, "is_holiday": False})
    # Short: Wed 10, Thu 20, Fri 60 and an unknown Saturday: 3 known days < 7 -> mean of open days 30
    short = pd.DataFrame({"queue": "Short", "date": pd.date_range("2025-03-05", "2025-03-08", freq="D"),
                          "offered": [10.0, 20.0, 60.0, np.nan], "is_open": [True, True, True, False],
                          "is_holiday": False})
    short = pd.concat([short, pd.DataFrame({"queue": "Short", "date": [pd.Timestamp("2025-03-09")],
                                            "offered": [0.0], "is_open": [False], "is_holiday": [False]})])
    future = day_calendar(["Long", "Short"], date(2025, 3, 10), date(2025, 3, 16), HOURS, NO_CLOSED)
    out, notes = fallback_forecast(pd.concat([long, short], ignore_index=True), future)
    assert list(notes) == ["Short"] and "mean of its open days (n=3) = 30.0" in notes["Short"]
    s = out.loc[out["queue"] == "Short"]
    assert s["p50"].tolist() == [30.0] * 5 + [0.0] * 2 and s["horizon_day"].tolist() == list(range(1, 8))
    assert (s["p10"] == s["p50"]).all() and (s["p90"] == s["p50"]).all()
    # Long: point = last same weekday (Mon 110); errors y - naive = 10, 0, 0, 0, -10;
    # their 10% / 90% quantiles (linear) = -6 / +6 -> Monday 104 / 110 / 116
    monday = out.loc[(out["queue"] == "Long") & (out["date"] == "2025-03-10")].iloc[0]
    assert (monday["p10"], monday["p50"], monday["p90"]) == pytest.approx((104, 110, 116))


def test_missing_silver_days_become_unknown_rows_and_fail_recency():
    closed = pd.DataFrame({"date": pd.to_datetime(["2025-03-07"])})  # Friday closed (a holiday)
    hist = pd.DataFrame({"queue": "Q", "date": pd.date_range("2025-03-03", "2025-03-05", freq="D"),
                         "offered": [5.0, 6.0, 7.0], "is_open": True, "is_holiday": False})
    calendar = day_calendar(["Q"], date(2025, 3, 3), date(2025, 3, 9), HOURS, closed)
    full = complete_history(hist, calendar)
    assert full["date"].dt.day.tolist() == [3, 4, 5, 6, 7, 8, 9]
    assert full["offered"].tolist()[:3] == [5.0, 6.0, 7.0] and full["offered"].iloc[3:].isna().all()
    assert full["is_open"].tolist() == [True, True, True, True, False, False, False]
    assert full["is_holiday"].tolist() == [False] * 4 + [True, False, False]
    (recency,) = check_history_recency(hist, AS_OF)
    assert not recency.passed and recency.value == 4  # 03-06 .. 03-09 missing
    (fresh,) = check_history_recency(full.assign(date=full["date"]), AS_OF)
    assert fresh.passed
