"""Tests for common.training (backtest, metrics, inputs) and 2_train.py end to end."""

import importlib
import json
import shutil
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from common import db, registry, tables, training
from common.config import load_config
from common.errors import ConfigError, DataError
from common.forecaster import QuantileForecaster
from conftest import write_config

FAST = {"n_estimators": 10, "min_data_in_leaf": 5}
HOLIDAYS = pd.DataFrame({"date": pd.to_datetime(["2024-04-01"]), "holiday_name": "x"})
AS_OF = "2024-10-27"  # a Sunday: the day after 300 days of silver starting 2024-01-01
train_step = importlib.import_module("2_train")


# --- origins, history, metrics -----------------------------------------------------------------------------

def test_backtest_origins_end_the_latest_horizon_on_the_last_day_and_step_back_a_week():
    # last 2024-03-31, horizon 14: latest origin 03-31 - 13 days = 03-18; then 03-11, 03-04
    origins = training.backtest_origins(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-03-31"), 3, 14, 7)
    assert origins == list(pd.to_datetime(["2024-03-04", "2024-03-11", "2024-03-18"]))


def test_backtest_origins_need_enough_history_before_the_earliest_one():
    last = pd.Timestamp("2024-03-31")  # earliest of 3 origins: 2024-03-04, which is 32 days after 2024-02-01
    assert training.backtest_origins(pd.Timestamp("2024-02-01"), last, 3, 14, 7, min_train_days=32)[0] == \
        pd.Timestamp("2024-03-04")
    with pytest.raises(training.NotEnoughHistory,
                       match="training.backtest_origins == 3 .* earliest origin 2024-03-04 has 32 days .* needs >= 33"):
        training.backtest_origins(pd.Timestamp("2024-02-01"), last, 3, 14, 7, min_train_days=33)
    assert issubclass(training.NotEnoughHistory, DataError)


def test_series_with_too_little_open_history_are_left_out():
    dates = pd.date_range("2024-01-01", periods=10, freq="D")  # Mon..Wed of the next week
    frame = pd.concat([
        pd.DataFrame({"series": "A", "date": dates, "y": 1.0, "is_open": True, "is_holiday": False}),
        pd.DataFrame({"series": "B", "date": dates, "y": 1.0, "is_open": dates.day_of_week == 0, "is_holiday": False}),
    ], ignore_index=True)
    kept, left_out = training.split_by_history(frame, min_open_days=5)
    assert kept["series"].unique().tolist() == ["A"]
    assert left_out.to_dict("records") == [{"series": "B", "open_days": 2}]  # Mondays 01-01 and 01-08


def test_accuracy_summary_adds_pinball_loss_per_quantile():
    frame = pd.DataFrame({"method": "candidate", "origin": pd.Timestamp("2024-01-01"), "series": "A",
                          "date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-06"]), "horizon_day": [1, 2, 6],
                          "y": [10.0, 20.0, 0.0], "p10": [8.0, 25.0, 0.0], "p50": [10.0, 18.0, 0.0],
                          "p90": [12.0, 30.0, 0.0]})
    row = training.accuracy_summary(frame, ["method"]).iloc[0]
    # open days only (y > 0). p10: y-p = 2 -> 0.1*2 = 0.2; -5 -> 0.9*5 = 4.5; mean 2.35
    # p50: 0 and 2 -> 0, 1; mean 0.5. p90: -2 -> 0.1*2 = 0.2; -10 -> 0.1*10 = 1.0; mean 0.6
    assert row["pinball_p10"] == pytest.approx(2.35)
    assert row["pinball_p50"] == pytest.approx(0.5)
    assert row["pinball_p90"] == pytest.approx(0.6)
    assert row["wmape"] == pytest.approx(2 / 30) and row["coverage"] == pytest.approx(0.5) and row["n_points"] == 2


def test_data_hash_is_stable_and_sees_one_changed_value():
    frame = pd.DataFrame({"series": ["A", "A"], "date": pd.to_datetime(["2024-01-01", "2024-01-02"]),
                          "y": [1.0, 2.0], "is_open": [True, True]})
    assert training.data_hash(frame) == training.data_hash(frame.copy())
    assert training.data_hash(frame) != training.data_hash(frame.assign(y=[1.0, 2.5]))
    assert training.data_hash(frame) != training.data_hash(frame, HOLIDAYS)


def synthetic(n_days: int, series=("A", "B"), seed: int = 0) -> pd.DataFrame:
    """Mon-Fri series with a weekly shape and Poisson noise; weekends closed (y=0)."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=n_days, freq="D")
    parts = []
    for i, s in enumerate(series):
        is_open = dates.day_of_week < 5
        mean = (200 + 150 * i) * np.array([1.3, 1.1, 1.0, 0.95, 0.8, 1, 1])[dates.day_of_week]
        y = np.where(is_open, rng.poisson(mean), 0).astype(float)
        parts.append(pd.DataFrame({"series": s, "date": dates, "y": y, "is_open": is_open, "is_holiday": False}))
    return pd.concat(parts, ignore_index=True)


def quick(**kwargs) -> QuantileForecaster:
    """A fast unfitted forecaster: few trees, no band calibration (its inner backtest would fit 8 more models)."""
    return QuantileForecaster(**{"params": FAST, "calibration_origins": 0, "calibrate": False, **kwargs})


def fits_logged(caplog) -> int:
    return sum(r.name == "common.forecaster" and r.getMessage().startswith("fit: ") for r in caplog.records)


def test_production_setup_is_retrained_before_every_origin_and_scored_on_the_candidates_points(caplog):
    hist = synthetic(140)  # 2024-01-01 .. 2024-05-19
    # production was fitted on every day, the backtest days included: only its setup (the raw target) is used
    fitted = quick(target="raw").fit(hist, HOLIDAYS)
    setup = training.production_setup("v0", fitted, quick(), None)
    assert setup.changes == {"target": ["raw", "ratio"]} and not setup.same_as_candidate
    origins = training.backtest_origins(hist["date"].min(), hist["date"].max(), 2, 14, 7)  # 04-29, 05-06
    caplog.clear()  # only the backtest's fits: an earlier test may have left the root logger at INFO
    with caplog.at_level("INFO", logger="common.forecaster"):
        result = training.rolling_backtest(hist, HOLIDAYS, quick, origins, 14, production=setup)
    frame = result.frame
    assert frame.groupby("method").size().to_dict() == {"candidate": 2 * 2 * 14, "production": 2 * 2 * 14,
                                                        "seasonal_naive": 2 * 2 * 14}
    points = ["origin", "series", "date"]
    by_method = {m: g.loc[:, [*points, "y"]].reset_index(drop=True) for m, g in frame.groupby("method")}
    pd.testing.assert_frame_equal(by_method["production"], by_method["candidate"])  # the same points and actuals
    assert fits_logged(caplog) == 4  # candidate and production, at each of the 2 origins
    # out of sample: each model forecasting origin O was trained on days before O (the last open day before it)
    assert result.models.to_dict("records") == [
        {"method": "candidate", "origin": origins[0], "train_end": "2024-04-26"},
        {"method": "candidate", "origin": origins[1], "train_end": "2024-05-03"},
        {"method": "production", "origin": origins[0], "train_end": "2024-04-26"},
        {"method": "production", "origin": origins[1], "train_end": "2024-05-03"}]
    assert not np.allclose(frame.loc[frame["method"] == "production", "p50"],
                           frame.loc[frame["method"] == "candidate", "p50"])  # another setup, other forecasts


def test_without_retraining_per_origin_both_setups_train_once_before_the_earliest_origin():
    hist = synthetic(140)
    setup = training.production_setup("v0", quick(target="raw").fit(hist, HOLIDAYS), quick(), None)
    origins = training.backtest_origins(hist["date"].min(), hist["date"].max(), 2, 14, 7)
    result = training.rolling_backtest(hist, HOLIDAYS, quick, origins, 14, retrain=False, production=setup)
    assert result.models["train_end"].tolist() == ["2024-04-26"] * 4  # the Friday before 2024-04-29


def test_an_identical_production_setup_reuses_the_candidates_forecasts_without_fitting_again(caplog):
    hist = synthetic(140)
    fitted = quick(num_threads=2).fit(hist, HOLIDAYS)  # threads are speed, not setup
    setup = training.production_setup("v0", fitted, quick(), None)
    assert setup.same_as_candidate and setup.init_params["num_threads"] == 1
    origins = training.backtest_origins(hist["date"].min(), hist["date"].max(), 2, 14, 7)
    caplog.clear()  # only the backtest's fits: an earlier test may have left the root logger at INFO
    with caplog.at_level("INFO", logger="common.forecaster"):
        result = training.rolling_backtest(hist, HOLIDAYS, quick, origins, 14, production=setup)
    assert fits_logged(caplog) == 2  # the candidate's two; production's rows are the candidate's
    rows = {m: g.drop(columns="method").reset_index(drop=True) for m, g in result.frame.groupby("method")}
    pd.testing.assert_frame_equal(rows["production"], rows["candidate"])
    trained = result.models.set_index("method")
    assert trained.loc["production", "train_end"].tolist() == ["2024-04-26", "2024-05-03"]


def test_a_production_setup_that_cannot_be_trained_is_reported_not_fatal():
    hist = synthetic(140)
    # After the 28-day warm-up, all 140 days give 2 queues x 80 open days = 160 training rows >= min_data_in_leaf 150;
    # before the origin 2024-05-06 there are 2 x 70 = 140 < 150: production's setup cannot be trained there.
    fitted = quick(params={**FAST, "min_data_in_leaf": 150}).fit(hist, HOLIDAYS)
    setup = training.production_setup("v0", fitted, quick(), None)
    origins = training.backtest_origins(hist["date"].min(), hist["date"].max(), 1, 14, 7)
    result = training.rolling_backtest(hist, HOLIDAYS, quick, origins, 14, production=setup)
    assert "production v0's setup could not be backtested: history too short to train" in result.production_error
    assert set(result.frame["method"]) == {"candidate", "seasonal_naive"}
    assert set(result.models["method"]) == {"candidate"}


def test_a_production_setup_whose_driver_is_gone_cannot_be_rebuilt_and_a_new_driver_is_a_setup_change():
    hist = synthetic(140)
    days = hist["date"].drop_duplicates()
    exog = pd.DataFrame({"date": days, "campaign": (days.dt.day == 1).astype(float), "mailing": 0.0})
    fitted = quick().fit(hist, HOLIDAYS, exogenous=exog.drop(columns="mailing"))  # drivers: campaign
    with pytest.raises(DataError, match=r"production v0 was trained with the drivers \['campaign'\], which the "
                                        r"exogenous table \(training.exogenous_table\) no longer has"):
        training.production_setup("v0", fitted, quick(), exog.drop(columns="campaign"))
    setup = training.production_setup("v0", fitted, quick(), exog)
    assert setup.exogenous_columns == ("campaign",)
    assert setup.changes == {"exogenous_columns": [["campaign"], ["campaign", "mailing"]]}


# --- reading inputs ----------------------------------------------------------------------------------------

@pytest.fixture
def engine(tmp_path):
    cfg = load_config(write_config(tmp_path))
    eng = db.make_engine(cfg.database_url)
    db.ensure_schema(eng)
    return eng


def silver_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """silver_daily rows for a history frame (queue = series)."""
    return pd.DataFrame({"queue": frame["series"], "date": frame["date"], "offered": frame["y"],
                         "offered_outside_hours": 0.0, "is_open": frame["is_open"], "is_holiday": frame["is_holiday"]})


def test_read_daily_history_gives_only_days_before_the_as_of(engine):
    with engine.begin() as conn:
        db.insert_frame(conn, tables.silver_daily, silver_rows(synthetic(5)))
        out = training.read_daily_history(conn, date(2024, 1, 4))
    assert list(out.columns) == ["series", "date", "y", "is_open", "is_holiday"]
    assert out["date"].max() == pd.Timestamp("2024-01-03") and len(out) == 2 * 3


def test_read_exogenous_checks_the_name_and_reads_the_table_by_reflection(engine):
    with pytest.raises(ConfigError, match="training.exogenous_table: 'drivers; drop' is not a plain SQL identifier"):
        with engine.connect() as conn:
            training.read_exogenous(conn, "drivers; drop", date(2024, 1, 3))
    with engine.connect() as conn, pytest.raises(ConfigError, match="'drivers' does not exist"):
        training.read_exogenous(conn, "drivers", date(2024, 1, 3))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE drivers (date DATE, queue VARCHAR(20), campaign FLOAT)"))
        conn.execute(text("INSERT INTO drivers VALUES ('2024-01-02', 'A', 1.5), ('2024-01-01', 'A', 0), "
                          "('2024-01-03', 'A', 9)"))
        out = training.read_exogenous(conn, "drivers", date(2024, 1, 3))
    assert out.to_dict("list") == {"date": list(pd.to_datetime(["2024-01-01", "2024-01-02"])),
                                   "series": ["A", "A"], "campaign": [0.0, 1.5]}


# --- 2_train.py end to end ---------------------------------------------------------------------------------

def run(config, *args: str) -> int:
    return train_step.main(["--config", str(config), "--log-level", "WARNING", *args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A workspace with ~300 days of silver for 2 queues, after one training run at AS_OF."""
    folder = tmp_path_factory.mktemp("trained")
    config = write_config(folder, training__params={"n_estimators": 30})
    cfg = load_config(config)
    eng = db.make_engine(cfg.database_url)
    db.ensure_schema(eng)
    with eng.begin() as conn:
        db.insert_frame(conn, tables.silver_daily, silver_rows(synthetic(300, series=("sales", "support"), seed=1)))
    eng.dispose()
    assert run(config, "--as-of", AS_OF) == 0
    return folder


@pytest.fixture
def workspace(trained, tmp_path):
    """A private copy of the trained workspace, for tests that change it."""
    shutil.copytree(trained, tmp_path / "w")
    return tmp_path / "w" / "config.yaml"


def registry_rows(config) -> pd.DataFrame:
    eng = db.make_engine(load_config(config).database_url)
    with eng.connect() as conn:
        out = registry.read_registry(conn)
    eng.dispose()
    return out


def test_first_training_run_registers_a_production_model_that_beats_naive(trained):
    rows = registry_rows(trained / "config.yaml")
    assert len(rows) == 1 and rows["status"].iloc[0] == "production"
    assert "beats seasonal naive" in rows["status_reason"].iloc[0] and "no production model" in rows["status_reason"].iloc[0]
    metrics = json.loads(rows["metrics"].iloc[0])
    assert set(metrics["overall"]) == {"candidate", "seasonal_naive"}
    assert {"wmape", "mae", "rmse", "bias", "total_volume_error", "pinball_p10", "pinball_p50", "pinball_p90",
            "coverage"} <= set(metrics["overall"]["candidate"])
    assert set(metrics["per_series"]["candidate"]) == {"sales", "support"}
    assert sorted(map(int, metrics["per_horizon_day"]["candidate"])) == list(range(1, 15))
    assert metrics["backtest"]["origins"] == ["2024-09-22", "2024-09-29", "2024-10-06", "2024-10-13"]
    version = rows["version"].iloc[0]
    assert version.startswith("v20241027-")
    shas = json.loads(rows["artifact_sha256"].iloc[0])
    assert all(registry.file_sha256(trained / "models" / version / n) == s for n, s in shas.items())


def track_record_rows(config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """gold_forecast_accuracy and gold_forecast_accuracy_summary rows, without run_id, in a stable order."""
    eng = db.make_engine(load_config(config).database_url)
    with eng.connect() as conn:
        acc = db.read_table(conn, tables.gold_forecast_accuracy).drop(columns="run_id")
        summary = db.read_table(conn, tables.gold_forecast_accuracy_summary).drop(columns="run_id")
    eng.dispose()
    return (acc.sort_values(["forecast_origin", "queue", "date", "method"]).reset_index(drop=True),
            summary.sort_values(["as_of", "scope", "scope_value", "method"]).reset_index(drop=True))


def test_first_training_run_publishes_its_point_in_time_backtest_as_a_track_record(trained):
    acc, summary = track_record_rows(trained / "config.yaml")
    metrics = json.loads(registry_rows(trained / "config.yaml")["metrics"].iloc[0])
    assert set(acc["method"]) == {"backtest_lightgbm", "backtest_naive"}
    # the backtest's four origins, each forecasting the 14 days from it, all before the as-of
    origins = sorted(acc["forecast_origin"].dt.strftime("%Y-%m-%d").unique())
    assert origins == metrics["backtest"]["origins"]
    assert ((acc["date"] >= acc["forecast_origin"]) & (acc["date"] < acc["forecast_origin"] + pd.Timedelta(days=14))
            & (acc["date"] < pd.Timestamp(AS_OF))).all()
    assert acc["model_version"].isna().all()  # retrained per origin: no registered version made these points
    # its summary for the as-of is the backtest step 2 logs and registers: the same wMAPE, vs naive
    overall = summary.loc[(summary["scope"] == "overall")].set_index("method")
    assert (summary["as_of"] == pd.Timestamp(AS_OF)).all()
    assert overall.loc["backtest_lightgbm", "wmape"] == pytest.approx(metrics["overall"]["candidate"]["wmape"],
                                                                              abs=1e-6)  # registered: 6 decimals
    assert overall.loc["backtest_lightgbm", "wmape_naive"] == pytest.approx(
        metrics["overall"]["seasonal_naive"]["wmape"], abs=1e-6)


def test_rerunning_the_same_as_of_reproduces_the_version_and_bytes(workspace):
    before = registry_rows(workspace)
    published = track_record_rows(workspace)
    assert run(workspace, "--as-of", AS_OF) == 0
    after = registry_rows(workspace)
    for old, new in zip(published, track_record_rows(workspace)):  # the same track record, not a second copy
        pd.testing.assert_frame_equal(old, new)
    assert after["version"].tolist() == before["version"].tolist()
    assert after["artifact_sha256"].tolist() == before["artifact_sha256"].tolist()
    assert after["status"].tolist() == ["production"]


def test_list_prints_a_table_of_versions(trained, capsys):
    version = registry_rows(trained / "config.yaml")["version"].iloc[0]
    assert run(trained / "config.yaml", "--list") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["version", "status", "created", "(UTC)"]
    assert out[2].split()[:2] == [version, "production"]


def test_rollback_without_a_previous_production_fails_with_a_clear_error(workspace, capsys):
    assert run(workspace, "--rollback") == 1
    assert "no earlier production model exists to go back to" in capsys.readouterr().err


def test_an_older_candidate_stays_staging_then_promote_and_rollback_by_hand(workspace, capsys):
    first = registry_rows(workspace)["version"].iloc[0]
    published = track_record_rows(workspace)
    # a week earlier: production's own setup on older data, which scores the same out of sample: nothing to gain
    assert run(workspace, "--as-of", "2024-10-20") == 0
    for old, new in zip(published, track_record_rows(workspace)):  # a backfill keeps the newer track record
        pd.testing.assert_frame_equal(old, new)
    rows = registry_rows(workspace).set_index("version")
    second = next(v for v in rows.index if v != first)
    assert rows.loc[second, "status"] == "staging"
    assert rows.loc[second, "status_reason"].endswith("identical by construction, and trained on older data: "
                                                      "nothing to gain")
    assert run(workspace, "--promote", second) == 0
    assert registry_rows(workspace).set_index("version")["status"].to_dict() == {first: "archived", second: "production"}
    assert run(workspace, "--rollback") == 0
    assert registry_rows(workspace).set_index("version")["status"].to_dict() == {first: "production", second: "archived"}


def test_a_night_outside_retrain_weekdays_is_skipped(workspace):
    before = registry_rows(workspace)
    assert run(workspace, "--as-of", AS_OF, "--set", "training.retrain_weekdays=[mon, wed]") == 0
    eng = db.make_engine(load_config(workspace).database_url)
    with eng.connect() as conn:
        last = db.read_table(conn, tables.pipeline_runs).sort_values("started_at").iloc[-1]
    eng.dispose()
    assert last["status"] == "skipped" and "is a sun" in last["message"] and "--force" in last["message"]
    pd.testing.assert_frame_equal(registry_rows(workspace), before)


def test_series_by_queue_segment_is_refused_for_now(workspace, capsys):
    assert run(workspace, "--as-of", AS_OF, "--set", "series.by=queue_segment") == 2
    assert "series.by == 'queue_segment' is not supported yet" in capsys.readouterr().err


def test_too_little_history_skips_training_instead_of_failing_the_night(tmp_path):
    config = write_config(tmp_path)
    eng = db.make_engine(load_config(config).database_url)
    db.ensure_schema(eng)
    with eng.begin() as conn:  # 40 days from Mon 2024-01-01: 5 weeks x 5 + Mon..Fri = 30 open days < 56
        db.insert_frame(conn, tables.silver_daily, silver_rows(synthetic(40)))
    eng.dispose()
    assert run(config, "--as-of", "2024-02-10") == 0
    assert registry_rows(config).empty
    eng = db.make_engine(load_config(config).database_url)
    with eng.connect() as conn:
        last = db.read_table(conn, tables.pipeline_runs).iloc[-1]
    eng.dispose()
    assert last["status"] == "skipped"
    assert "no queue has >= training.min_history_days == 56 open days before 2024-02-10 (most: 30)" in last["message"]


# --- promotion judged out of sample: production's setup retrained per origin -------------------------------

SOUND = {"n_estimators": 20, "learning_rate": 0.3}
# Memorises the days it was trained on (in-sample wMAPE about 1%) and forecasts new days worse than SOUND (about 6%
# vs 5% out of sample): a fitted OVERFIT production scored on backtest days it has seen would always win.
OVERFIT = {"n_estimators": 60, "num_leaves": 127, "min_data_in_leaf": 1, "learning_rate": 1.0, "lambda_l2": 0}
UNDERFIT = {"n_estimators": 30}  # too few trees at the default learning rate: between SOUND and seasonal naive
WEEK_BEFORE = "2024-10-20"  # production's night; the candidate's (AS_OF) is a week later, with a week more data


def with_params(params: dict) -> tuple[str, str, str]:
    # a nightly setup given on the command line: --publish, else a run with --set is a what-if and never promoted
    return "--set", f"training.params={json.dumps(params)}", "--publish"  # JSON is YAML


@pytest.fixture(scope="module")
def silver_only(tmp_path_factory):
    """300 days of silver for 2 queues and no model; 2 backtest origins and no band calibration, to stay fast."""
    folder = tmp_path_factory.mktemp("silver")
    config = write_config(folder, training__backtest_origins=2, training__calibration_origins=0)
    eng = db.make_engine(load_config(config).database_url)
    db.ensure_schema(eng)
    with eng.begin() as conn:
        db.insert_frame(conn, tables.silver_daily, silver_rows(synthetic(300, series=("sales", "support"), seed=1)))
    eng.dispose()
    return folder


def night_one(silver_only, tmp_path, params: dict) -> tuple:
    """A copy of `silver_only` after production's night (WEEK_BEFORE, `params`, promoted by hand when it did not
    beat seasonal naive): (config, production's version)."""
    shutil.copytree(silver_only, tmp_path / "w")
    config = tmp_path / "w" / "config.yaml"
    assert run(config, "--as-of", WEEK_BEFORE, *with_params(params)) == 0
    version = registry_rows(config)["version"].iloc[0]
    assert run(config, "--promote", version) == 0
    assert registry_rows(config)["status"].tolist() == ["production"]
    return config, version


def candidate_row(config) -> tuple[pd.Series, dict]:
    """The newest registry row and its metrics["production"] section."""
    row = registry_rows(config).iloc[0]
    assert row["version"].startswith("v20241027-")
    return row, json.loads(row["metrics"])["production"]


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def test_a_setup_change_that_wins_out_of_sample_is_promoted_automatically(silver_only, tmp_path, capsys):
    config, production = night_one(silver_only, tmp_path, OVERFIT)
    assert run(config, "--as-of", AS_OF, *with_params(SOUND)) == 0
    row, section = candidate_row(config)
    assert registry_rows(config).set_index("version")["status"].to_dict() == {row["version"]: "production",
                                                                               production: "archived"}
    assert section["version"] == production and section["scored"] and section["retrained"]
    assert section["out_of_sample"] and not section["same_setup"] and list(section["setup_changes"]) == ["params"]
    # never in-sample: production's setup forecast each origin from a model trained on the days before it
    assert section["origins"] == ["2024-10-06", "2024-10-13"]
    assert section["train_ends"] == {"2024-10-06": "2024-10-04", "2024-10-13": "2024-10-11"}  # the Fridays before
    cand, prod = (section["overall"][m]["wmape"] for m in ("candidate", "production"))
    assert cand < prod * (1 - 0.02)
    assert section["margin"] == 0.02 and section["decision"]["status"] == "production"
    assert (f"candidate wMAPE {pct(cand)} vs production {production}'s setup (changed: params) {pct(prod)}, each "
            "retrained per origin on the same out-of-sample points") in row["status_reason"]
    assert run(config, "--list") == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert f"{pct(prod)} retrained" in listed[row["version"]]


@pytest.fixture(scope="module")
def sound_production(silver_only, tmp_path_factory):
    """A copy of `silver_only` after a SOUND production night (WEEK_BEFORE): (folder, production's version)."""
    config, version = night_one(silver_only, tmp_path_factory.mktemp("sound"), SOUND)
    return config.parent, version


def test_a_setup_change_that_loses_out_of_sample_stays_staging_naming_both_wmapes(sound_production, tmp_path):
    shutil.copytree(sound_production[0], tmp_path / "w")
    config, production = tmp_path / "w" / "config.yaml", sound_production[1]
    assert run(config, "--as-of", AS_OF, *with_params(UNDERFIT)) == 0
    row, section = candidate_row(config)
    assert row["status"] == "staging"
    assert section["scored"] and section["out_of_sample"] and section["decision"]["status"] == "staging"
    cand, prod = (section["overall"][m]["wmape"] for m in ("candidate", "production"))
    assert cand > prod
    assert row["status_reason"] == (
        f"candidate wMAPE {pct(cand)} vs production {production}'s setup (changed: params) {pct(prod)}, each retrained "
        f"per origin on the same out-of-sample points: {pct(cand / prod - 1)} worse, needs more than 2.0% "
        "(training.promotion_margin)")


def test_a_same_setup_refresh_on_newer_data_is_promoted_and_says_the_comparison_is_identical(sound_production,
                                                                                             tmp_path):
    shutil.copytree(sound_production[0], tmp_path / "w")
    config, production = tmp_path / "w" / "config.yaml", sound_production[1]
    assert run(config, "--as-of", AS_OF, *with_params(SOUND)) == 0
    row, section = candidate_row(config)
    assert row["status"] == "production"
    assert section["same_setup"] and section["setup_changes"] == {} and section["out_of_sample"]
    cand, prod = (section["overall"][m]["wmape"] for m in ("candidate", "production"))
    assert cand == prod
    assert row["status_reason"].endswith(f"; a refresh of production {production}'s setup: retrained per origin it "
                                         f"scores the same out-of-sample {pct(prod)}, identical by construction")


def test_a_what_if_training_run_with_overrides_is_never_promoted_unless_published(workspace):
    # with no production model, a candidate that beats naive is promoted; unless the run is a what-if
    eng = db.make_engine(load_config(workspace).database_url)
    with eng.begin() as conn:
        conn.execute(tables.model_registry.delete())
        conn.execute(tables.gold_forecast_accuracy.delete())
        conn.execute(tables.gold_forecast_accuracy_summary.delete())
    whatif = ["--as-of", AS_OF, "--set", "staffing.service_level=0.9"]
    assert run(workspace, *whatif) == 0
    rows = registry_rows(workspace)
    assert rows["status"].tolist() == ["staging"]
    assert all(t.empty for t in track_record_rows(workspace))  # a what-if publishes no track record
    assert rows["status_reason"].iloc[0].startswith(
        "what-if run with overrides staffing.service_level=0.9: not promoted; use --publish (the promotion rule said "
        "production: candidate wMAPE ")
    with eng.connect() as conn:
        last = db.read_table(conn, tables.pipeline_runs).sort_values("started_at").iloc[-1]
    eng.dispose()
    assert json.loads(last["overrides"]) == ["staffing.service_level=0.9"]
    assert run(workspace, *whatif, "--publish") == 0
    assert registry_rows(workspace)["status"].tolist() == ["production"]
    assert set(track_record_rows(workspace)[0]["method"]) == {"backtest_lightgbm", "backtest_naive"}
