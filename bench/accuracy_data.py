"""bench/accuracy.py's data sets and how they reach silver: configs, export files, steps 0 and 1, the inputs read back.

Real exports live outside the repository: ../shared/data (research terms) and ../data_extra (found later, each
folder with its PROVENANCE.md). A data set whose files are not there, or whose config this version of the pipeline
cannot load, is skipped with the reason (`missing_data`).
"""

from __future__ import annotations

import importlib
import logging
import os
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from common import db, silver, tables, training
from common.config import load_config
from common.config_schema import Config
from common.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench.accuracy")

DEMO_END = date(2025, 5, 31)
SHARED_DIR = Path(os.environ.get("WFM_BENCH_SHARED_DIR") or REPO.parent / "shared" / "data")
EXTRA_DIR = Path(os.environ.get("WFM_BENCH_DATA_DIR") or REPO.parent / "data_extra")


@dataclass(frozen=True)
class DataSet:
    """A benchmark data set: its config, the run date (day after the data), and how it is scored."""

    name: str
    config: Path | None            # None: the repository config.yaml over generated demo CSVs
    as_of: date
    mode: str = "backtest"         # backtest | fallback (too short to train: score what steps 2-3 publish)
    fallback_as_of: date | None = None
    description: str = ""
    generated: bool = False        # the export is written by bench/odd_centre.py into the work folder
    data: str | None = None        # the export's files (a glob) under its data root; None: generated
    root: str = "shared"           # shared: --shared-dir (../shared/data) | extra: --data-dir (../data_extra)


DATASETS = {
    "us_bank_2003": DataSet("us_bank_2003", REPO / "bench/configs/us_bank_2003.yaml", date(2003, 10, 27),
                            description="US bank 2003: 1 queue, 164 weekdays, 5-minute rows summed to 30 minutes",
                            data="us_bank_2003/us_bank_2003_5min_interval.csv"),
    "demo": DataSet("demo", None, DEMO_END + timedelta(days=1),
                    description="generated demo CDRs (common.demo, seed 42): 4 queues, 730 days to 2025-05-31"),
    "odd_centre": DataSet("odd_centre", REPO / "bench/configs/odd_centre.yaml", DEMO_END + timedelta(days=1),
                          generated=True,
                          description="generated interval export (bench/odd_centre.py, seed 7): a 5-hour Saturday "
                                      "shift, a 24/7 line with empty nights, a noisy small queue, half-day eves"),
    "anonymous_bank_feb1999": DataSet(
        "anonymous_bank_feb1999", REPO / "bench/configs/anonymous_bank_feb1999.yaml", date(1999, 3, 1),
        mode="fallback", fallback_as_of=date(1999, 2, 15),
        description="Anonymous Bank (Israel) CDRs, February 1999: 6 queues, one month",
        data="anonymous_bank_feb1999/*.txt"),
    "toronto_central_intake": DataSet(
        "toronto_central_intake", REPO / "bench/configs/toronto_central_intake.yaml", date(2025, 12, 1),
        description="City of Toronto Central Intake line (24/7 shelter referrals), daily calls handled "
                    "2020-11-03 .. 2025-11-30: 1 queue, 1,854 days, source.kind daily, no intervals",
        data="toronto_central_intake/central_intake_daily.csv", root="extra"),
}


def data_glob(dataset: DataSet, shared_dir: Path = SHARED_DIR, extra_dir: Path = EXTRA_DIR) -> Path | None:
    """Where `dataset`'s export files are (a glob), or None for a generated data set."""
    if dataset.data is None:
        return None
    return (extra_dir if dataset.root == "extra" else shared_dir) / dataset.data


def missing_data(dataset: DataSet, files: Path | None) -> str | None:
    """Why `dataset` cannot run here (its files are not there, or its config does not load), else None."""
    if files is not None and not sorted(files.parent.glob(files.name)):
        flag = "--data-dir (WFM_BENCH_DATA_DIR)" if dataset.root == "extra" else "--shared-dir (WFM_BENCH_SHARED_DIR)"
        return f"no file matches {files}; point {flag} at the folder that holds {dataset.data.split('/')[0]}/"
    if dataset.config is not None:
        try:
            load_config(dataset.config)
        except ConfigError as exc:
            return f"its config does not load in this version of the pipeline: {exc}"
    return None


# --- data through the pipeline ---------------------------------------------------------------------------

def run_step(module: str, config: Path, as_of: date, overrides: Sequence[str], *extra: str) -> None:
    """Run a numbered step's main() in-process; RuntimeError when it fails."""
    argv = ["--config", str(config), "--as-of", str(as_of), "--log-level", "WARNING", *extra]
    for item in overrides:
        argv += ["--set", item]
    code = importlib.import_module(module).main(argv)
    if code != 0:
        raise RuntimeError(f"{module} failed with exit code {code} (argv {shlex.join(argv)})")


def prepare(dataset: DataSet, work_dir: Path, demo_days: int = 730, demo_seed: int = 42,
            files: Path | None = None) -> tuple[Path, list[str]]:
    """Load `dataset` into bronze and silver of a SQLite file under `work_dir`; return (config, overrides).

    `files` (see `data_glob`) replaces the config's source.csv_glob; None keeps the config's own path.

    Steps 0 and 1 are idempotent, so a kept `work_dir` makes a re-run cheap and still goes through the steps.
    """
    folder = work_dir / dataset.name
    folder.mkdir(parents=True, exist_ok=True)
    overrides = [f"database.url=sqlite:///{(folder / 'wfm.db').resolve()}",
                 f"training.model_dir={(folder / 'models').resolve()}"]
    config = dataset.config
    if config is None:  # the demo: generated CSVs in the default config's layout
        from common.demo import demo_legs, write_demo_csvs

        inbox = folder / "inbox"
        end = dataset.as_of - timedelta(days=1)
        legs = demo_legs(end - timedelta(days=demo_days - 1), end, seed=demo_seed)
        write_demo_csvs(legs, inbox, seed=demo_seed)
        config = REPO / "config.yaml"
        overrides.append(f"source.csv_glob={(inbox / '*.csv').resolve()}")
    elif dataset.generated:
        from bench.odd_centre import write_export

        end = dataset.as_of - timedelta(days=1)
        write_export(end - timedelta(days=demo_days - 1), end, folder / "inbox" / "odd_centre.csv")
        overrides.append(f"source.csv_glob={(folder / 'inbox' / '*.csv').resolve()}")
    elif files is not None:
        overrides.append(f"source.csv_glob={files.resolve()}")
    started = time.perf_counter()
    run_step("0_load_bronze", config, dataset.as_of, overrides)
    run_step("1_build_silver", config, dataset.as_of, overrides)
    log.info("%s: bronze + silver in %.1fs", dataset.name, time.perf_counter() - started)
    return config, overrides


@dataclass
class Inputs:
    """What the backtest reads from silver: daily history, closed dates, intervals."""

    cfg: Config
    history: pd.DataFrame          # series, date, y, is_open, is_holiday: one row per queue per day
    holidays: pd.DataFrame         # date, holiday_name
    intervals: pd.DataFrame        # silver_interval columns the intraday split needs
    left_out: pd.DataFrame = field(default_factory=pd.DataFrame)


def load_inputs(config: Path, overrides: Sequence[str], as_of: date, cfg_overrides: Sequence[str] = (),
                end: date | None = None) -> Inputs:
    """silver_daily/silver_interval before `as_of` (and before `end` when given), as 2_train/3_forecast read them."""
    cfg = load_config(config, [*overrides, *cfg_overrides])
    engine = db.make_engine(cfg.database_url)
    cut = min(as_of, end) if end else as_of
    with engine.connect() as conn:
        daily = training.read_daily_history(conn, cut)
        t = tables.silver_interval
        ints = db.read_table(conn, t, where=t.c.date < cut,
                             columns=["queue", "date", "interval_start", "interval_start_utc", "offered", "handled",
                                      "aht_seconds", "is_open"])
    engine.dispose()
    history, left_out = training.split_by_history(daily, cfg.training.min_history_days)
    holidays = silver.closed_dates_for(cfg, history["date"].min().date(), cut + timedelta(days=366))
    return Inputs(cfg, history, holidays, ints, left_out)
