"""The capacity plan (step 6): supply and need by hand, the volume methods, point-in-time, scenarios end to end."""

from __future__ import annotations

import importlib
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common import capacity_step, db, tables
from common.capacity_plan import blocks, make_plan
from common.capacity_sim import LEVELS, QueueInputs, SimSettings, quantile_function, simulate, with_centre
from common.capacity_staffing import StaffingCurve, curves, typical_week
from common.capacity_supply import QueueSupply, supply_paths, weekly_survival
from common.capacity_volume import Panel, backtest, volume_forecast
from common.config import load_config
from common.staffing import staffing_table
from tests.conftest import write_config

plan_step = importlib.import_module("6_capacity_plan")

AS_OF = date(2025, 3, 10)            # a Monday
FIRST = date(2024, 1, 1)             # a Monday: 62 weeks of history
WEEKDAY = np.array([1.2, 1.1, 1.0, 1.0, 0.9, 0.3, 0.0])   # Sunday closed
FAST = {"capacity__simulations": 200, "capacity__backtest_weeks": 30}


# --- supply and need by hand --------------------------------------------------------------------------------------

def test_supply_follows_attrition_and_hires_as_computed_by_hand():
    s = 0.98 ** (12 / 52)      # 2% a month is 0.4654% a week
    supply = QueueSupply(headcount=100.0, attrition_monthly=0.02, attrition_sd=0.0, hires=((3, 10.0),))
    productive, heads = supply_paths(supply, 4, [0.5], np.array([0.02]))
    assert weekly_survival(0.02) == pytest.approx(s)
    assert productive[0] == pytest.approx([100, 100 * s, 100 * s**2 + 10 * 0.5, 100 * s**3 + 10 * s])
    assert heads[0] == pytest.approx([100, 100 * s, 100 * s**2 + 10, 100 * s**3 + 10 * s])


def _inputs(volume, headcount=20.0, attrition=0.0) -> QueueInputs:
    weeks = len(volume)
    return QueueInputs(volume=np.array(volume, float), open_days=np.full(weeks, 5), aht=np.full(weeks, 360.0),
                       shrinkage=np.full(weeks, 0.3), volume_errors=np.zeros((weeks, len(LEVELS))),
                       aht_errors=np.zeros((weeks, len(LEVELS))),
                       curve=StaffingCurve("occupancy", 0.0, np.array([]), np.array([]), 0.8),
                       supply=QueueSupply(headcount, attrition, 0.0))


def test_a_plan_without_uncertainty_is_the_deterministic_calculation():
    # 1,000 calls x 6 min = 100 h of work; / 0.8 occupancy = 125 agent-hours; / (1 - 0.3) / 37.5 h = 4.7619 FTE
    settings = SimSettings(simulations=50, seed=1, paid_hours_per_week=37.5, shrinkage_sd=0.0, ramp=[])
    sims = with_centre(simulate({"A": _inputs([1000, 2000]), "B": _inputs([500, 500], headcount=3.0)}, settings), "C")
    need = 125 / 0.7 / 37.5
    assert sims["A"]["need"] == pytest.approx(np.tile([need, 2 * need], (50, 1)))
    assert sims["B"]["need"] == pytest.approx(np.full((50, 2), need / 2))
    assert sims["C"]["need"] == pytest.approx(np.tile([1.5 * need, 2.5 * need], (50, 1)))
    assert sims["C"]["supply"] == pytest.approx(np.full((50, 2), 23.0))
    assert sims["A"]["volume"] == pytest.approx(np.tile([1000, 2000], (50, 1)))


def test_volume_spread_comes_from_the_backtest_errors_at_that_horizon():
    errors = pd.DataFrame({"queue": "A", "weeks_ahead": np.repeat([1, 2], 100),
                           "log_error": np.r_[np.linspace(-0.1, 0.1, 100), np.linspace(-0.5, 0.5, 100)]})
    qf, default = quantile_function(errors.loc[errors["weeks_ahead"] == 1], "A", 1)
    assert not default and qf[0, 0] == pytest.approx(-0.1) and qf[0, -1] == pytest.approx(0.1)
    skewed, _ = quantile_function(errors.assign(log_error=errors["log_error"] + 0.3).iloc[:100], "A", 1)
    assert skewed[0] == pytest.approx(qf[0])      # the spread, not the bias: a skew is mirrored around 0
    inputs = _inputs([1000])
    inputs.volume_errors = qf
    settings = SimSettings(simulations=4000, seed=3, paid_hours_per_week=37.5, shrinkage_sd=0.0, ramp=[])
    volume = simulate({"A": inputs}, settings)["A"]["volume"][:, 0]
    # uniform log errors on [-0.1, 0.1]: p10 and p90 at -0.08 and +0.08
    assert np.quantile(volume, [0.1, 0.9]) == pytest.approx(1000 * np.exp([-0.08, 0.08]), rel=0.01)
    none, default = quantile_function(errors.iloc[:0], "A", 4)
    assert default and none[3, 90] > none[0, 90] > 0     # no backtest: an assumed band that widens


def test_blocks_are_the_rest_of_the_quarter_then_quarters():
    assert blocks(4, 26) == [(4, 13), (14, 26)]
    assert blocks(1, 30) == [(1, 13), (14, 26), (27, 30)]


# --- staffing through the Erlang model ----------------------------------------------------------------------------

def test_the_staffing_curve_is_staffing_table_on_the_typical_week():
    starts = pd.date_range("2025-03-03 08:00", periods=4, freq="30min")   # a Monday, 4 half-hours
    intervals = pd.DataFrame({"queue": "A", "interval_start": starts, "offered": [10.0, 30.0, 30.0, 10.0],
                              "is_open": True})
    week = typical_week(intervals)
    assert week["share"].tolist() == pytest.approx([0.125, 0.375, 0.375, 0.125])
    args = {"service_level_target": 0.8, "answer_seconds": 20, "max_occupancy": 0.85, "shrinkage": 0.3}
    curve = curves(week, ["A"], {"A": 8.0}, {"A": 300.0}, 30, "erlang", args, {"A": 0.85})["A"]
    calls = 8.0 * 3600 / 300 * week["share"].to_numpy()      # 96 calls a week at 5 min = 8 h of work
    frame = pd.DataFrame({"queue": "A", "interval_start": starts, "volume_p10": calls, "volume_p50": calls,
                          "volume_p90": calls, "aht_seconds": 300.0})
    by_hand = staffing_table(frame, 30, 0.8, 20, 0.85, 0.3)["agents_p50"].sum() * 0.5
    assert curve.need(np.array([8.0]), np.array([1]))[0] == pytest.approx(by_hand)
    assert curve.model == "erlang_c" and curve.need(np.array([8.0]), np.array([1]))[0] > 8.0 / 0.85


# --- volume: methods and point in time ------------------------------------------------------------------------

def synthetic_daily(days: int = (AS_OF - FIRST).days + 28, seed: int = 5) -> pd.DataFrame:
    """Two queues from FIRST: weekday pattern, a yearly wave, Poisson noise; Sundays closed."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(FIRST, periods=days, freq="D")
    parts = []
    for queue, base, aht in (("Support", 400.0, 300.0), ("Billing", 120.0, 420.0)):
        mean = base * WEEKDAY[dates.day_of_week] * (1 + 0.2 * np.sin(2 * np.pi * dates.day_of_year / 365.25))
        offered = rng.poisson(mean).astype(float)
        parts.append(pd.DataFrame({"queue": queue, "date": dates, "offered": offered, "handled": offered,
                                   "abandoned": 0.0, "short_abandoned": 0.0, "offered_outside_hours": 0.0,
                                   "aht_seconds": np.where(offered > 0, aht, np.nan), "is_open": mean > 0,
                                   "is_holiday": False}))
    return pd.concat(parts, ignore_index=True)


def test_recent_mean_plans_each_weekdays_mean_and_nothing_on_closed_days():
    dates = pd.date_range(FIRST, periods=70, freq="D")
    daily = pd.DataFrame({"queue": "A", "date": dates, "offered": np.where(dates.day_of_week < 5, 100.0,
                                                                          np.where(dates.day_of_week == 5, 20.0, 0.0)),
                          "is_open": dates.day_of_week < 6})
    panel = Panel.from_daily(daily, FIRST + timedelta(days=70))
    open_future = np.array([[True, True, False, True, True, True, False]])   # a holiday on Wednesday
    got = volume_forecast(panel, 70, open_future, "recent_mean")
    assert got.tolist() == [[100, 100, 0, 100, 100, 20, 0]]
    # a constant history: every method forecasts it exactly, and the backtest says so
    vol, _ = backtest(panel, 4, [FIRST + timedelta(weeks=8)])
    assert np.allclose(vol.loc[vol["method"] == "recent_mean", "log_error"], 0.0)


def plan_of(cfg, daily: pd.DataFrame, as_of: date):
    queues = sorted(daily["queue"].unique())
    return make_plan(cfg, as_of, daily, pd.DataFrame(columns=["queue", "interval_start", "offered", "is_open"]),
                     capacity_step.planned_calendar(cfg, queues, as_of), {})


def test_the_plan_of_an_as_of_never_reads_the_days_from_it_on(tmp_path):
    cfg = load_config(write_config(tmp_path, capacity__method="occupancy", **FAST))
    daily = synthetic_daily()
    before = plan_of(cfg, daily.loc[daily["date"] < pd.Timestamp(AS_OF)], AS_OF)
    later = daily["date"] >= pd.Timestamp(AS_OF)
    changed = daily.assign(offered=daily["offered"].where(~later, daily["offered"] * 10))
    after = plan_of(cfg, changed, AS_OF)
    pd.testing.assert_frame_equal(before.rows, after.rows)
    assert before.backtest_origins == 30 and set(before.methods.values()) <= {"recent_mean", "seasonal",
                                                                              "seasonal_flat"}


# --- step 6 end to end --------------------------------------------------------------------------------------------

def setup_db(tmp_path: Path, **sections) -> Path:
    path = write_config(tmp_path, **{**FAST, **sections})
    engine = db.make_engine(load_config(path).database_url)
    db.ensure_schema(engine)
    daily = synthetic_daily()
    with engine.begin() as conn:
        db.insert_frame(conn, tables.silver_daily, daily.loc[daily["date"] < pd.Timestamp(AS_OF)])
    return path


def run(path: Path, *extra: str, as_of: date = AS_OF) -> int:
    return plan_step.main(["--config", str(path), "--as-of", as_of.isoformat(), "--log-level", "WARNING", *extra])


def read(path: Path, table) -> pd.DataFrame:
    with db.make_engine(load_config(path).database_url).connect() as conn:
        return db.read_table(conn, table)


def test_step_6_plans_weeks_4_to_26_per_queue_and_the_centre(tmp_path):
    path = setup_db(tmp_path, capacity__queues={"Support": {"headcount": 40, "hires": [{"week": "2025-04-14",
                                                                                        "count": 5}]}})
    assert run(path) == 0
    plan = read(path, tables.gold_capacity_plan)
    assert set(plan["queue"]) == {"Support", "Billing", "(centre)"} and set(plan["scenario"]) == {"published"}
    assert sorted(plan["weeks_ahead"].unique()) == list(range(4, 27))
    assert plan["week_start"].min() == pd.Timestamp("2025-03-31") and plan["iso_week"].iloc[0] == "2025-W14"
    assert (plan["fte_required_p10"] <= plan["fte_required_p50"]).all()
    assert (plan["fte_required_p50"] <= plan["fte_required_p90"]).all()
    support = plan.loc[plan["queue"] == "Support"].set_index("weeks_ahead")
    assert support["headcount_p50"].loc[6] > support["headcount_p50"].loc[5]     # 5 hires start 14 April, week 6
    assert plan.loc[plan["queue"] == "Billing", "supply_fte_p50"].isna().all()   # no headcount given
    centre = plan.loc[plan["queue"] == "(centre)"].set_index("weeks_ahead")
    parts = plan.loc[plan["queue"] != "(centre)"].groupby("weeks_ahead")["volume_p50"].sum()
    assert (centre["volume_p50"] <= parts * 1.05).all() and (centre["volume_p50"] >= parts * 0.95).all()
    drivers = read(path, tables.gold_capacity_drivers)
    assert len(drivers) == 6 and drivers["sentence"].str.contains("FTE a week in weeks").all()
    shares = drivers[["share_volume", "share_aht", "share_shrinkage"]].fillna(0).sum(axis=1) + \
        drivers["share_attrition"].fillna(0)
    assert shares.to_numpy() == pytest.approx(1.0)
    assert run(path) == 0        # a re-run gives the same plan (seeded)
    again = read(path, tables.gold_capacity_plan)
    pd.testing.assert_frame_equal(again.drop(columns="run_id"), plan.drop(columns="run_id"))


def test_a_scenario_leaves_every_published_row_unchanged(tmp_path, capsys):
    path = setup_db(tmp_path)
    assert run(path) == 0
    published = {t.name: read(path, t) for t in (tables.gold_capacity_plan, tables.gold_capacity_drivers)}
    assert run(path, "--scenario", "growth", "--set", "capacity.queues.Support.headcount=50",
               "--set", "staffing.shrinkage=0.4") == 0
    plan = read(path, tables.gold_capacity_plan)
    pd.testing.assert_frame_equal(plan.loc[plan["scenario"] == "published"].reset_index(drop=True),
                                  published["gold_capacity_plan"])
    scenario = plan.loc[plan["scenario"] == "growth"].set_index(["queue", "weeks_ahead"])
    base = published["gold_capacity_plan"].set_index(["queue", "weeks_ahead"])
    assert (scenario["fte_required_p50"] > base["fte_required_p50"]).all()     # shrinkage 40% instead of 30%
    kept = read(path, tables.gold_scenarios)
    assert json.loads(kept["overrides"].iloc[0]) == ["capacity.queues.Support.headcount=50", "staffing.shrinkage=0.4"]
    # --set alone is a what-if in files; gold unchanged
    before = read(path, tables.gold_capacity_plan)
    assert run(path, "--set", "staffing.shrinkage=0.5") == 0
    pd.testing.assert_frame_equal(read(path, tables.gold_capacity_plan), before)
    assert list((tmp_path / "output" / AS_OF.isoformat()).glob("whatif-*/capacity_plan.csv"))
    capsys.readouterr()
    assert plan_step.main(["--config", str(path), "--list-scenarios"]) == 0
    assert "growth" in capsys.readouterr().out


def test_step_6_runs_weekly_once_a_plan_exists(tmp_path):
    path = setup_db(tmp_path)
    tuesday = AS_OF + timedelta(days=1)
    assert run(path, as_of=tuesday) == 0                 # the first plan, whatever the day
    assert run(path, as_of=tuesday + timedelta(days=1)) == 0
    runs = read(path, tables.pipeline_runs).sort_values("started_at")
    assert runs["status"].tolist() == ["success", "skipped"]
    assert "capacity.run_weekdays is [mon]" in runs["message"].iloc[-1]
    assert run(path, "--force", as_of=tuesday + timedelta(days=1)) == 0
    assert set(read(path, tables.gold_capacity_plan)["plan_origin"].dt.date) == {tuesday, tuesday + timedelta(days=1)}


def test_a_backtest_run_once_over_a_longer_history_gives_the_same_plan(tmp_path):
    # bench/bench_capacity.py backtests once and plans many origins from it: each must equal the step's own plan
    cfg = load_config(write_config(tmp_path, capacity__method="occupancy", **FAST))
    daily = synthetic_daily()
    panel = Panel.from_daily(daily, AS_OF + timedelta(days=28))
    longer = backtest(panel, cfg.capacity.horizon_weeks, [AS_OF - timedelta(weeks=k) for k in range(-3, 40)])
    alone = plan_of(cfg, daily.loc[daily["date"] < pd.Timestamp(AS_OF)], AS_OF)
    queues = sorted(daily["queue"].unique())
    shared = make_plan(cfg, AS_OF, daily, pd.DataFrame(columns=["queue", "interval_start", "offered", "is_open"]),
                       capacity_step.planned_calendar(cfg, queues, AS_OF), {}, backtest=longer)
    pd.testing.assert_frame_equal(alone.rows, shared.rows)


def test_bad_capacity_inputs_stop_with_one_line_naming_the_file_row_or_key(tmp_path, capsys):
    hires = tmp_path / "hires.csv"
    hires.write_text("queue,week,count\nSupport,2025-04-14,5\nSupport,next monday,3\n", encoding="utf-8")
    path = setup_db(tmp_path, capacity__hires_file=str(hires))
    assert run(path) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "hires.csv: row 3" in err and "fix the row" in err
    typo = tmp_path / "typo"
    typo.mkdir()
    path = setup_db(typo, capacity__queues={"Suport": {"headcount": 10}})
    assert run(path) == 2
    err = capsys.readouterr().err
    assert "capacity.queues: Suport not in silver_daily" in err
    assert read(path, tables.gold_capacity_plan).empty      # nothing half-written
