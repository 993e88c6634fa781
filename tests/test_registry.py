"""Tests for common.registry: artifacts with sha256, promotion, rollback, verified loading."""

import json
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from common import db, model_choice, registry, training
from common.config import load_config
from common.errors import ConfigError, ModelError
from common.forecaster import QuantileForecaster
from conftest import write_config

FAST = {"n_estimators": 10, "min_data_in_leaf": 5}
HOLIDAYS = pd.DataFrame({"date": pd.to_datetime(["2024-04-01"]), "holiday_name": "x"})
T1, T2, T3 = datetime(2025, 1, 1, 2), datetime(2025, 1, 8, 2), datetime(2025, 1, 15, 2)


def history(n_days: int = 120, bump: float = 0.0) -> pd.DataFrame:
    """Two Mon-Fri series with a weekly shape; `bump` changes one value (different data)."""
    rng = np.random.default_rng(3)
    dates = pd.date_range("2024-01-01", periods=n_days, freq="D")
    parts = []
    for i, s in enumerate(("A", "B")):
        is_open = dates.day_of_week < 5
        y = np.where(is_open, rng.poisson((80 + 40 * i) * np.array([1.2, 1, 1, 0.9, 0.8, 1, 1])[dates.day_of_week]), 0)
        parts.append(pd.DataFrame({"series": s, "date": dates, "y": y.astype(float), "is_open": is_open,
                                   "is_holiday": False}))
    frame = pd.concat(parts, ignore_index=True)
    frame.loc[frame.index[-3], "y"] += bump
    return frame


@pytest.fixture(scope="module")
def model():
    return QuantileForecaster(params=FAST).fit(history(), HOLIDAYS)


@pytest.fixture
def setup(tmp_path):
    cfg = load_config(write_config(tmp_path))
    engine = db.make_engine(cfg.database_url)
    db.ensure_schema(engine)
    return cfg, engine


def register(cfg, engine, model, version: str, status: str, now: datetime) -> dict[str, str]:
    """Write `model` as `version` and save its row with `status`; return its {file: sha256}."""
    shas = registry.write_artifacts(cfg.path(cfg.training.model_dir) / version, model, {"version": version})
    entry = {"version": version, "created_at": now, "data_hash": "d" * 64, "params": {}, "metrics": {},
             "feature_importance": {}, "artifact_path": f"{cfg.training.model_dir}/{version}", "artifact_sha256": shas}
    with engine.begin() as conn:
        registry.save_version(conn, entry, status, f"test {status}", now=now)
    return shas


def statuses(engine) -> dict[str, str]:
    with engine.connect() as conn:
        frame = registry.read_registry(conn)
    return dict(zip(frame["version"], frame["status"]))


def test_artifacts_are_lightgbm_text_and_json_with_their_sha256(setup, model):
    cfg, engine = setup
    shas = register(cfg, engine, model, "v1", "production", T1)
    folder = cfg.path("models") / "v1"
    assert sorted(shas) == ["meta.json", "model_p10.txt", "model_p50.txt", "model_p90.txt", "training.json"]
    assert all(registry.file_sha256(folder / name) == sha for name, sha in shas.items())
    assert (folder / "model_p50.txt").read_text().startswith("tree")  # LightGBM's text format, not a pickle
    assert not list(cfg.path("models").glob(".tmp-*"))  # the scratch folder is gone


def test_saving_a_new_production_archives_the_old_one(setup, model):
    cfg, engine = setup
    register(cfg, engine, model, "v1", "production", T1)
    register(cfg, engine, model, "v2", "production", T2)
    assert statuses(engine) == {"v1": "archived", "v2": "production"}


def test_saving_the_same_version_again_replaces_its_row(setup, model):
    cfg, engine = setup
    register(cfg, engine, model, "v1", "production", T1)
    register(cfg, engine, model, "v1", "staging", T2)  # a re-run that would not promote keeps production
    with engine.connect() as conn:
        frame = registry.read_registry(conn)
    assert frame["version"].tolist() == ["v1"] and frame["status"].tolist() == ["production"]
    assert frame["promoted_at"].tolist() == [pd.Timestamp(T1)]


def test_promote_makes_the_version_production_and_archives_the_current_one(setup, model):
    cfg, engine = setup
    register(cfg, engine, model, "v1", "production", T1)
    register(cfg, engine, model, "v2", "staging", T2)
    with engine.begin() as conn:
        previous = registry.promote(conn, cfg, "v2", "manual", now=T3)
    assert previous == "v1"
    assert statuses(engine) == {"v1": "archived", "v2": "production"}
    with engine.connect() as conn:
        assert registry.production_row(conn)["promoted_at"] == T3


def test_promote_unknown_version_names_the_known_ones(setup, model):
    cfg, engine = setup
    register(cfg, engine, model, "v1", "production", T1)
    with engine.begin() as conn, pytest.raises(ConfigError, match="'v9': no such version.*known: v1"):
        registry.promote(conn, cfg, "v9", "manual")


def test_rollback_restores_the_previous_production_and_cannot_go_past_it(setup, model):
    cfg, engine = setup
    register(cfg, engine, model, "v1", "production", T1)
    register(cfg, engine, model, "v2", "production", T2)
    with engine.begin() as conn:
        assert registry.rollback(conn, cfg, now=T3) == ("v2", "v1")
    assert statuses(engine) == {"v1": "production", "v2": "archived"}
    # v2 was rolled away from: it is not "the previous production" of v1, so there is nothing earlier to go to
    with engine.begin() as conn, pytest.raises(ModelError, match="no earlier production model"):
        registry.rollback(conn, cfg)


def test_rollback_without_a_previous_production_is_refused(setup, model):
    cfg, engine = setup
    register(cfg, engine, model, "v1", "production", T1)
    register(cfg, engine, model, "v2", "staging", T2)  # staging was never production: not a rollback target
    with engine.begin() as conn, pytest.raises(ModelError, match="v1 is production and no earlier production"):
        registry.rollback(conn, cfg)


def test_load_production_gives_the_version_and_a_model_predicting_like_the_saved_one(setup, model):
    cfg, engine = setup
    register(cfg, engine, model, "v1", "production", T1)
    version, loaded = registry.load_production(engine, cfg)
    hist = history()
    future = pd.DataFrame({"series": ["A", "B"], "date": pd.Timestamp("2024-04-30"), "is_open": True,
                           "is_holiday": False})  # the day after the 120 days 2024-01-01..2024-04-29
    assert version == "v1"
    pd.testing.assert_frame_equal(loaded.forecast(hist, future, HOLIDAYS), model.forecast(hist, future, HOLIDAYS))


def test_a_changed_byte_in_a_model_file_is_refused_naming_the_file(setup, model):
    cfg, engine = setup
    register(cfg, engine, model, "v1", "production", T1)
    path = cfg.path("models") / "v1" / "model_p50.txt"
    data = bytearray(path.read_bytes())
    data[-2] = ord("7") if data[-2] != ord("7") else ord("8")  # one byte, the file still parses as text
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"model v1: artifact file .*model_p50\.txt has sha256 .* corrupt"):
        registry.load_production(engine, cfg)


def test_a_missing_artifact_is_refused(setup, model):
    cfg, engine = setup
    register(cfg, engine, model, "v1", "production", T1)
    (cfg.path("models") / "v1" / "meta.json").unlink()
    with pytest.raises(ModelError, match=r"artifact file .*meta\.json is missing"):
        registry.load_production(engine, cfg)


def test_promoting_a_corrupt_version_is_refused_and_production_stays(setup, model):
    cfg, engine = setup
    register(cfg, engine, model, "v1", "production", T1)
    register(cfg, engine, model, "v2", "staging", T2)
    (cfg.path("models") / "v2" / "model_p90.txt").write_text("tree\n")
    with engine.begin() as conn, pytest.raises(ModelError, match="model_p90.txt"):
        registry.promote(conn, cfg, "v2", "manual")
    assert statuses(engine) == {"v1": "production", "v2": "staging"}


def test_no_production_model_is_a_model_error(setup):
    cfg, engine = setup
    with pytest.raises(ModelError, match="no production model"):
        registry.load_production(engine, cfg)


def test_retraining_on_the_same_data_gives_the_same_bytes_and_version(tmp_path):
    def train(bump: float, folder: str):
        hist = history(bump=bump)
        m = QuantileForecaster(params=FAST).fit(hist, HOLIDAYS)
        shas = registry.write_artifacts(tmp_path / folder, m, {"params": training.model_params(m)})
        version = training.model_version(date(2024, 4, 30), training.data_hash(hist, HOLIDAYS),
                                         training.model_params(m))
        return shas, version

    shas_a, version_a = train(0.0, "a")
    shas_b, version_b = train(0.0, "b")
    shas_c, version_c = train(5.0, "c")  # one actual 5 calls higher
    assert shas_a == shas_b and version_a == version_b
    assert version_a.startswith("v20240430-") and len(version_a) == len("v20240430-") + 8
    assert version_c != version_a


def test_the_list_says_how_production_was_scored_and_reads_rows_from_before_it_was_retrained():
    def row(version: str, production: dict | None) -> dict:
        metrics = {"overall": {"candidate": {"wmape": 0.08}, "seasonal_naive": {"wmape": 0.12}}}
        if production is not None:
            metrics["production"] = {"version": "v0", **production}
        return {"version": version, "status": "staging", "created_at": T2, "promoted_at": None,
                "status_reason": "r", "metrics": json.dumps(metrics)}

    scored = {"scored": True, "overall": {"production": {"wmape": 0.1}, "candidate": {"wmape": 0.08}}}
    table = registry.format_versions(pd.DataFrame([
        row("v5", {**scored, "retrained": True, "out_of_sample": True, "same_setup": False}),
        row("v4", {**scored, "retrained": True, "out_of_sample": True, "same_setup": True}),
        row("v3", {**scored, "in_sample": True}),  # written before: production's fitted model, on days it had seen
        row("v2", {**scored, "in_sample": False}),
        row("v1", {"scored": False, "note": "production v0 is not usable"}),
        row("v0", None),
    ]))
    header, _, *lines = table.splitlines()
    start, end = header.index("prod"), header.index("reason")
    prod = {line.split()[0]: line[start:end].strip() for line in lines}
    assert prod == {"v5": "10.0% retrained", "v4": "10.0% same setup", "v3": "10.0% in-sample", "v2": "10.0% loaded",
                    "v1": "-", "v0": "-"}



def test_list_prints_the_ensemble_weights_of_production_and_the_newest_versions():
    weights = {"weights": {"Support": {"lightgbm": 0.7, "same_weekday_mean": 0.3}, "*": {"lightgbm": 1.0}},
               "points": {"Support": 56}, "origins": {"Support": 5.14}}
    rows = [{"version": v, "status": s, "created_at": T2 - pd.Timedelta(days=i), "promoted_at": None,
             "status_reason": "r", "metrics": json.dumps({"overall": {}, **({"ensemble": weights} if e else {})})}
            for i, (v, s, e) in enumerate([("v9", "staging", True), ("v8", "production", True), ("v7", "staging", False)])]
    text = registry.format_versions(pd.DataFrame(rows))
    assert "ensemble weights of v9 (staging), learnt per queue on the backtest:" in text
    assert "ensemble weights of v8 (production)" in text and "ensemble weights of v7" not in text
    assert "  Support: lightgbm 0.70, same_weekday_mean 0.30 (56 points, 5.14 effective origins)" in text
    assert "*:" not in text  # the pooled weights are for unseen queues, not a queue

# --- which model may forecast an as-of ---------------------------------------------------------------------

def registry_frame(*rows: tuple) -> pd.DataFrame:
    """(version, status, promoted_at, train_last, candidate wMAPE, naive wMAPE) -> `choose_model`'s input."""
    frame = pd.DataFrame(rows, columns=["version", "status", "promoted_at", "train_last", "cand", "naive"])
    metrics = [{} if c is None else {"overall": {"candidate": {"wmape": c}, "seasonal_naive": {"wmape": n}}}
               for c, n in zip(frame["cand"], frame["naive"])]
    return frame.drop(columns=["cand", "naive"]).assign(
        metrics=metrics, created_at=pd.Timestamp("2025-06-01"), status_reason="test",
        promoted_at=pd.to_datetime(frame["promoted_at"]), train_last=pd.to_datetime(frame["train_last"]))


def choose(frame: pd.DataFrame, as_of: str) -> model_choice.ModelChoice:
    day = date.fromisoformat(as_of)
    return model_choice.choose_model(frame, day, model_choice.day_end_utc(day, "Europe/Stockholm"))


# v0301 production 03-01..03-08, v0308 from 03-08 02:00 UTC on, v0315 (current) from 03-15.
HISTORY = registry_frame(
    ("v0301", "archived", "2025-03-01 01:00", "2025-02-28", 0.10, 0.20),
    ("v0308", "archived", "2025-03-08 01:00", "2025-03-07", 0.10, 0.20),
    ("v0315", "production", "2025-03-15 01:00", "2025-03-14", 0.10, 0.20),
)


def test_the_nightly_run_uses_production_trained_up_to_yesterday():
    choice = choose(HISTORY, "2025-03-15")
    assert (choice.version, choice.is_production) == ("v0315", True)
    assert choice.why == "production, trained on data up to 2025-03-14"


def test_a_backfill_uses_the_version_that_was_production_on_that_date():
    # on 03-10 v0308 was production (promoted 03-08, replaced 03-15), trained on data up to 03-07
    choice = choose(HISTORY, "2025-03-10")
    assert (choice.version, choice.is_production) == ("v0308", False)
    assert choice.why == "production on 2025-03-10, trained on data up to 2025-03-07"
    # on the day of a promotion (02:00 local = 01:00 UTC) the model promoted that night is the day's production
    assert choose(HISTORY, "2025-03-08").version == "v0308"


def test_a_promotion_late_in_the_local_evening_still_counts_for_that_local_day():
    # v0320 was promoted at 00:30 on 03-21 in Stockholm, 23:30 UTC on 03-20: by UTC's date it would count for 03-20
    frame = registry_frame(("v0315", "archived", "2025-03-15 01:00", "2025-03-14", 0.1, 0.2),
                           ("v0320", "production", "2025-03-20 23:30", "2025-03-19", 0.1, 0.2))
    assert choose(frame, "2025-03-20").version == "v0315"
    assert choose(frame, "2025-03-21").version == "v0320"


def test_without_a_promotion_before_the_date_the_newest_model_trained_before_it_is_used():
    # installed on 03-15 with history: v0310 was trained for 03-10 by a backfill (staging, beat naive); v0309 lost
    # to naive in its own backtest and is never used; production v0315 has seen 03-10..03-14
    frame = registry_frame(("v0303", "staging", None, "2025-03-02", 0.10, 0.20),
                           ("v0309", "staging", None, "2025-03-08", 0.25, 0.20),
                           ("v0310", "staging", None, "2025-03-07", 0.10, 0.20),
                           ("v0310w", "staging", None, "2025-03-09", 0.10, 0.20),
                           ("v0315", "production", "2025-03-15 01:00", "2025-03-14", 0.10, 0.20))
    # v0310w was a what-if (2_train.py --set without --publish): never used on its own
    frame.loc[frame["version"] == "v0310w", "status_reason"] = "what-if run with overrides x=1: not promoted; ..."
    choice = choose(frame, "2025-03-10")
    assert choice.version == "v0310" and not choice.is_production
    assert choice.why == "the newest model trained before 2025-03-10 (data up to 2025-03-07)"


def test_with_no_model_trained_before_the_date_the_reason_says_how_to_backfill():
    frame = registry_frame(("v0315", "production", "2025-03-15 01:00", "2025-03-14", 0.10, 0.20))
    choice = choose(frame, "2025-03-10")
    assert choice.version is None
    assert choice.why == ("no model trained before 2025-03-10 exists (production v0315 was trained on data up to "
                          "2025-03-14, so it has seen the days it would forecast); run `2_train.py --as-of "
                          "2025-03-10` to backfill with a model")


def test_a_registry_without_production_has_no_model_even_with_staging_versions():
    frame = registry_frame(("v0310", "staging", None, "2025-03-09", 0.30, 0.20))
    choice = choose(frame, "2025-03-10")
    assert choice.version is None and choice.why.startswith("no production model in model_registry")


def test_training_windows_come_from_training_json_else_meta_json_else_the_version_name(setup, model):
    cfg, engine = setup
    register(cfg, engine, model, "v20240501-aaaaaaaa", "staging", T1)  # training.json without a window
    register(cfg, engine, model, "v20240502-bbbbbbbb", "staging", T1)
    folder = cfg.path("models") / "v20240502-bbbbbbbb"
    (folder / "training.json").write_text('{"train_window": {"first": "2024-01-01", "last": "2024-04-30"}}')
    register(cfg, engine, model, "v20240503-cccccccc", "staging", T1)
    for name in ("training.json", "meta.json"):
        (cfg.path("models") / "v20240503-cccccccc" / name).unlink()
    with engine.connect() as conn:
        windows = model_choice.training_windows(cfg, registry.read_registry(conn)).set_index("version")
    # meta.json's train_end is the model's last training row: history() has 2024-01-01..2024-04-29, last open Mon 04-29
    assert windows.loc["v20240501-aaaaaaaa", ["train_last", "window_source"]].tolist() == [
        pd.Timestamp("2024-04-29"), "meta.json"]
    assert windows.loc["v20240502-bbbbbbbb", ["train_first", "train_last", "window_source"]].tolist() == [
        pd.Timestamp("2024-01-01"), pd.Timestamp("2024-04-30"), "training.json"]
    assert windows.loc["v20240503-cccccccc", ["train_last", "window_source"]].tolist() == [
        pd.Timestamp("2024-05-02"), "version name"]
