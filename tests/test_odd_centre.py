"""End to end on a generated centre unlike the demo (bench/odd_centre.py): a 5-hour Saturday-evening shift, a 24/7
line with empty nights, a noisy small queue, half-day holiday eves. The pipeline's own judgment must not get in the
way: step 1 loads it without a halt, and step 3 publishes the model for every queue (no fallback), each open day
saying which intraday profile split it."""

from __future__ import annotations

import importlib
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from common import db, tables
from common.config import load_config
from tests.conftest import bench_script

REPO = Path(__file__).resolve().parents[1]
END = date(2025, 1, 26)           # a Sunday; the export's last day (holiday eves 2024-12-24 and 12-31 inside it)
DAYS = 182


def _odd_centre():
    return bench_script("odd_centre.py")


def _step(name: str, config: Path, as_of: date, *extra: str) -> int:
    return importlib.import_module(name).main(["--config", str(config), "--as-of", str(as_of), *extra])


@pytest.fixture(scope="module")
def centre(tmp_path_factory) -> tuple[Path, date]:
    folder = tmp_path_factory.mktemp("odd_centre")
    _odd_centre().write_export(END - timedelta(days=DAYS - 1), END, folder / "inbox" / "odd_centre.csv")
    cfg = yaml.safe_load((REPO / "bench" / "configs" / "odd_centre.yaml").read_text())
    cfg["database"]["url"] = "sqlite:///wfm.db"
    cfg["source"]["csv_glob"] = "inbox/*.csv"
    cfg["training"] = {"model_dir": "models", "backtest_origins": 2, "calibration_origins": 4}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    as_of = END + timedelta(days=1)
    for step in ("0_load_bronze", "1_build_silver", "2_train", "3_forecast"):
        assert _step(step, path, as_of) == 0, step
    return path, as_of


def _read(path: Path, table) -> pd.DataFrame:
    with db.make_engine(load_config(path).database_url).connect() as conn:
        return db.read_table(conn, table)


def test_half_day_eves_empty_nights_and_a_small_queue_load_without_a_halt(centre):
    path, as_of = centre
    checks = _read(path, tables.data_quality_checks)
    step1 = checks.loc[checks["step"] == "1_build_silver"]
    assert not (step1["severity"].eq("critical") & ~step1["passed"].astype(bool)).any()
    daily = _read(path, tables.silver_daily)
    assert set(daily["queue"]) == {"Bank", "Night", "Small"} and daily["date"].max() == pd.Timestamp(END)


def test_every_queue_publishes_the_model_and_every_open_day_records_its_profile(centre):
    path, as_of = centre
    fc = _read(path, tables.gold_forecast_daily)
    assert set(fc["queue"]) == {"Bank", "Night", "Small"}
    assert fc["method"].eq("ensemble").all(), fc.loc[fc["method"] != "ensemble", ["queue", "fallback_reason"]]
    # whether the Saturday shift's own profile passes is chance (a flat shift's shape is noise); whichever split it,
    # the day says so, and the full days keep their same-weekday profile
    open_days = fc.loc[fc["p50"] > 0]
    assert open_days["intraday_profile"].notna().all() and open_days["intraday_profile_reason"].notna().all()
    assert fc.loc[(fc["queue"] == "Bank") & (fc["date"].dt.day_of_week == 0), "intraday_profile"].eq(
        "same_weekday").all()
