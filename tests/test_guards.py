"""Forecast guards on hand-made frames: each check fails only the queue built to break it; fallback rules."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from common.calendar import interval_grid
from common.guards import (
    CHECK_DAY, CHECK_NON_NEGATIVE, GuardLimits, apply_fallback, check_forecast, check_history_recency,
    complete_history, day_calendar, failed_reasons, fallback_forecast, model_eligibility,
)
from common.opening_hours import parse_opening_hours

AS_OF = date(2025, 3, 10)  # a Monday
HOURS = parse_opening_hours({"default": {"mon": "08:00-18:00", "tue": "08:00-18:00", "wed": "08:00-18:00",
                                         "thu": "08:00-18:00", "fri": "08:00-18:00", "sat": "closed",
                                         "sun": "closed"}, "queues": {}})
NO_CLOSED = pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]")})
# Friday 03-14 is a closed holiday in the forecast week: Thursday 03-13 is its eve
CLOSED = pd.DataFrame({"date": pd.to_datetime(["2025-02-17", "2025-03-14"])})
QUEUES = ["Good", "Negative", "Total", "OneDay", "Eve", "Small"]
LEVEL = {"Small": 10.0}  # Small's weekdays hold 10 calls, every other queue's 100


def history() -> pd.DataFrame:
    """Four weeks before the as-of: the queue's level on every open weekday, 0 on weekends and on the closed
    holiday Monday 02-17 (left out of the weekday means; its neighbours 02-14 and 02-18 too)."""
    dates = pd.date_range("2025-02-10", "2025-03-09", freq="D")
    is_open = (dates.day_of_week < 5) & (dates != pd.Timestamp("2025-02-17"))
    return pd.concat([pd.DataFrame({"queue": q, "date": dates, "offered": np.where(is_open, LEVEL.get(q, 100.0), 0.0),
                                    "is_open": is_open, "is_holiday": dates == pd.Timestamp("2025-02-17")})
                      for q in QUEUES], ignore_index=True)


def forecast() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily and interval forecasts for 03-10..03-16 (Fri 03-14 closed), each queue off in one way (Good in none):
    Negative a p10 below 0; Total +50% every day; OneDay +80% on Wednesday only (the week's total is +20%); Eve -60%
    on Thursday 03-13, the holiday's eve; Small 15 calls a day against its usual 10 (+50%, within noise)."""
    dates = pd.date_range("2025-03-10", "2025-03-16", freq="D")
    is_open = (dates.day_of_week < 4)  # Mon-Thu; Friday is the holiday, then the weekend
    parts = []
    for q in QUEUES:
        level = np.full(len(dates), LEVEL.get(q, 100.0))
        level *= {"Total": 1.5, "Small": 1.5}.get(q, 1.0)
        if q == "OneDay":
            level[2] = 180.0
        if q == "Eve":
            level[3] = 40.0
        p50 = np.where(is_open, level, 0.0)
        parts.append(pd.DataFrame({"queue": q, "date": dates, "horizon_day": np.arange(1, 8), "is_open": is_open,
                                   "p10": 0.8 * p50, "p50": p50, "p90": 1.2 * p50}))
    daily = pd.concat(parts, ignore_index=True)
    daily.loc[(daily["queue"] == "Negative") & (daily["date"] == "2025-03-12"), "p10"] = -5.0
    grid = interval_grid(QUEUES, date(2025, 3, 10), date(2025, 3, 16), 60, "Europe/Stockholm", HOURS, CLOSED)
    intervals = grid.merge(daily[["queue", "date", "p10", "p50", "p90"]], on=["queue", "date"])
    share = np.where(intervals["is_open"], 0.1, 0.0)  # ten open hours, flat
    intervals = intervals.assign(**{c: intervals[c] * share for c in ("p10", "p50", "p90")})
    return daily, intervals


def test_each_daily_check_fails_only_the_queue_built_to_break_it():
    daily, intervals = forecast()
    results = check_forecast(daily, intervals, history(), CLOSED, AS_OF, GuardLimits())
    assert len(results) == 2 * len(QUEUES)
    failed = {(r.queue, r.check_name) for r in results if not r.passed}
    assert failed == {("Negative", CHECK_NON_NEGATIVE), ("Total", CHECK_DAY), ("OneDay", CHECK_DAY)}
    value = {(r.queue, r.check_name): r.value for r in results}
    # Negative: one daily p10 and its 10 intervals are below 0 = 11 values
    assert value[("Negative", CHECK_NON_NEGATIVE)] == 11
    # Total: 150 vs the Monday mean 100 (the holiday Monday 02-17 is not averaged in: with it, 75) -> +50%
    assert value[("Total", CHECK_DAY)] == pytest.approx(0.5)
    # OneDay: Wednesday 180 vs 100 = +80%, although its 4 open days total 480 vs 400 = +20% (the old total rule)
    assert value[("OneDay", CHECK_DAY)] == pytest.approx(0.8)
    assert {r.severity for r in results} == {"warning"}


def test_a_holiday_eve_is_not_judged_and_a_small_queue_within_noise_passes():
    daily, intervals = forecast()
    results = {(r.queue, r.check_name): r for r in check_forecast(daily, intervals, history(), CLOSED, AS_OF)}
    # Eve: -60% on Thursday 03-13, next to the closed Friday: only Mon-Wed are judged, all at 0%
    eve = results[("Eve", CHECK_DAY)]
    assert eve.passed and "3 open days judged" in eve.detail
    # Small: 15 vs 10 is +50% but 5 calls off, within 3 sqrt(10) + 1 = 10.5 calls of noise
    small = results[("Small", CHECK_DAY)]
    assert small.passed and small.value == pytest.approx(0.5)
    # without the holiday the eve is judged like any Thursday: -60% fails
    plain = {r.queue: r for r in check_forecast(daily, intervals, history(), NO_CLOSED, AS_OF)
             if r.check_name == CHECK_DAY}
    assert not plain["Eve"].passed and "Thu 2025-03-13 (40 calls) is 60% below the usual Thursday" in plain["Eve"].detail


def test_a_queue_with_noisy_days_is_judged_against_its_own_spread():
    # Noisy: weekdays alternate 60 and 140 around a mean of 100: a forecast of 150 (+50%) is within 3 x its spread
    hist = history()
    noisy = hist.loc[hist["queue"] == "Good"].assign(queue="Noisy")
    alternate = np.where(np.arange(len(noisy)) % 2 == 0, 0.6, 1.4)
    noisy = noisy.assign(offered=noisy["offered"] * alternate)
    daily, intervals = forecast()
    total = daily.loc[daily["queue"] == "Total"].assign(queue="Noisy")
    days = check_forecast(total, intervals.iloc[:0], noisy, CLOSED, AS_OF)
    assert next(r for r in days if r.check_name == CHECK_DAY).passed
    steady = check_forecast(daily.loc[daily["queue"] == "Total"], intervals.iloc[:0], hist, CLOSED, AS_OF)
    assert not next(r for r in steady if r.check_name == CHECK_DAY).passed


def test_only_the_broken_queues_fall_back_and_the_reason_reads_as_words():
    daily, intervals = forecast()
    reasons = failed_reasons(check_forecast(daily, intervals, history(), CLOSED, AS_OF, GuardLimits()))
    assert sorted(reasons) == ["Negative", "OneDay", "Total"]
    assert reasons["OneDay"] == (
        "model forecast failed its check: the forecast for Wed 2025-03-12 (180 calls) is 80% above the usual "
        "Wednesday (100: mean of the last 4 open Wednesdays in 4 weeks); limit +-40%; seasonal naive published "
        "instead")
    naive = daily.drop(columns="is_open").assign(p10=1.0, p50=2.0, p90=3.0)
    out = apply_fallback(daily.drop(columns="is_open"), naive, reasons, "v1")
    methods = out.groupby("queue")["method"].agg(set).to_dict()
    assert methods == {"Good": {"lightgbm"}, "Negative": {"seasonal_naive"}, "OneDay": {"seasonal_naive"},
                       "Total": {"seasonal_naive"}, "Eve": {"lightgbm"}, "Small": {"lightgbm"}}
    good = out.loc[out["queue"] == "Good"]
    assert good["model_version"].eq("v1").all() and good["fallback_reason"].isna().all()
    assert good["p50"].tolist() == [100.0] * 4 + [0.0] * 3
    total = out.loc[out["queue"] == "Total"]
    assert total["model_version"].isna().all() and total["p50"].eq(2.0).all()


@pytest.mark.parametrize("limit, passes", [(0.49, False), (0.5, True), (0.6, True)])
def test_day_limit_is_configurable(limit, passes):
    daily, intervals = forecast()
    results = check_forecast(daily, intervals, history(), CLOSED, AS_OF, GuardLimits(max_total_deviation=limit))
    total = next(r for r in results if r.queue == "Total" and r.check_name == CHECK_DAY)
    assert total.passed is passes


def test_checks_without_history_to_judge_pass_and_say_so():
    daily, intervals = forecast()
    results = check_forecast(daily, intervals, history().iloc[:0], CLOSED, AS_OF, GuardLimits())
    day = next(r for r in results if r.queue == "Good" and r.check_name == CHECK_DAY)
    assert day.passed and "not judged" in day.detail


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
