"""Tests for common.training (backtest, metrics, promotion rule, inputs) and 2_train.py end to end."""

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


# --- promotion rule ----------------------------------------------------------------------------------------

def test_candidate_beating_production_by_the_margin_is_promoted():
    # 0.080 < 0.100 * (1 - 0.02) = 0.098, and 0.085 < naive 0.120
    scores = training.Scores(candidate=0.085, naive=0.120, production=0.100, candidate_on_production=0.080,
                             production_version="v1")
    decision = training.decide_promotion(scores, margin=0.02)
    assert decision.status == "production"
    assert "20.0% better" in decision.reason  # 1 - 0.080 / 0.100


def test_candidate_better_but_not_by_the_margin_stays_staging_with_the_reason():
    # 0.099 >= 0.098: 1.0% better, the margin asks for more than 2.0%
    scores = training.Scores(candidate=0.095, naive=0.120, production=0.100, candidate_on_production=0.099,
                             production_version="v1")
    decision = training.decide_promotion(scores, margin=0.02)
    assert decision.status == "staging"
    assert "1.0% better, needs more than 2.0% (training.promotion_margin)" in decision.reason


def test_candidate_worse_than_seasonal_naive_stays_staging_even_without_production():
    decision = training.decide_promotion(training.Scores(candidate=0.13, naive=0.12), margin=0.02)
    assert decision == training.Decision("staging", "candidate wMAPE 13.0% does not beat seasonal naive 12.0%")


def test_candidate_worse_than_naive_stays_staging_even_if_it_beats_production():
    scores = training.Scores(candidate=0.13, naive=0.12, production=0.20, candidate_on_production=0.13,
                             production_version="v1")
    assert training.decide_promotion(scores, margin=0.02).status == "staging"


def test_without_production_beating_naive_is_enough():
    decision = training.decide_promotion(training.Scores(candidate=0.08, naive=0.10), margin=0.02)
    assert decision.status == "production" and decision.reason.endswith("no production model")


def test_an_unusable_production_does_not_block_a_candidate_that_beats_naive():
    scores = training.Scores(candidate=0.08, naive=0.10, production_note="production v1 is not usable: missing file")
    decision = training.decide_promotion(scores, margin=0.02)
    assert decision.status == "production" and "not usable" in decision.reason


def test_a_candidate_without_scored_points_is_never_promoted():
    assert training.decide_promotion(training.Scores(float("nan"), 0.1), 0.02).status == "staging"


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


def test_production_is_scored_out_of_sample_when_some_origins_are_after_its_training():
    origins = list(pd.to_datetime(["2024-03-04", "2024-03-11", "2024-03-18"]))
    assert training.production_origins(origins, "2024-03-08") == (origins[1:], False)
    assert training.production_origins(origins, "2024-03-20") == (origins, True)  # seen every origin: flagged


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


def test_rolling_backtest_scores_every_method_on_the_same_grid_and_production_only_on_its_origins():
    hist = synthetic(140)  # 2024-01-01 .. 2024-05-19
    make = lambda: QuantileForecaster(params=FAST)  # noqa: E731
    production = make().fit(hist.loc[hist["date"] < "2024-04-22"], HOLIDAYS)
    origins = training.backtest_origins(hist["date"].min(), hist["date"].max(), 2, 14, 7)  # 04-29, 05-06
    spec = training.ProductionModel("v0", production, (origins[1],))
    result = training.rolling_backtest(hist, HOLIDAYS, make, origins, 14, retrain=False, production=spec)
    counts = result.frame.groupby("method").size().to_dict()
    assert counts == {"candidate": 2 * 2 * 14, "seasonal_naive": 2 * 2 * 14, "production": 2 * 14}
    assert result.frame.loc[result.frame["method"] == "production", "origin"].unique().tolist() == [origins[1]]
    assert result.production_error is None
    assert result.frame["y"].notna().all()


def test_a_production_model_that_cannot_forecast_is_reported_not_fatal():
    hist = synthetic(140)
    exog = pd.DataFrame({"date": hist["date"].drop_duplicates(), "campaign": 0.0})
    production = QuantileForecaster(params=FAST).fit(hist, HOLIDAYS, exogenous=exog)  # needs `campaign`
    origins = training.backtest_origins(hist["date"].min(), hist["date"].max(), 1, 14, 7)
    result = training.rolling_backtest(hist, HOLIDAYS, lambda: QuantileForecaster(params=FAST), origins, 14,
                                       production=training.ProductionModel("v0", production, tuple(origins)))
    assert "production v0 could not forecast the backtest" in result.production_error
    assert set(result.frame["method"]) == {"candidate", "seasonal_naive"}


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


def test_rerunning_the_same_as_of_reproduces_the_version_and_bytes(workspace):
    before = registry_rows(workspace)
    assert run(workspace, "--as-of", AS_OF) == 0
    after = registry_rows(workspace)
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
    # a week earlier: the production model has seen those backtest days (in-sample), so this one cannot beat it
    assert run(workspace, "--as-of", "2024-10-20") == 0
    rows = registry_rows(workspace).set_index("version")
    second = next(v for v in rows.index if v != first)
    assert rows.loc[second, "status"] == "staging"
    assert "it has seen those days" in rows.loc[second, "status_reason"]
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


def test_is_refresh_refresh_is_promoted_when_production_could_only_be_scored_in_sample():
    # Production trained after the origins looks better than it is (it has seen those days); a candidate with the same
    # parameters and features on newer data is a refresh: promoted when it beats naive, even short of the margin.
    scores = training.Scores(candidate=0.095, naive=0.120, production=0.090, candidate_on_production=0.095,
                             production_version="v1", production_in_sample=True, is_refresh=True)
    decision = training.decide_promotion(scores, margin=0.02)
    assert decision.status == "production" and "refresh" in decision.reason


def test_a_different_setup_scored_against_in_sample_production_stays_staging():
    scores = training.Scores(candidate=0.095, naive=0.120, production=0.090, candidate_on_production=0.095,
                             production_version="v1", production_in_sample=True, is_refresh=False)
    assert training.decide_promotion(scores, margin=0.02).status == "staging"


def test_a_what_if_training_run_with_overrides_is_never_promoted_unless_published(workspace):
    # with no production model, a candidate that beats naive is promoted; unless the run is a what-if
    eng = db.make_engine(load_config(workspace).database_url)
    with eng.begin() as conn:
        conn.execute(tables.model_registry.delete())
    whatif = ["--as-of", AS_OF, "--set", "staffing.service_level=0.9"]
    assert run(workspace, *whatif) == 0
    rows = registry_rows(workspace)
    assert rows["status"].tolist() == ["staging"]
    assert rows["status_reason"].iloc[0].startswith(
        "what-if run with overrides staffing.service_level=0.9: not promoted; use --publish (the promotion rule said "
        "production: candidate wMAPE ")
    with eng.connect() as conn:
        last = db.read_table(conn, tables.pipeline_runs).sort_values("started_at").iloc[-1]
    eng.dispose()
    assert json.loads(last["overrides"]) == ["staffing.service_level=0.9"]
    assert run(workspace, *whatif, "--publish") == 0
    assert registry_rows(workspace)["status"].tolist() == ["production"]
