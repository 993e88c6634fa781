"""The report's busiest queues by name and one "All other queues" aggregate: which queues, and the summed frames."""

from __future__ import annotations

import pandas as pd

from common import plots_accuracy, report_queues

DAYS = pd.to_datetime(["2025-03-10", "2025-03-11"])


def _forecast(volumes: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame([{"queue": q, "date": d, "p10": 0.5 * v, "p50": v, "p90": 2.0 * v,
                          "method": "seasonal_naive" if q == "D" else "lightgbm",
                          "fallback_reason": "no production model" if q == "D" else None}
                         for q, v in volumes.items() for d in DAYS])


def test_the_busiest_queues_are_named_and_a_centre_of_top_plus_one_queues_is_drawn_whole() -> None:
    volumes = {"A": 50.0, "B": 10.0, "C": 30.0, "D": 10.0, "E": 40.0}
    # p50 totals A 100, E 80, C 60, then B and D tie at 20: top 3 = A, C, E (name order).
    assert report_queues.busiest_queues(_forecast(volumes), 3) == ["A", "C", "E"]
    assert report_queues.busiest_queues(_forecast(volumes), 4) == ["A", "B", "C", "D", "E"]  # 4 + 1 queues: all


def test_the_other_queues_are_summed_per_day_and_their_accuracy_weighted_by_volume() -> None:
    volumes = {"A": 50.0, "B": 10.0, "C": 30.0, "D": 10.0, "E": 40.0}
    actuals = pd.DataFrame([{"queue": q, "date": d - pd.Timedelta(days=7), "offered": v, "is_open": q == "B"}
                            for q, v in volumes.items() for d in DAYS])
    staffing = pd.DataFrame([{"queue": q, "interval_start": DAYS[0] + pd.Timedelta(hours=9), "staff_p10": 1,
                              "staff_p50": 2, "staff_p90": 3} for q in volumes])
    # B: actual 10, p50 12 (+2); D: actual 30, p50 24 (-6): weighted error (2 + 6) / 40 = 20%, bias -4 / 40 = -10%
    # (summing first would give |36 - 40| / 40 = 10%).
    accuracy = pd.DataFrame([{"queue": q, "date": pd.Timestamp("2025-03-07"), "horizon_day": 1, "method": "lightgbm",
                              "actual": a, "p50": p, "is_open": True} for q, a, p in (("B", 10.0, 12.0),
                                                                                      ("D", 30.0, 24.0),
                                                                                      ("A", 100.0, 100.0))])
    drawn = report_queues.chart_frames(_forecast(volumes), actuals, staffing, accuracy, top=3)
    label = "All other queues (2)"
    assert drawn.others == ["B", "D"]
    f = drawn.forecast.loc[drawn.forecast["queue"] == label]
    assert f["p50"].tolist() == [20.0, 20.0] and f["p10"].tolist() == [10.0, 10.0] and f["p90"].tolist() == [40.0, 40.0]
    assert f["method"].tolist() == ["seasonal_naive"] * 2
    assert f["fallback_reason"].tolist() == ["1 of 2 queues on a fallback"] * 2
    a = drawn.actuals.loc[drawn.actuals["queue"] == label]
    assert a["offered"].tolist() == [20.0, 20.0] and a["is_open"].tolist() == [True, True]  # B is open
    assert drawn.staffing.loc[drawn.staffing["queue"] == label, "staff_p50"].tolist() == [4]
    assert sorted(drawn.forecast["queue"].unique()) == ["A", label, "C", "E"]
    trend = plots_accuracy.accuracy_trend(drawn.accuracy, pd.Timestamp("2025-03-10").date())
    others = trend.loc[trend["queue"] == label].iloc[0]
    assert abs(others["wmape"] - 0.20) < 1e-9 and abs(others["bias"] - (-0.10)) < 1e-9


def test_the_email_rows_of_the_other_queues_sum_volumes_and_leave_peaks_empty() -> None:
    summary = pd.DataFrame([
        {"queue": "A", "p50": 100.0, "p10": 80.0, "p90": 120.0, "previous": 90.0, "method": "lightgbm",
         "peak_staff_p50": 9.0, "staff_hours_p50": 50.0, "wmape": 0.1},
        {"queue": "B", "p50": 20.0, "p10": 10.0, "p90": 30.0, "previous": 25.0, "method": "lightgbm",
         "peak_staff_p50": 2.0, "staff_hours_p50": 6.0, "wmape": 0.2},
        {"queue": "C", "p50": 10.0, "p10": 5.0, "p90": 15.0, "previous": 15.0, "method": "seasonal_naive",
         "peak_staff_p50": 1.0, "staff_hours_p50": 4.0, "wmape": 0.3}])
    named, rest = report_queues.fold_summary(summary, ["B", "C"])
    assert rest["queue"].tolist() == ["B", "C"]
    row = named.iloc[-1]
    # p50 20 + 10 = 30 vs previous 25 + 15 = 40: -25%.
    assert row["queue"] == "All other queues (2)" and (row["p50"], row["p10"], row["p90"]) == (30.0, 15.0, 45.0)
    assert row["previous"] == 40.0 and abs(row["change"] - (-0.25)) < 1e-9 and row["staff_hours_p50"] == 10.0
    assert pd.isna(row["peak_staff_p50"]) and pd.isna(row["wmape"])
    assert (row["method"], row["fallback_reason"]) == ("seasonal_naive", "1 of 2 queues on a fallback")
