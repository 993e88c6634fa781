"""Step 3 end to end on directly inserted silver rows: model or fallback, replace by origin, staffing present."""

from __future__ import annotations

import importlib
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from common import db, registry, tables
from common.aggregate import aggregate_daily
from common.calendar import interval_grid
from common.cli import what_if_overrides
from common.config import load_config
from common.forecaster import QuantileForecaster
from common.opening_hours import parse_opening_hours
from common.silver import closed_dates_for
from tests.conftest import write_config

forecast_step = importlib.import_module("3_forecast")

AS_OF = date(2025, 3, 10)          # a Monday
FIRST = AS_OF - timedelta(days=150)
LAST = AS_OF + timedelta(days=1)   # silver up to 03-11, so a later as-of also has its history
TINY = {"n_estimators": 60, "min_data_in_leaf": 5}
# default opening hours: Mon-Fri 08-18; Support also Sat 10-14 (config.yaml's queue override)
BASE = {"Support": 120.0, "Billing": 60.0, "Newline": 40.0}
WEEKDAY = np.array([1.3, 1.1, 1.0, 0.95, 0.85, 0.5, 0.0])


def silver_frames(cfg) -> tuple[pd.DataFrame, pd.DataFrame]:
    """silver_interval and silver_daily for Support and Billing (150 days) and Newline (its last 5 days)."""
    closed = closed_dates_for(cfg, FIRST, LAST)
    hours = parse_opening_hours(cfg.rules.opening_hours.model_dump())
    grid = interval_grid(list(BASE), FIRST, LAST, 30, cfg.timezone, hours, closed)
    grid = grid.loc[(grid["queue"] != "Newline") | (grid["date"] > pd.Timestamp(LAST - timedelta(days=5)))]
    rng = np.random.default_rng(7)
    hour = grid["interval_start"].dt.hour + grid["interval_start"].dt.minute / 60
    shape = np.exp(-((hour - 11.0) ** 2) / 8.0)  # one late-morning peak
    level = grid["queue"].map(BASE) * WEEKDAY[grid["date"].dt.day_of_week] / 10
    offered = np.where(grid["is_open"], rng.poisson(np.maximum(level * shape * 2, 0.1)), 0).astype(float)
    intervals = grid.assign(
        offered=offered, handled=offered, abandoned=0.0, short_abandoned=0.0, offered_outside_hours=0.0,
        aht_seconds=np.where(offered > 0, 240.0 + 10 * grid["interval_start"].dt.hour, np.nan))
    return intervals.reset_index(drop=True), aggregate_daily(intervals, closed)


def model_history(daily: pd.DataFrame) -> pd.DataFrame:
    frame = daily.loc[(daily["queue"] != "Newline") & (daily["date"] < pd.Timestamp(AS_OF))]
    return frame.rename(columns={"queue": "series", "offered": "y"}).loc[
        :, ["series", "date", "y", "is_open", "is_holiday"]].reset_index(drop=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Silver frames and a tiny model trained on Support and Billing (once for the module)."""
    cfg = load_config(write_config(tmp_path_factory.mktemp("cfg")))
    intervals, daily = silver_frames(cfg)
    model = QuantileForecaster(params=TINY, ensemble=True).fit(model_history(daily), closed_dates_for(cfg, FIRST, LAST))
    return intervals, daily, model


def setup_db(tmp_path: Path, data, register: bool = True) -> Path:
    """A config and database holding the silver rows and, if asked, the model as production."""
    path = write_config(tmp_path)
    cfg = load_config(path)
    engine = db.make_engine(cfg.database_url)
    db.ensure_schema(engine)
    intervals, daily, model = data
    with engine.begin() as conn:
        db.insert_frame(conn, tables.silver_interval, intervals)
        db.insert_frame(conn, tables.silver_daily, daily)
    if register:
        register_model(path, model, "v20250309-test0001")
    return path


def register_model(path: Path, model: QuantileForecaster, version: str, promoted_at: datetime | None = None) -> None:
    """Save `model` as the production `version` (promoted at `promoted_at`, default now; the previous is archived)."""
    cfg = load_config(path)
    shas = registry.write_artifacts(cfg.path(cfg.training.model_dir) / version, model, {"version": version})
    entry = {"version": version, "created_at": promoted_at or db.utc_now(), "data_hash": "d" * 64, "params": {},
             "metrics": {}, "feature_importance": {}, "artifact_path": f"{cfg.training.model_dir}/{version}",
             "artifact_sha256": shas}
    with db.make_engine(cfg.database_url).begin() as conn:
        registry.save_version(conn, entry, "production", "test", now=promoted_at)


def run(path: Path, as_of: date = AS_OF) -> int:
    return forecast_step.main(["--config", str(path), "--as-of", as_of.isoformat()])


def read(path: Path, table) -> pd.DataFrame:
    with db.make_engine(load_config(path).database_url).connect() as conn:
        return db.read_table(conn, table)


def by_queue(forecast: pd.DataFrame) -> dict[str, set]:
    return {q: set(rows["method"]) for q, rows in forecast.groupby("queue")}


def test_model_forecasts_known_queues_and_a_new_short_queue_gets_its_open_day_mean(tmp_path, data):
    path = setup_db(tmp_path, data)
    assert run(path) == 0
    fc = read(path, tables.gold_forecast_daily)
    assert len(fc) == 3 * 14 and set(fc["forecast_origin"]) == {pd.Timestamp(AS_OF)}
    assert by_queue(fc) == {"Billing": {"ensemble"}, "Support": {"ensemble"}, "Newline": {"seasonal_naive"}}
    assert fc["horizon_day"].groupby(fc["queue"]).agg(list).map(sorted).eq([list(range(1, 15))] * 3).all()
    lgbm = fc.loc[fc["method"] == "ensemble"]
    assert lgbm["model_version"].eq("v20250309-test0001").all() and lgbm["fallback_reason"].isna().all()
    newline = fc.loc[fc["queue"] == "Newline"]
    assert newline["fallback_reason"].str.contains("unknown to the production model").all()
    assert newline["fallback_reason"].str.contains("too short for seasonal naive").all()
    # Newline's history before the as-of: 03-07 (Fri, open), 03-08 and 03-09 (weekend, closed) = 3 known days < 7,
    # so every open day gets the mean of its open days, i.e. the offered of 03-07 alone
    silver_daily = data[1]
    open_days = silver_daily.loc[(silver_daily["queue"] == "Newline") & silver_daily["is_open"]
                                 & (silver_daily["date"] < pd.Timestamp(AS_OF))]
    assert len(open_days) == 1
    expected = open_days["offered"].iloc[0]
    newline_open = newline.loc[newline["date"].dt.day_of_week < 5]
    assert np.allclose(newline_open[["p10", "p50", "p90"]].to_numpy(), expected)
    # closed days (weekends for Billing, Sunday for Support) are exactly 0
    sundays = fc.loc[fc["date"].dt.day_of_week == 6]
    assert (sundays[["p10", "p50", "p90"]].to_numpy() == 0).all()
    assert (fc["p10"] <= fc["p50"]).all() and (fc["p50"] <= fc["p90"]).all()


def test_ensemble_members_weights_sum_to_one_and_give_the_published_p50(tmp_path, data):
    path = setup_db(tmp_path, data)
    assert run(path) == 0
    fc = read(path, tables.gold_forecast_daily)
    members = read(path, tables.gold_forecast_members)
    assert set(members["queue"]) == {"Billing", "Support"}  # Newline is on the fallback: no members
    assert {"lightgbm", "linear", "same_weekday_mean", "seasonal_naive"} <= set(members["member"])
    assert np.allclose(members.groupby(["queue", "date"])["weight"].sum(), 1.0)
    combined = (members["weight"] * members["p50"].fillna(0)).groupby([members["queue"], members["date"]]).sum()
    published = fc.set_index(["queue", "date"])["p50"]
    assert np.allclose(combined, published.loc[combined.index], rtol=1e-6, atol=1e-6)


def test_intervals_sum_to_their_day_and_staffing_ranges_are_ordered(tmp_path, data):
    path = setup_db(tmp_path, data)
    assert run(path) == 0
    fc = read(path, tables.gold_forecast_daily)
    iv = read(path, tables.gold_forecast_interval)
    assert len(iv) == 3 * 14 * 48  # no DST change in 2025-03-10..23
    sums = iv.groupby([iv["queue"], iv["interval_start"].dt.normalize().rename("date")])[["p10", "p50", "p90"]].sum()
    joined = fc.set_index(["queue", "date"])[["p10", "p50", "p90"]].join(sums.add_suffix("_iv"))
    for q in ("p10", "p50", "p90"):
        assert np.allclose(joined[q], joined[f"{q}_iv"], rtol=1e-9, atol=1e-9)
    staff = read(path, tables.gold_staffing_interval)
    assert len(staff) == len(iv)
    assert (staff["agents_p10"] <= staff["agents_p50"]).all() and (staff["agents_p50"] <= staff["agents_p90"]).all()
    assert (staff["staff_p50"] >= staff["agents_p50"]).all() and staff["agents_p50"].max() > 0
    daily_staff = read(path, tables.gold_staffing_daily)
    assert len(daily_staff) == 3 * 14
    assert (daily_staff["staff_hours_p10"] <= daily_staff["staff_hours_p90"]).all()
    checks = read(path, tables.data_quality_checks)
    checks = checks.loc[checks["step"] == "3_forecast"]
    # one row per queue per check: history_recency, forecast_model, intraday_profile and the two daily guards
    assert checks.groupby("queue").size().to_dict() == {"Billing": 5, "Newline": 5, "Support": 5}
    assert (checks["severity"] == "warning").all()


def test_no_production_model_gives_seasonal_naive_for_every_queue_and_exit_0(tmp_path, data):
    path = setup_db(tmp_path, data, register=False)
    assert run(path) == 0
    fc = read(path, tables.gold_forecast_daily)
    assert set(fc["method"]) == {"seasonal_naive"} and fc["model_version"].isna().all()
    assert fc["fallback_reason"].str.contains("no production model").all()
    assert len(read(path, tables.gold_staffing_interval)) == 3 * 14 * 48


def test_a_corrupted_artifact_falls_back_with_the_hash_reason(tmp_path, data):
    path = setup_db(tmp_path, data)
    artifact = next((tmp_path / "models").glob("*/model_p50.txt"))
    artifact.write_text(artifact.read_text().replace("tree", "tree ", 1))
    assert run(path) == 0
    fc = read(path, tables.gold_forecast_daily)
    assert set(fc["method"]) == {"seasonal_naive"}
    assert fc["fallback_reason"].str.contains("model_p50.txt has sha256").all()


def test_same_as_of_twice_gives_identical_rows_and_other_origins_are_kept(tmp_path, data):
    path = setup_db(tmp_path, data)
    assert run(path) == 0
    first = {t.name: read(path, t) for t in forecast_step.GOLD_TABLES}
    assert run(path) == 0
    for t in forecast_step.GOLD_TABLES:
        again = read(path, t)
        assert again["run_id"].nunique() == 1 and set(again["run_id"]) != set(first[t.name]["run_id"])
        keys = [c.name for c in t.primary_key.columns]
        a = first[t.name].drop(columns="run_id").sort_values(keys).reset_index(drop=True)
        b = again.drop(columns="run_id").sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)
    assert run(path, AS_OF + timedelta(days=1)) == 0
    fc = read(path, tables.gold_forecast_daily)
    assert fc.groupby("forecast_origin").size().to_dict() == {pd.Timestamp(AS_OF): 42,
                                                             pd.Timestamp(AS_OF + timedelta(days=1)): 42}
    with db.make_engine(load_config(path).database_url).connect() as conn:
        runs = conn.execute(select(tables.pipeline_runs.c.status).where(
            tables.pipeline_runs.c.step == "3_forecast")).scalars().all()
    assert runs == ["success"] * 3


def test_a_saturday_shift_whose_shape_changed_keeps_the_model_and_records_the_robust_profile(tmp_path, data):
    # Support's Saturday 10-14 (8 half-hours): each day keeps its total, but until 8 weeks before the as-of the calls
    # come early in the shift (40/30/20/10% in the first four half-hours) and since then late (the mirror image). The
    # 16-week profile (a U) then correlates about 0.4 with the 8-week one (a ramp; 0.38 with equal day totals, 0.28
    # with these days'): that judges the profile, not the daily model, whose Saturday totals are as usual.
    intervals, daily, model = data
    saturday = (intervals["queue"] == "Support") & (intervals["date"].dt.day_of_week == 5) & intervals["is_open"]
    total = intervals.loc[saturday].groupby("date")["offered"].transform("sum")
    slot = ((intervals.loc[saturday, "interval_start"].dt.hour - 10) * 2
            + intervals.loc[saturday, "interval_start"].dt.minute // 30)
    early = np.array([0.4, 0.3, 0.2, 0.1, 0, 0, 0, 0])
    recent = intervals.loc[saturday, "date"] >= pd.Timestamp(AS_OF - timedelta(days=56))
    share = np.where(recent, early[::-1][slot], early[slot])
    changed = intervals.copy()
    changed.loc[saturday, "offered"] = total * share
    changed.loc[saturday, "handled"] = total * share
    path = setup_db(tmp_path, (changed, daily, model))
    assert run(path) == 0
    fc = read(path, tables.gold_forecast_daily)
    assert by_queue(fc)["Support"] == {"ensemble"}
    support = fc.loc[fc["queue"] == "Support"].set_index("date")
    saturdays = support.loc[support.index.day_of_week == 5]
    weekdays = support.loc[support.index.day_of_week < 5]
    assert (saturdays["intraday_profile"] != "same_weekday").all()
    assert saturdays["intraday_profile_reason"].str.startswith(
        "the Saturday intraday shape is noisy: the 16-week and 8-week profiles correlate 0.28 (limit 0.8); used the ").all()
    assert weekdays["intraday_profile"].eq("same_weekday").all()
    assert support.loc[support.index.day_of_week == 6, "intraday_profile"].isna().all()  # closed Sundays
    checks = read(path, tables.data_quality_checks)
    profile = checks.loc[(checks["check_name"] == "intraday_profile") & (checks["queue"] == "Support")].iloc[0]
    assert not profile["passed"] and profile["detail"].startswith("Saturday: the Saturday intraday shape is noisy")
    iv = read(path, tables.gold_forecast_interval)
    sat = iv.loc[(iv["queue"] == "Support") & (iv["interval_start"].dt.day_of_week == 5)]
    day_sum = sat.groupby(sat["interval_start"].dt.normalize())["p50"].sum()
    assert np.allclose(day_sum.to_numpy(), saturdays["p50"].to_numpy())


# --- backfills: a model trained only on data before the as-of ----------------------------------------------

BACKFILL = AS_OF - timedelta(days=14)  # 2025-02-24, a Monday; the production model was trained up to 03-08


@pytest.fixture(scope="module")
def older_model(data, tmp_path_factory):
    """A tiny model trained on Support and Billing before BACKFILL only."""
    cfg = load_config(write_config(tmp_path_factory.mktemp("cfg_old")))
    history = model_history(data[1])
    return QuantileForecaster(params=TINY).fit(history.loc[history["date"] < pd.Timestamp(BACKFILL)],
                                               closed_dates_for(cfg, FIRST, LAST))


def test_a_backfill_uses_the_model_that_was_production_then_and_the_nightly_run_uses_production(
        tmp_path, data, older_model):
    path = setup_db(tmp_path, data, register=False)
    register_model(path, older_model, "v20250217-old00001", datetime(2025, 2, 17, 1))
    register_model(path, data[2], "v20250309-test0001", datetime(2025, 3, 10, 1))  # archives the older one
    assert run(path, BACKFILL) == 0
    assert run(path, AS_OF) == 0
    fc = read(path, tables.gold_forecast_daily)
    models = fc.loc[fc["method"].isin(["lightgbm", "ensemble"])].groupby("forecast_origin")["model_version"].agg(set).to_dict()
    assert models == {pd.Timestamp(BACKFILL): {"v20250217-old00001"}, pd.Timestamp(AS_OF): {"v20250309-test0001"}}


def test_a_backfill_with_no_model_trained_before_it_gets_seasonal_naive_saying_how_to_backfill(tmp_path, data):
    path = setup_db(tmp_path, data)  # production trained on data up to 03-08, after the backfill's as-of
    assert run(path, BACKFILL) == 0
    fc = read(path, tables.gold_forecast_daily)
    assert set(fc["method"]) == {"seasonal_naive"} and fc["model_version"].isna().all()
    assert fc["fallback_reason"].str.contains(
        "no model trained before 2025-02-24 exists (production v20250309-test0001 was trained on data up to "
        "2025-03-08, so it has seen the days it would forecast); run `2_train.py --as-of 2025-02-24`",
        regex=False).all()


# --- what-ifs: --set without --publish never changes the published origin -----------------------------------

def test_overrides_that_only_say_where_things_are_do_not_make_a_what_if():
    given = ["database.url=sqlite:///x.db", "source.csv_glob=in/*.csv", "report.output_dir=out", "training.model_dir=m",
             "staffing.service_level=0.9", "training.params.n_estimators=5", "training.model_dirs=x"]
    assert what_if_overrides(given) == ["staffing.service_level=0.9", "training.params.n_estimators=5",
                                        "training.model_dirs=x"]


def runs_of(path: Path) -> pd.DataFrame:
    return read(path, tables.pipeline_runs).sort_values("started_at").reset_index(drop=True)


def test_a_what_if_run_leaves_the_published_rows_unchanged_and_writes_its_files(tmp_path, data):
    path = setup_db(tmp_path, data)
    assert run(path) == 0
    published = {t.name: read(path, t) for t in (*forecast_step.GOLD_TABLES, tables.data_quality_checks)}
    whatif = ["--config", str(path), "--as-of", AS_OF.isoformat(), "--set", "staffing.service_level=0.95"]
    assert forecast_step.main(whatif) == 0
    for name, before in published.items():
        pd.testing.assert_frame_equal(read(path, tables.metadata.tables[name]), before)
    last = runs_of(path).iloc[-1]
    assert last["status"] == "success" and last["message"].startswith("what-if (not published): origin 2025-03-10")
    assert last["overrides"] == '["staffing.service_level=0.95"]' and last["rows_written"] == 0
    folder = tmp_path / "output" / "2025-03-10" / f"whatif-{last['run_id']}"
    assert sorted(p.name for p in folder.iterdir()) == [
        "checks.csv", "forecast_daily.csv", "forecast_interval.csv", "forecast_members.csv", "overrides.json",
        "queue_patience.csv", "staffing_daily.csv", "staffing_interval.csv"]
    # the same forecast, staffed for 95% instead of 80% answered within 20 s: never fewer agents, more in total
    staffed = pd.read_csv(folder / "staffing_interval.csv")
    base = published["gold_staffing_interval"]
    assert len(staffed) == len(base) and staffed["agents_p50"].sum() > base["agents_p50"].sum()
    assert pd.read_csv(folder / "forecast_daily.csv")["p50"].sum() == pytest.approx(
        published["gold_forecast_daily"]["p50"].sum())
    record = json.loads((folder / "overrides.json").read_text())
    assert record["overrides"] == ["staffing.service_level=0.95"] and record["publish_with"].endswith("--publish")

    assert forecast_step.main([*whatif, "--publish"]) == 0
    staffing = read(path, tables.gold_staffing_interval)
    assert set(staffing["run_id"]) == {runs_of(path)["run_id"].iloc[-1]}
    assert staffing["agents_p50"].sum() == staffed["agents_p50"].sum()
    assert runs_of(path)["overrides"].iloc[-1] == '["staffing.service_level=0.95"]'
    assert pd.isna(runs_of(path)["overrides"].iloc[0])  # the run without --set


def vendor_rows(daily: pd.DataFrame) -> pd.DataFrame:
    """A vendor that issued the true daily totals 15 days ahead (known before every backtest origin) and, for the
    forecast days, 100 calls on the day before the as-of and a revision of 999 on the as-of itself (too late)."""
    known = daily.loc[daily["queue"] != "Newline", ["queue", "date", "offered"]].rename(columns={"offered": "forecast"})
    known = known.assign(issued_at=known["date"] - pd.Timedelta(days=15))
    future = pd.DataFrame([(q, pd.Timestamp(AS_OF) + pd.Timedelta(days=d)) for q in ("Support", "Billing")
                           for d in range(14)], columns=["queue", "date"])
    issued = future.assign(forecast=100.0, issued_at=pd.Timestamp(AS_OF) - pd.Timedelta(hours=3))
    revised = future.assign(forecast=999.0, issued_at=pd.Timestamp(AS_OF) + pd.Timedelta(hours=6))
    return pd.concat([known.loc[known["date"] < pd.Timestamp(AS_OF)], issued, revised], ignore_index=True)


def test_the_vendor_forecast_issued_before_the_origin_is_a_member_and_a_later_revision_is_not(tmp_path, data):
    intervals, daily, _ = data
    vendor = vendor_rows(daily)
    with_vendor = vendor.rename(columns={"queue": "series"}).loc[lambda v: v["date"] < pd.Timestamp(AS_OF)]
    cfg = load_config(write_config(tmp_path))
    model = QuantileForecaster(params=TINY, ensemble=True).fit(
        model_history(daily), closed_dates_for(cfg, FIRST, LAST), vendor=with_vendor.astype({"series": "str"}))
    assert model.adjustments_["ensemble"]["weights"]["Support"]["vendor"] > 0.5  # it knew the truth in time
    setup_db(tmp_path, (intervals, daily, model))
    path = write_config(tmp_path, forecast__vendor_table="vendor_fc")  # the same database, with the vendor table
    with db.make_engine(load_config(path).database_url).begin() as conn:
        vendor.assign(date=vendor["date"].dt.date).to_sql("vendor_fc", conn, index=False)
    assert run(path) == 0
    members = read(path, tables.gold_forecast_members)
    vendor_p50 = members.loc[(members["member"] == "vendor") & (members["p50"] > 0), "p50"]
    assert len(vendor_p50) and (vendor_p50 == 100.0).all()  # the 999 revision came after the origin
    assert members.loc[members["member"] == "vendor", "weight"].max() > 0.5


def test_a_scenario_run_writes_beside_the_published_rows_and_never_over_them(tmp_path, data, capsys):
    path = setup_db(tmp_path, data)
    assert run(path) == 0
    published = {t.name: read(path, t) for t in (*forecast_step.GOLD_TABLES, tables.data_quality_checks)}
    scenario = ["--config", str(path), "--as-of", AS_OF.isoformat(), "--scenario", "sl95",
                "--set", "staffing.service_level=0.95", "--scenario-note", "95% answered in 20 s"]
    assert forecast_step.main(scenario) == 0
    assert forecast_step.main(scenario) == 0     # a re-run replaces the scenario's rows
    for name, before in published.items():
        pd.testing.assert_frame_equal(read(path, tables.metadata.tables[name]), before)
    staffed = read(path, tables.gold_scenario_staffing_interval)
    base = published["gold_staffing_interval"]
    assert set(staffed["scenario"]) == {"sl95"} and len(staffed) == len(base)
    assert staffed["agents_p50"].sum() > base["agents_p50"].sum()
    assert read(path, tables.gold_scenario_forecast_daily)["p50"].sum() == pytest.approx(
        published["gold_forecast_daily"]["p50"].sum())
    assert len(read(path, tables.gold_scenario_staffing_daily)) == len(published["gold_staffing_daily"])
    kept = read(path, tables.gold_scenarios)
    assert kept[["scenario", "step", "overrides", "description"]].to_dict("records") == [
        {"scenario": "sl95", "step": "3_forecast", "overrides": '["staffing.service_level=0.95"]',
         "description": "95% answered in 20 s"}]

    capsys.readouterr()
    assert forecast_step.main(["--config", str(path), "--list-scenarios"]) == 0
    listed = capsys.readouterr().out
    assert "sl95" in listed and "staffing.service_level=0.95" in listed and "# 95% answered in 20 s" in listed
    assert forecast_step.main([*scenario[:4], "--scenario", "published"]) == 2
    assert forecast_step.main([*scenario, "--publish"]) == 2
    assert "a scenario never replaces the published rows" in capsys.readouterr().err
