"""Alert rules: each fires on data built to trip it and stays quiet on data that does not (hand-made frames)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from common.alerts import (
    Alert, alerts_frame, beats_naive_alerts, daily_mape_alerts, drift_alerts, fallback_alerts, freshness_alerts, psi,
    psi_noise, share_psi, weekly_bias_alerts,
)
from common.evaluation import NAIVE_BENCHMARK

T = pd.Timestamp


def _points(days: dict[str, tuple[float, float]], horizon_day: int = 1, queue: str = "A", method: str = "lightgbm",
            origin_lag: int | None = None) -> pd.DataFrame:
    """Accuracy rows from {date: (actual, p50)}, open days, made `horizon_day` days ahead."""
    dates = pd.to_datetime(list(days))
    actual = np.array([v[0] for v in days.values()])
    p50 = np.array([v[1] for v in days.values()])
    lag = horizon_day - 1 if origin_lag is None else origin_lag
    return pd.DataFrame({
        "forecast_origin": dates - pd.Timedelta(days=lag), "queue": queue, "date": dates, "horizon_day": horizon_day,
        "weekday": dates.day_of_week, "method": method, "model_version": None, "actual": actual,
        "p10": p50 * 0.9, "p50": p50, "p90": p50 * 1.1, "error": p50 - actual, "abs_error": np.abs(p50 - actual),
        "is_open": True, "in_band": True})


# --- daily MAPE (as of Mon 2025-03-10: the last open days are Wed 03-05, Thu 03-06, Fri 03-07) --------------

def test_daily_mape_warns_after_three_open_days_above_ten_percent() -> None:
    acc = _points({"2025-03-05": (100, 89), "2025-03-06": (100, 112), "2025-03-07": (100, 89)})
    got = daily_mape_alerts(acc, date(2025, 3, 10))
    # APEs 11%, 12%, 11%: all above 10%, none above 15%
    assert [(a.severity, a.queue, a.metric) for a in got] == [("warning", "A", "daily_mape")]
    assert got[0].value == pytest.approx(0.11) and got[0].threshold == 0.10


def test_daily_mape_is_critical_when_the_latest_day_is_above_fifteen_percent() -> None:
    acc = _points({"2025-03-05": (100, 100), "2025-03-06": (100, 100), "2025-03-07": (100, 80)})
    got = daily_mape_alerts(acc, date(2025, 3, 10))
    assert [(a.severity, a.value, a.threshold) for a in got] == [("critical", pytest.approx(0.2), 0.15)]
    assert "Fri 2025-03-07" in got[0].message and "holiday" in got[0].message


def test_a_miss_its_own_band_allowed_for_is_not_critical_but_one_beyond_chance_is() -> None:
    # A 100-call queue: p50 102, band 90-115. Stretched 1.8x around p50: 102 - 1.8*12 = 80.4 .. 102 + 1.8*13 = 125.4.
    def one_day(actual: float, p10: float = 90, p90: float = 115) -> pd.DataFrame:
        return _points({"2025-03-07": (actual, 102)}).assign(p10=p10, p90=p90)

    assert daily_mape_alerts(one_day(124), date(2025, 3, 10)) == []  # APE 17.7% > 15%, but inside 125.4
    got = daily_mape_alerts(one_day(126), date(2025, 3, 10))  # APE 19.0%, beyond 125.4
    assert [(a.severity, a.value) for a in got] == [("critical", pytest.approx(24 / 126))]
    assert "p10-p90 90-115" in got[0].message
    assert daily_mape_alerts(one_day(81), date(2025, 3, 10)) == []  # APE 25.9%, above 80.4: chance on the low side
    assert daily_mape_alerts(one_day(80), date(2025, 3, 10))[0].severity == "critical"  # below 80.4
    assert daily_mape_alerts(one_day(124, p10=102, p90=102), date(2025, 3, 10))[0].severity == "critical"  # no band


def test_daily_mape_is_quiet_when_the_streak_breaks_or_only_other_horizons_miss() -> None:
    broken = _points({"2025-03-05": (100, 89), "2025-03-06": (100, 91), "2025-03-07": (100, 89)})  # 11%, 9%, 11%
    other_horizon = _points({"2025-03-05": (100, 50), "2025-03-06": (100, 50), "2025-03-07": (100, 50)}, horizon_day=2)
    assert daily_mape_alerts(pd.concat([broken, other_horizon]), date(2025, 3, 10)) == []


def test_daily_mape_does_not_judge_a_day_with_tiny_volume() -> None:
    # Saturday's short shift: 20 calls against a p50 of 30 is a 50% miss, but 10 calls is chance at that size
    # (Poisson noise alone is ~22% there). The latest judged day is Friday, 2% off: no alert.
    acc = _points({"2025-03-06": (100, 100), "2025-03-07": (100, 102), "2025-03-08": (20, 30)})
    assert daily_mape_alerts(acc, date(2025, 3, 10)) == []
    # mape_min_actual 0 judges every day again
    got = daily_mape_alerts(acc, date(2025, 3, 10), min_actual=0)
    assert [(a.severity, a.value) for a in got] == [("critical", pytest.approx(0.5))]
    assert "Sat 2025-03-08" in got[0].message


def test_daily_mape_warning_names_each_day_it_judged() -> None:
    # the 12-call Thursday is skipped: the last three judged days are Tue, Wed, Fri
    acc = _points({"2025-03-04": (100, 88), "2025-03-05": (100, 89), "2025-03-06": (12, 12),
                   "2025-03-07": (100, 112)})
    got = daily_mape_alerts(acc, date(2025, 3, 10))
    assert [(a.severity, a.value) for a in got] == [("warning", pytest.approx(0.11))]
    assert "(Tue 2025-03-04 12.0%, Wed 2025-03-05 11.0%, Fri 2025-03-07 12.0%)" in got[0].message


def test_daily_mape_skips_zero_actuals_and_stale_forecasts() -> None:
    # The outage day (actual 0) has no APE: the latest judged day is Thu, 5% off.
    outage = _points({"2025-03-06": (100, 105), "2025-03-07": (0, 50)})
    assert daily_mape_alerts(outage, date(2025, 3, 10)) == []
    # A 30% miss a month ago is not news on 03-10.
    stale = _points({"2025-02-07": (100, 70)})
    assert daily_mape_alerts(stale, date(2025, 3, 10)) == []


# --- weekly bias (as of Mon 2025-03-17: complete weeks 03-10..03-16 and 03-03..03-09) ----------------------

def _week(monday: str, actual: float, p50: float, days: int = 5) -> dict[str, tuple[float, float]]:
    return {f"{d:%Y-%m-%d}": (actual, p50) for d in pd.date_range(monday, periods=days, freq="D")}


def _silver(start: str = "2025-02-24", end: str = "2025-03-23", queues: tuple[str, ...] = ("A", "B"),
            closed: tuple[str, ...] = ()) -> pd.DataFrame:
    """silver_daily rows (queue, date, is_open): Mon-Fri open, weekends and `closed` dates closed."""
    dates = pd.date_range(start, end, freq="D")
    is_open = (dates.day_of_week < 5) & ~dates.isin(pd.to_datetime(list(closed)))
    return pd.concat([pd.DataFrame({"queue": q, "date": dates, "is_open": is_open}) for q in queues],
                     ignore_index=True)


def test_weekly_bias_warns_after_two_weeks_over_three_percent_the_same_way() -> None:
    acc = _points({**_week("2025-03-03", 100, 104), **_week("2025-03-10", 100, 104)})  # +4%, +4%
    got = weekly_bias_alerts(acc, _silver(), date(2025, 3, 17))
    assert [(a.severity, a.queue, a.metric) for a in got] == [("warning", "A", "weekly_bias")]
    assert got[0].value == pytest.approx(0.04) and got[0].threshold == 0.03
    assert "over-forecast" in got[0].message
    assert ("(week 2025-03-03..09 (5 open days scored: Mon-Fri) +4.0%, week 2025-03-10..16 (5 open days scored: "
            "Mon-Fri) +4.0%)") in got[0].message


def test_weekly_bias_is_critical_beyond_five_percent_in_the_last_week() -> None:
    acc = _points({**_week("2025-03-03", 100, 100), **_week("2025-03-10", 100, 94)})  # 0%, then -6%
    got = weekly_bias_alerts(acc, _silver(), date(2025, 3, 17))
    assert [(a.severity, a.value, a.threshold) for a in got] == [("critical", pytest.approx(-0.06), 0.05)]
    assert "A: week 2025-03-10..16 (5 open days scored: Mon-Fri) under-forecast by 6.0%" in got[0].message


def test_weekly_bias_is_quiet_when_the_sign_flips_or_one_week_is_small() -> None:
    flip = _points({**_week("2025-03-03", 100, 96), **_week("2025-03-10", 100, 104)}, queue="A")  # -4%, +4%
    small = _points({**_week("2025-03-03", 100, 104), **_week("2025-03-10", 100, 102)}, queue="B")  # +4%, +2%
    # the current week (03-17 on) is not complete: its +50% is not judged
    partial = _points({"2025-03-17": (100, 150)}, queue="A")
    assert weekly_bias_alerts(pd.concat([flip, small, partial]), _silver(), date(2025, 3, 18)) == []


def test_weekly_bias_does_not_judge_a_week_with_one_scored_day() -> None:
    # Only Monday of the week of 03-10 has a same-night forecast (e.g. weekly runs): 1 of 5 open days is not a
    # week, however far off it is (-50%).
    acc = _points({"2025-03-10": (100, 50)})
    assert weekly_bias_alerts(acc, _silver(), date(2025, 3, 17)) == []


def test_weekly_bias_judges_a_holiday_week_whose_open_days_were_all_scored() -> None:
    # Mon 03-10 is a closed holiday in silver; Tue-Fri are scored, -6% -> a complete week, critical.
    acc = _points(_week("2025-03-11", 100, 94, days=4))
    got = weekly_bias_alerts(acc, _silver(closed=("2025-03-10",)), date(2025, 3, 17))
    assert [(a.severity, a.value) for a in got] == [("critical", pytest.approx(-0.06))]
    assert "week 2025-03-10..16 (4 open days scored: Tue-Fri)" in got[0].message


def test_weekly_bias_min_days_judges_a_week_with_a_missed_night_and_names_it() -> None:
    # Mon-Thu scored at -6%, Friday's run never happened: incomplete for the default (every open day),
    # judged with alerts.bias_min_days 4.
    acc = _points(_week("2025-03-10", 100, 94, days=4))
    assert weekly_bias_alerts(acc, _silver(), date(2025, 3, 17)) == []
    got = weekly_bias_alerts(acc, _silver(), date(2025, 3, 17), min_days=4)
    assert [(a.severity, a.value) for a in got] == [("critical", pytest.approx(-0.06))]
    assert "week 2025-03-10..16 (4 of 5 open days scored: Mon-Thu; not scored: Fri)" in got[0].message
    # 3 of 5 is below 4: not judged
    assert weekly_bias_alerts(_points(_week("2025-03-10", 100, 94, days=3)), _silver(), date(2025, 3, 17),
                              min_days=4) == []


# --- data freshness --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("newest", "expected"), [
    ("2025-03-07 17:30", []),                                     # 0.5 h before the 18:00 close
    ("2025-03-07 15:00", [("warning", 3.0, 2.0)]),
    ("2025-03-07 11:00", [("critical", 7.0, 6.0)]),
])
def test_freshness_measures_hours_before_the_end_of_the_last_open_interval(newest: str, expected: list) -> None:
    got = freshness_alerts(T(newest), T("2025-03-07 18:00"))
    assert [(a.severity, a.value, a.threshold) for a in got] == expected
    assert all(a.queue is None and a.metric == "hours_late" for a in got)


def test_freshness_is_critical_without_any_contact_and_quiet_without_an_open_interval() -> None:
    assert [a.severity for a in freshness_alerts(None, T("2025-03-07 18:00"))] == ["critical"]
    assert freshness_alerts(None, None) == []


# --- feature drift ---------------------------------------------------------------------------------------

def test_psi_matches_a_hand_computation() -> None:
    # bins=2 on reference 1..4: edge 2.5 -> shares (0.5, 0.5); recent (1, 3, 4, 4) -> (0.25, 0.75):
    # (0.25 - 0.5) ln(0.5) + (0.75 - 0.5) ln(1.5) = 0.173287 + 0.101366
    assert psi([1, 2, 3, 4], [1, 3, 4, 4], bins=2) == pytest.approx(0.274653, abs=1e-6)
    assert psi([1, 2, 3, 4], [1, 2, 3, 4], bins=2) == 0.0
    assert np.isnan(psi([1, 2], [], bins=2))
    # chance alone: (2 - 1) (1/4 + 1/4); a constant reference has one distinct edge in any number of bins -> 2 bins
    assert psi_noise([1, 2, 3, 4], [1, 3, 4, 4], bins=2) == pytest.approx(0.5)
    assert psi_noise([3, 3, 3, 3], [1, 2], bins=10) == pytest.approx(1 / 2 + 1 / 4)
    assert psi_noise([1, 2], [], bins=2) == float("inf")


def _drift_data(recent_factor: float = 1.0, monday_factor: float = 1.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Queue A, Mon-Fri open, 2024-02-12 .. 2025-03-09; 10 intervals a day of 1..10 calls; from 02-10 on the
    level is x recent_factor and Mondays x monday_factor (daily totals). As of 03-10 the recent 28 days hold
    20 open days (200 intervals), the 364 days before them 260 (2,600): PSI noise 9 (1/200 + 1/2600) = 0.0485,
    within half the 0.1 warning, so the volume level is judged."""
    days = pd.date_range("2024-02-12", "2025-03-09", freq="D")
    days = days[days.day_of_week < 5]
    recent = days >= T("2025-02-10")
    scale = np.where(recent, recent_factor, 1.0)
    intervals = pd.DataFrame({"queue": "A", "date": np.repeat(days, 10), "is_open": True,
                              "offered": np.tile(np.arange(1.0, 11.0), len(days)) * np.repeat(scale, 10)})
    monday = np.where(recent & (days.day_of_week == 0), monday_factor, 1.0)
    daily = pd.DataFrame({"queue": "A", "date": days, "is_open": True, "offered": 55.0 * scale * monday})
    return intervals, daily


def test_drift_is_quiet_when_recent_weeks_look_like_the_reference() -> None:
    intervals, daily = _drift_data()
    assert drift_alerts(intervals, daily, date(2025, 3, 10)) == []


def test_drift_is_critical_when_the_volume_level_doubles() -> None:
    intervals, daily = _drift_data(recent_factor=2.0)
    got = drift_alerts(intervals, daily, date(2025, 3, 10))
    # daily totals double on every weekday alike, so the weekday shares do not move
    assert [(a.severity, a.metric, a.threshold) for a in got] == [("critical", "psi_volume_level", 0.3)]
    assert got[0].value > 0.3 and "mean per open interval 11.0 vs 5.5" in got[0].message
    assert "2025-02-10..03-09 (20 open days) moved away from 2024-02-12..2025-02-09 (260 open days)" in got[0].message


def test_drift_warns_when_the_weekday_pattern_shifts() -> None:
    _, daily = _drift_data(monday_factor=3.0)
    empty = pd.DataFrame({"queue": pd.Series(dtype="str"), "date": pd.Series(dtype="datetime64[ns]"),
                          "is_open": pd.Series(dtype=bool), "offered": pd.Series(dtype=float)})
    got = drift_alerts(empty, daily, date(2025, 3, 10))
    # shares 0.2 each -> Mon 3/7, others 1/7: (3/7 - 0.2) ln(15/7) + 4 (1/7 - 0.2) ln(5/7) = 0.174203 + 0.076908
    assert [(a.severity, a.metric) for a in got] == [("warning", "psi_weekday_shares")]
    assert got[0].value == pytest.approx(0.251111, abs=1e-4)
    assert share_psi([0.2] * 5, [3 / 7] + [1 / 7] * 4) == pytest.approx(0.251111, abs=1e-6)
    assert "mon 20% -> 43%" in got[0].message


def test_drift_volume_level_is_not_judged_on_too_few_intervals() -> None:
    # A one-week recent window: 5 open days x 10 intervals = 50; chance alone gives PSI 9 (1/50 + 1/2,650) = 0.18,
    # above the 0.1 warning itself, so even a 30% jump in that one week is not judged as drift.
    intervals, daily = _drift_data(recent_factor=1.3)
    assert drift_alerts(intervals, daily, date(2025, 3, 10), recent_days=7) == []


def test_drift_weekday_pattern_needs_each_weekday_twice_in_the_recent_window() -> None:
    # One week: each weekday once, so a tripled Monday is one odd day, not a changed pattern.
    intervals, daily = _drift_data(monday_factor=3.0)
    assert drift_alerts(intervals.iloc[:0], daily, date(2025, 3, 10), recent_days=7) == []
    # Two weeks (02-24..03-09): each weekday twice, both Mondays tripled -> judged. The reference (52 weeks before)
    # holds the two tripled Mondays 02-10 and 02-17: Mon mean (50 x 55 + 2 x 165) / 52 = 59.23, share 0.2121,
    # others 0.1970; recent Mon 3/7, others 1/7:
    # (3/7 - 0.2121) ln(3/7 / 0.2121) + 4 (1/7 - 0.1970) ln(1/7 / 0.1970) = 0.1523 + 0.0695 = 0.2218
    got = drift_alerts(intervals.iloc[:0], daily, date(2025, 3, 10), recent_days=14)
    assert [(a.severity, a.metric) for a in got] == [("warning", "psi_weekday_shares")]
    assert got[0].value == pytest.approx(0.2218, abs=1e-4)


def test_drift_is_not_judged_on_a_short_reference() -> None:
    intervals, daily = _drift_data(recent_factor=2.0)
    assert drift_alerts(intervals, daily, date(2025, 3, 10), reference_days=14) == []  # 10 open days < 20


# --- model vs naive --------------------------------------------------------------------------------------

def _paired(model_p50: float, naive_p50: float, n_days: int) -> pd.DataFrame:
    days = {f"{d:%Y-%m-%d}": (100.0, model_p50) for d in pd.date_range("2025-02-20", periods=n_days, freq="D")}
    naive = {d: (100.0, naive_p50) for d in days}
    return pd.concat([_points(days), _points(naive, method=NAIVE_BENCHMARK)], ignore_index=True)


def test_model_that_no_longer_beats_naive_warns() -> None:
    got = beats_naive_alerts(_paired(110, 95, 10), date(2025, 3, 10))
    # wMAPE 10 x 10 / 1000 = 10% vs naive 5%
    assert [(a.severity, a.rule, a.value, a.threshold) for a in got] == [
        ("warning", "model_vs_naive", pytest.approx(0.10), pytest.approx(0.05))]
    assert "same 10 points: 10 open days 2025-02-20..03-01 forecast from origins 2025-02-20..03-01" in got[0].message


def test_model_vs_naive_counts_open_days_not_points() -> None:
    # Three nightly origins each forecast the same 4 open days: 12 points, but 4 days of evidence < 10.
    days = {f"{d:%Y-%m-%d}": (100.0, 110.0) for d in pd.date_range("2025-03-04", periods=4, freq="D")}
    naive = {d: (100.0, 95.0) for d in days}
    acc = pd.concat([_points(days, origin_lag=lag) for lag in (2, 3, 4)]
                    + [_points(naive, method=NAIVE_BENCHMARK, origin_lag=lag) for lag in (2, 3, 4)],
                    ignore_index=True)
    assert beats_naive_alerts(acc, date(2025, 3, 10)) == []
    assert [a.rule for a in beats_naive_alerts(acc, date(2025, 3, 10), min_days=4)] == ["model_vs_naive"]


def test_model_that_beats_naive_or_has_too_few_days_is_quiet() -> None:
    assert beats_naive_alerts(_paired(95, 110, 10), date(2025, 3, 10)) == []
    assert beats_naive_alerts(_paired(110, 95, 9), date(2025, 3, 10)) == []      # 9 < naive_min_days 10
    assert beats_naive_alerts(_paired(110, 95, 10), date(2025, 4, 30)) == []     # origins older than 28 days


# --- fallback --------------------------------------------------------------------------------------------

def _latest(queue: str, method: str, reason: str | None) -> pd.DataFrame:
    return pd.DataFrame({"forecast_origin": T("2025-03-10"), "queue": queue,
                         "date": pd.date_range("2025-03-10", periods=3, freq="D"), "horizon_day": [1, 2, 3],
                         "p10": 1.0, "p50": 2.0, "p90": 3.0, "method": method, "fallback_reason": reason})


def test_fallback_in_the_latest_forecast_warns_with_its_reason() -> None:
    latest = pd.concat([_latest("A", "lightgbm", None),
                        _latest("B", "seasonal_naive", "forecast_total_vs_recent: p50 total +55% vs recent")])
    got = fallback_alerts(latest)
    assert [(a.severity, a.queue, a.value) for a in got] == [("warning", "B", 3.0)]
    assert "forecast_total_vs_recent: p50 total +55% vs recent" in got[0].message
    assert "on 3 days (2025-03-10..12)" in got[0].message


def test_no_fallback_no_alert() -> None:
    assert fallback_alerts(_latest("A", "lightgbm", None)) == []


def test_alerts_frame_lists_critical_first() -> None:
    frame = alerts_frame([Alert("warning", "weekly_bias", "weekly_bias", "w", queue="A", value=0.04, threshold=0.03),
                          Alert("critical", "data_freshness", "hours_late", "c", value=7.0, threshold=6.0)])
    assert frame["severity"].tolist() == ["critical", "warning"]
    assert frame["queue"].tolist() == [None, "A"]
