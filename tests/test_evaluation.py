"""Step 4's scoring: accuracy rows, the naive benchmark, hand-computed summaries, and 4_evaluate.py end to end."""

from __future__ import annotations

import importlib
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common import db, registry, tables
from common.config import load_config
from common.evaluation import (
    FORECAST, NAIVE_BENCHMARK, accuracy_rows, leaking_forecasts, naive_benchmark, origins_to_score, summarize,
)
from tests.conftest import write_config

evaluate = importlib.import_module("4_evaluate")
T = pd.Timestamp


def _acc(rows: list[tuple]) -> pd.DataFrame:
    """Accuracy rows from (origin, queue, date, horizon_day, method, actual, p10, p50, p90, is_open)."""
    frame = pd.DataFrame(rows, columns=["forecast_origin", "queue", "date", "horizon_day", "method", "actual",
                                        "p10", "p50", "p90", "is_open"])
    frame = frame.assign(forecast_origin=pd.to_datetime(frame["forecast_origin"]), date=pd.to_datetime(frame["date"]))
    error = frame["p50"] - frame["actual"]
    return frame.assign(weekday=frame["date"].dt.day_of_week, model_version=None, error=error, abs_error=error.abs(),
                        in_band=(frame["actual"] >= frame["p10"]) & (frame["actual"] <= frame["p90"]))


def test_accuracy_rows_put_each_forecast_next_to_its_actual_and_drop_days_without_one() -> None:
    forecasts = pd.DataFrame({
        "forecast_origin": T("2025-03-07"), "queue": "A",
        "date": pd.to_datetime(["2025-03-07", "2025-03-08", "2025-03-10"]), "horizon_day": [1, 2, 4],
        "p10": [80.0, 0.0, 70.0], "p50": [90.0, 0.0, 80.0], "p90": [95.0, 0.0, 90.0],
        "method": "lightgbm", "model_version": "v1", "fallback_reason": None})
    actuals = pd.DataFrame({"queue": "A", "date": pd.to_datetime(["2025-03-07", "2025-03-08"]),
                            "offered": [100.0, 0.0], "is_open": [True, False]})
    got = accuracy_rows(forecasts, actuals)
    # Fri 03-07: p50 90 - actual 100 = -10, 100 is above p90 95 -> out of band; Sat 03-08 closed: 0 vs 0, in band;
    # Mon 03-10 has no actual yet -> not scored.
    assert got["date"].tolist() == [T("2025-03-07"), T("2025-03-08")]
    assert got["weekday"].tolist() == [4, 5]
    assert got["error"].tolist() == [-10.0, 0.0]
    assert got["abs_error"].tolist() == [10.0, 0.0]
    assert got["in_band"].tolist() == [False, True]
    assert got["is_open"].tolist() == [True, False]
    assert got["model_version"].tolist() == ["v1", "v1"]


def _summary_fixture() -> pd.DataFrame:
    o = "2025-03-03"
    model = [(o, "A", "2025-03-03", 1, "lightgbm", 100.0, 80.0, 90.0, 120.0, True),
             (o, "A", "2025-03-04", 2, "lightgbm", 50.0, 40.0, 60.0, 70.0, True),
             (o, "A", "2025-03-05", 3, "lightgbm", 0.0, 0.0, 0.0, 0.0, False),    # closed: 0 vs 0
             (o, "A", "2025-03-06", 4, "lightgbm", 0.0, 10.0, 20.0, 30.0, True)]  # open, zero actual (an outage)
    naive = [(o, "A", d, h, NAIVE_BENCHMARK, y, p, p, p, is_open)
             for (_, _, d, h, _, y, *_rest, is_open), p in zip(model, [100.0, 40.0, 0.0, 35.0])]
    return _acc(model + naive)


def test_summary_metrics_match_the_hand_computation_and_skip_closed_days() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a zero actual must never divide: no RuntimeWarning
        got = summarize(_summary_fixture(), ["lightgbm"], NAIVE_BENCHMARK, FORECAST, NAIVE_BENCHMARK, ["overall"])
    model = got.loc[got["method"] == FORECAST].iloc[0]
    # Open points: (y, p50) = (100, 90), (50, 60), (0, 20); the closed day is left out. Sum y = 150.
    assert model["n_days"] == 3
    assert model["wmape"] == pytest.approx(40 / 150)               # (10 + 10 + 20) / 150
    assert model["mape"] == pytest.approx((10 / 100 + 10 / 50) / 2)  # the zero actual has no APE
    assert model["mae"] == pytest.approx(40 / 3)
    assert model["rmse"] == pytest.approx(np.sqrt((100 + 100 + 400) / 3))
    assert model["bias"] == pytest.approx(20 / 150)                # (-10 + 10 + 20) / 150: over-forecast
    assert model["total_volume_error"] == pytest.approx(20 / 150)  # |170 - 150| / 150, one origin x queue
    # pinball q=0.1: y - p10 = 20, 10, -10 -> 2, 1, 9; q=0.5: half of |y - p50|; q=0.9: y - p90 = -20, -20, -30 -> 2, 2, 3
    assert model["pinball_p10"] == pytest.approx(12 / 3)
    assert model["pinball_p50"] == pytest.approx(20 / 3)
    assert model["pinball_p90"] == pytest.approx(7 / 3)
    assert model["coverage"] == pytest.approx(2 / 3)               # 0 is below the outage day's p10 of 10
    # naive p50 100, 40, 35 on the same open days: (0 + 10 + 35) / 150 = 0.3 > 0.2667 -> the model beats it
    assert model["wmape_naive"] == pytest.approx(45 / 150)
    assert model["beats_naive"] is True
    naive = got.loc[got["method"] == NAIVE_BENCHMARK].iloc[0]
    assert naive["wmape"] == pytest.approx(45 / 150)
    assert naive["beats_naive"] is None


def test_summary_is_nan_not_an_error_when_every_open_actual_is_zero() -> None:
    acc = _acc([("2025-03-03", "A", "2025-03-03", 1, "lightgbm", 0.0, 0.0, 5.0, 9.0, True),
                ("2025-03-03", "A", "2025-03-03", 1, NAIVE_BENCHMARK, 0.0, 0.0, 0.0, 0.0, True)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        row = summarize(acc, ["lightgbm"], NAIVE_BENCHMARK, FORECAST, NAIVE_BENCHMARK, ["overall"]).iloc[0]
    assert np.isnan(row["wmape"]) and np.isnan(row["mape"]) and np.isnan(row["bias"])
    assert np.isnan(row["total_volume_error"]) and row["beats_naive"] is None
    assert row["mae"] == 5.0


def test_summary_scopes_split_by_queue_and_leave_out_values_with_no_open_day() -> None:
    got = summarize(_summary_fixture(), ["lightgbm"], NAIVE_BENCHMARK, FORECAST, NAIVE_BENCHMARK,
                    ["queue", "weekday", "horizon_day"])
    # weekday 2 (Wed 03-05) is the closed day only -> no row; Mon 03-03: |90 - 100| / 100
    assert sorted(got.loc[got["scope"] == "weekday", "scope_value"].unique()) == ["0", "1", "3"]
    mon = got.loc[(got["scope"] == "weekday") & (got["scope_value"] == "0") & (got["method"] == FORECAST)].iloc[0]
    assert mon["wmape"] == pytest.approx(0.1)
    assert got.loc[got["scope"] == "queue", "scope_value"].unique().tolist() == ["A"]


def test_naive_benchmark_is_the_last_open_same_weekday_before_the_origin() -> None:
    # Two weeks Mon-Fri open (Mon 100, Tue 50, ...), Mon 03-03 a closed holiday, origin Tue 03-04 with actuals.
    dates = pd.date_range("2025-02-17", "2025-03-05", freq="D")
    week = {0: 100.0, 1: 50.0, 2: 60.0, 3: 70.0, 4: 80.0}
    is_open = [d.day_of_week < 5 and d != T("2025-03-03") for d in dates]
    history = pd.DataFrame({"queue": "A", "date": dates, "is_open": is_open,
                            "offered": [week.get(d.day_of_week, 0.0) if o else 0.0 for d, o in zip(dates, is_open)]})
    points = pd.DataFrame({"forecast_origin": T("2025-03-03"), "queue": "A",
                           "date": pd.to_datetime(["2025-03-03", "2025-03-04", "2025-03-05"]), "horizon_day": [1, 2, 3]})
    got = naive_benchmark(history, points)
    # Mon 03-03 is closed -> 0; Tue -> Tue 02-25 = 50; Wed -> Wed 02-26 = 60. Every error of the last 8 weeks is 0,
    # so the band is the point itself.
    assert got["p50"].tolist() == [0.0, 50.0, 60.0]
    assert got["p10"].tolist() == got["p50"].tolist() == got["p90"].tolist()
    assert set(got["method"]) == {NAIVE_BENCHMARK}
    # A queue whose silver stops before the origin's eve gets no benchmark (instead of a wrong one).
    assert naive_benchmark(history.loc[history["date"] < T("2025-02-28")], points).empty


def test_origins_to_score_are_recent_or_never_scored_unless_full() -> None:
    stored = [date(2025, 1, 6), date(2025, 2, 3), date(2025, 3, 3)]
    scored = [date(2025, 1, 6), date(2025, 3, 3)]
    assert origins_to_score(stored, scored, date(2025, 2, 10), full=False) == [date(2025, 2, 3), date(2025, 3, 3)]
    assert origins_to_score(stored, scored, date(2025, 2, 10), full=True) == stored


def test_a_forecast_leaks_when_its_model_was_trained_on_data_from_its_origin_on() -> None:
    used = pd.DataFrame({"forecast_origin": pd.to_datetime(["2025-03-10", "2025-03-10", "2025-03-09", "2025-03-09"]),
                         "model_version": ["v0310", "vX", "v0310", "v1"]})
    windows = pd.DataFrame({"version": ["v0310", "vX", "v1"],
                            "train_last": pd.to_datetime(["2025-03-09", pd.NaT, "2025-03-01"])})
    # v0310 saw 03-09: fine for origin 03-10, a leak for origin 03-09; an unknown window is not judged
    leaks = leaking_forecasts(used, windows)
    assert list(leaks.itertuples(index=False, name=None)) == [(T("2025-03-09"), "v0310", T("2025-03-09"))]


# --- 4_evaluate.py end to end -------------------------------------------------------------------------------

AS_OF = "2025-03-10"
WEEK = {0: 100.0, 1: 90.0, 2: 80.0, 3: 70.0, 4: 60.0}
LAST_WEEK = {"2025-03-03": 110.0, "2025-03-04": 99.0, "2025-03-05": 80.0, "2025-03-06": 84.0, "2025-03-07": 60.0}


def _silver(start: str = "2025-02-03", end: str = "2025-03-09") -> pd.DataFrame:
    """Queue A, Mon-Fri open: 100, 90, 80, 70, 60 every week; the week of 03-03 as in LAST_WEEK; weekends 0, closed."""
    dates = pd.date_range(start, end, freq="D")
    is_open = dates.day_of_week < 5
    offered = [LAST_WEEK.get(f"{d:%Y-%m-%d}", WEEK.get(d.day_of_week, 0.0)) for d in dates]
    return pd.DataFrame({"queue": "A", "date": dates, "offered": offered, "is_open": is_open,
                         "is_holiday": False, "offered_outside_hours": 0.0})


def _forecast(origin: str, p50: list[float], method: str, band: str) -> pd.DataFrame:
    dates = pd.date_range(origin, periods=len(p50), freq="D")
    p50 = np.asarray(p50)
    lo, hi = (p50 - 10, p50 + 10) if band == "abs" else (p50 * 0.9, p50 * 1.1)
    lo, hi = np.where(p50 > 0, lo, 0.0), np.where(p50 > 0, hi, 0.0)
    return pd.DataFrame({"run_id": "r3", "forecast_origin": T(origin), "queue": "A", "date": dates,
                         "horizon_day": np.arange(1, len(dates) + 1), "p10": lo, "p50": p50, "p90": hi,
                         "method": method, "model_version": "v1" if method == "lightgbm" else None,
                         "fallback_reason": None if method == "lightgbm" else "no production model"})


@pytest.fixture
def evaluated_db(tmp_path: Path) -> Path:
    """Silver 02-03..03-09 and two stored origins: Mon 03-03 (lightgbm, 7 days) and Wed 03-05 (fallback, 7 days)."""
    config = write_config(tmp_path, alerts__naive_min_days=5)
    engine = db.make_engine(load_config(config).database_url)
    db.ensure_schema(engine)
    with engine.begin() as conn:
        db.insert_frame(conn, tables.silver_daily, _silver())
        db.insert_frame(conn, tables.gold_forecast_daily, pd.concat([
            _forecast("2025-03-03", [100, 90, 88, 70, 60, 0, 0], "lightgbm", "abs"),
            _forecast("2025-03-05", [80, 70, 60, 0, 0, 100, 90], "seasonal_naive", "rel"),
        ], ignore_index=True))
    return config


def _read(config: Path, table) -> pd.DataFrame:
    with db.make_engine(load_config(config).database_url).connect() as conn:
        return db.read_table(conn, table)


def test_evaluate_scores_both_origins_against_actuals_and_naive(evaluated_db: Path) -> None:
    assert evaluate.main(["--config", str(evaluated_db), "--as-of", AS_OF]) == 0
    acc = _read(evaluated_db, tables.gold_forecast_accuracy).sort_values(["forecast_origin", "date", "method"])
    # 03-03: 7 dates < 03-10 x (lightgbm + naive_benchmark); 03-05: 5 dates (03-10, 03-11 have no actual yet) x 2
    assert len(acc) == 24
    mon = acc.loc[(acc["forecast_origin"] == T("2025-03-03")) & (acc["date"] == T("2025-03-03"))]
    assert mon["method"].tolist() == ["lightgbm", NAIVE_BENCHMARK]
    # lightgbm: p50 100 vs actual 110, band 90..110 (inclusive); naive = Mon 02-24 = 100
    assert mon["error"].tolist() == [-10.0, -10.0]
    assert mon["in_band"].tolist() == [True, False]
    sat = acc.loc[(acc["date"] == T("2025-03-08")) & (acc["method"] == "lightgbm")].iloc[0]
    assert (sat["actual"], sat["p50"], sat["is_open"], sat["weekday"]) == (0.0, 0.0, False, 5)
    wed = acc.loc[(acc["forecast_origin"] == T("2025-03-05")) & (acc["date"] == T("2025-03-05"))]
    assert wed["method"].tolist() == [NAIVE_BENCHMARK, "seasonal_naive"]  # sorted by method
    assert wed["p50"].tolist() == [80.0, 80.0]  # naive at 03-05: Wed 02-26

    summary = _read(evaluated_db, tables.gold_forecast_accuracy_summary)
    overall = summary.loc[(summary["scope"] == "overall") & (summary["method"] == FORECAST)].iloc[0]
    # Open points: origin 03-03 |p50 - y| = 10, 9, 8, 14, 0 (y sum 433); origin 03-05: 0, 14, 0 (y sum 224)
    assert overall["n_days"] == 8 and overall["window_days"] == 28
    assert overall["wmape"] == pytest.approx(55 / 657)
    assert overall["bias"] == pytest.approx(-39 / 657)
    assert overall["total_volume_error"] == pytest.approx((25 / 433 + 14 / 224) / 2)
    assert overall["coverage"] == pytest.approx(6 / 8)    # both Thursdays (84) are above p90 (80 and 77)
    # naive: origin 03-03 errors 10, 9, 0, 14, 0; origin 03-05 0, 14, 0 -> 47 / 657: the model does not beat it
    assert overall["wmape_naive"] == pytest.approx(47 / 657)
    assert not overall["beats_naive"]
    by_method = summary.loc[(summary["scope"] == "method") & (summary["method"] == FORECAST)].set_index("scope_value")
    assert by_method.loc["lightgbm", "wmape"] == pytest.approx(41 / 433)

    found = _read(evaluated_db, tables.gold_alerts)
    got = set(zip(found["severity"], found["alert_rule"], found["queue"].fillna("-")))
    # No bronze at all -> freshness critical; lightgbm 41/433 vs naive 33/433 on 5 open days (naive_min_days 5);
    # the latest origin 03-05 is a fallback. The week of 03-03 has same-night forecasts on 2 of its 5 open days
    # (Mon, Wed): not a complete week, so no weekly bias alert (alerts.bias_min_days 7).
    assert got == {("critical", "data_freshness", "-"), ("warning", "model_vs_naive", "A"),
                   ("warning", "forecast_fallback", "A")}
    assert "no production model" in found.loc[found["alert_rule"] == "forecast_fallback", "message"].iloc[0]


def test_evaluate_judges_weekly_bias_on_the_scored_days_bias_min_days_asks_for(tmp_path: Path,
                                                                                evaluated_db: Path) -> None:
    config = write_config(tmp_path, alerts__naive_min_days=5, alerts__bias_min_days=2)
    assert evaluate.main(["--config", str(config), "--as-of", AS_OF]) == 0
    found = _read(config, tables.gold_alerts)
    bias = found.loc[found["alert_rule"] == "weekly_bias"]
    # h1 points of the week of 03-03: Mon (p50 100, y 110) and Wed (80, 80) -> bias -10 / 190 = -5.3%, beyond 5%.
    assert bias[["severity", "queue"]].values.tolist() == [["critical", "A"]]
    assert bias["value"].iloc[0] == pytest.approx(-10 / 190) and bias["threshold"].iloc[0] == 0.05
    assert ("A: week 2025-03-03..09 (2 of 5 open days scored: Mon, Wed; not scored: Tue, Thu-Fri) under-forecast "
            "by 5.3%") in bias["message"].iloc[0]


def test_evaluate_rerun_gives_identical_tables(evaluated_db: Path) -> None:
    args = ["--config", str(evaluated_db), "--as-of", AS_OF]
    assert evaluate.main(args) == 0
    first = {t.name: _read(evaluated_db, t) for t in (tables.gold_forecast_accuracy,
                                                     tables.gold_forecast_accuracy_summary, tables.gold_alerts)}
    assert evaluate.main(args) == 0
    for table, before in first.items():
        after = _read(evaluated_db, tables.metadata.tables[table])
        drop = [c for c in ("run_id", "id", "created_at") if c in before.columns]
        keys = [c for c in before.columns if c not in drop]
        pd.testing.assert_frame_equal(before.drop(columns=drop).sort_values(keys).reset_index(drop=True),
                                      after.drop(columns=drop).sort_values(keys).reset_index(drop=True))


def _register_window(config: Path, version: str, last: str) -> None:
    """A model_registry row for `version` whose training.json says it was trained on data up to `last`."""
    cfg = load_config(config)
    folder = cfg.path(cfg.training.model_dir) / version
    folder.mkdir(parents=True)
    (folder / "training.json").write_text(f'{{"train_window": {{"first": "2024-01-01", "last": "{last}"}}}}')
    entry = {"version": version, "created_at": T("2025-03-10 01:00"), "data_hash": "d" * 64, "params": {},
             "metrics": {}, "feature_importance": {}, "artifact_path": f"{cfg.training.model_dir}/{version}",
             "artifact_sha256": {}}
    with db.make_engine(cfg.database_url).begin() as conn:
        registry.save_version(conn, entry, "production", "test", now=T("2025-03-10 01:00"))


def test_a_forecast_whose_model_saw_its_target_days_is_not_scored_and_the_run_says_so(
        evaluated_db: Path, tmp_path: Path) -> None:
    # the same stored forecasts without the leak, evaluated in a second database: what step 4 must produce
    clean = tmp_path / "clean"
    clean.mkdir()
    clean_config = write_config(clean, alerts__naive_min_days=5)
    with db.make_engine(load_config(clean_config).database_url).begin() as conn:
        db.ensure_schema(conn.engine)
    engine = db.make_engine(load_config(evaluated_db).database_url)
    with engine.connect() as conn:
        stored = db.read_table(conn, tables.gold_forecast_daily)
    with db.make_engine(load_config(clean_config).database_url).begin() as conn:
        db.insert_frame(conn, tables.silver_daily, _silver())
        db.insert_frame(conn, tables.gold_forecast_daily, stored)
    # a backfill for Tue 03-04 made with production v20250310-prod0001, trained on data up to 03-09: it "forecast"
    # the actuals it was trained on (exactly), which would flatter the model and move bias and model_vs_naive
    _register_window(evaluated_db, "v20250310-prod0001", "2025-03-09")
    leak = _forecast("2025-03-04", [99, 80, 84, 60, 0, 0], "lightgbm", "abs").assign(model_version="v20250310-prod0001")
    # and accuracy rows an older version scored for an origin 8 weeks back (not re-scored by the nightly window)
    old = _forecast("2025-01-13", [100, 90], "lightgbm", "abs").assign(model_version="v20250310-prod0001")
    old_acc = old.drop(columns=["run_id", "fallback_reason"]).assign(
        run_id="r4", actual=100.0, weekday=old["date"].dt.day_of_week, error=0.0, abs_error=0.0, is_open=True,
        in_band=True)
    with engine.begin() as conn:
        db.insert_frame(conn, tables.gold_forecast_daily, pd.concat([leak, old], ignore_index=True))
        db.insert_frame(conn, tables.gold_forecast_accuracy, old_acc)

    for config in (evaluated_db, clean_config):
        assert evaluate.main(["--config", str(config), "--as-of", AS_OF]) == 0
    for table in (tables.gold_forecast_accuracy, tables.gold_forecast_accuracy_summary, tables.gold_alerts):
        got, want = _read(evaluated_db, table), _read(clean_config, table)
        drop = [c for c in ("run_id", "id", "created_at") if c in got.columns]
        keys = [c for c in got.columns if c not in drop]
        pd.testing.assert_frame_equal(got.drop(columns=drop).sort_values(keys).reset_index(drop=True),
                                      want.drop(columns=drop).sort_values(keys).reset_index(drop=True))
    runs = _read(evaluated_db, tables.pipeline_runs)
    assert runs["message"].iloc[-1].endswith(
        "; 8 forecast rows of 2 origins skipped, their model had seen the days they forecast: origin 2025-01-13 by "
        "v20250310-prod0001 (trained on data up to 2025-03-09), origin 2025-03-04 by v20250310-prod0001 (trained on "
        "data up to 2025-03-09)")


def test_backtest_writes_tagged_rows_that_never_mix_with_real_ones(tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path, training__params={"n_estimators": 5, "min_data_in_leaf": 5},
                          training__min_history_days=28)
    rng = np.random.default_rng(1)
    silver = _silver("2024-11-04", "2025-03-09")
    silver = silver.assign(offered=np.where(silver["is_open"], silver["offered"] + rng.integers(0, 10, len(silver)), 0.0))
    engine = db.make_engine(load_config(config).database_url)
    db.ensure_schema(engine)
    with engine.begin() as conn:
        db.insert_frame(conn, tables.silver_daily, silver)
    args = ["--config", str(config), "--as-of", AS_OF, "--backtest", "--origins", "2", "--step-days", "7"]
    assert evaluate.main(args) == 0
    out = capsys.readouterr().out
    assert "Backtest of the configured training setup: 2 origins" in out and "backtest_lightgbm" in out
    acc = _read(config, tables.gold_forecast_accuracy)
    # origins 02-17 and 02-24 (the latest horizon ends 03-09), 14 days each, model + naive
    assert sorted(acc["forecast_origin"].unique()) == [T("2025-02-17"), T("2025-02-24")]
    assert acc.groupby("method").size().to_dict() == {"backtest_lightgbm": 28, "backtest_naive": 28}
    summary = _read(config, tables.gold_forecast_accuracy_summary)
    assert set(summary["method"]) == {"backtest_lightgbm", "backtest_naive"}
    assert summary["window_days"].unique().tolist() == [21]  # 02-17 .. as-of 03-10
    assert evaluate.main(args) == 0  # a second backtest replaces the first
    assert len(_read(config, tables.gold_forecast_accuracy)) == 56


def test_help_explains_the_step(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        evaluate.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "gold_forecast_accuracy" in out and "--backtest" in out and "--origins" in out
