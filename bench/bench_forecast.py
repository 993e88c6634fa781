"""Time step 3 (forecast + fallback checks + intraday split + staffing + gold writes) on synthetic queues.

Builds a temporary SQLite database with synthetic silver_daily (every day of
the history) and silver_interval (the weeks step 3 reads), trains a
QuantileForecaster on it (not timed as part of step 3), registers it as
production, then runs `3_forecast.main` end to end and reports its wall time.
Erlang C throughput is `staffing_table` alone on the step's own interval
forecast (best of --repeats).

    .venv/bin/python bench/bench_forecast.py --queues 50 --days 14 --interval-minutes 30
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere

from common import db, registry, tables  # noqa: E402
from common.calendar import interval_grid  # noqa: E402
from common.config import load_config  # noqa: E402
from common.forecaster import QuantileForecaster  # noqa: E402
from common.opening_hours import parse_opening_hours  # noqa: E402
from common.silver import closed_dates_for  # noqa: E402
from common.staffing import staffing_table  # noqa: E402

WEEKDAY = np.array([1.25, 1.1, 1.0, 0.95, 0.85, 0.45, 0.3])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queues", type=int, default=50)
    parser.add_argument("--days", type=int, default=14, help="forecast horizon (forecast.horizon_days)")
    parser.add_argument("--interval-minutes", type=int, default=30, help="30 = 48 intervals a day")
    parser.add_argument("--history-days", type=int, default=420, help="days of silver_daily before the as-of")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2025, 3, 10))
    parser.add_argument("--n-estimators", type=int, default=300, help="trees per quantile model (300 = default)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of staffing_table; best is reported")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--log-level", default="WARNING", help="log level of the step run")
    return parser.parse_args(argv)


def write_bench_config(directory: Path, args: argparse.Namespace) -> Path:
    """The repository config with the database and model folder in `directory`; every queue open Mon-Sat."""
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["database"]["url"] = "sqlite:///data/wfm.db"
    cfg["rules"]["interval_minutes"] = args.interval_minutes
    cfg["rules"]["opening_hours"]["queues"] = {}
    cfg["rules"]["opening_hours"]["default"]["sat"] = "09:00-15:00"
    cfg["forecast"]["horizon_days"] = args.days
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def synthetic_silver(cfg, args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame]:
    """silver_daily for every history day, silver_interval for the last 10 weeks (all step 3 reads by default)."""
    rng = np.random.default_rng(args.seed)
    first = args.as_of - timedelta(days=args.history_days)
    last = args.as_of - timedelta(days=1)
    closed = closed_dates_for(cfg, first, last)
    hours = parse_opening_hours(cfg.rules.opening_hours.model_dump())
    queues = [f"q{i:02d}" for i in range(args.queues)]
    size = dict(zip(queues, rng.lognormal(np.log(800), 0.8, len(queues))))
    dates = pd.date_range(first, last, freq="D")
    closed_days = set(pd.to_datetime(closed["date"]))
    yearly = 1 + 0.15 * np.sin(2 * np.pi * dates.day_of_year.to_numpy() / 365.25)
    parts = []
    for q in queues:
        is_open = np.array([hours.window(q, wd) is not None for wd in dates.day_of_week]) & ~dates.isin(closed_days)
        mean = size[q] * WEEKDAY[dates.day_of_week] * yearly
        parts.append(pd.DataFrame({"queue": q, "date": dates, "offered": np.where(is_open, rng.poisson(mean), 0.0),
                                   "is_open": is_open, "is_holiday": dates.isin(closed_days)}))
    daily = pd.concat(parts, ignore_index=True).astype({"offered": float})
    daily = daily.assign(handled=daily["offered"], abandoned=0.0, short_abandoned=0.0, offered_outside_hours=0.0,
                         aht_seconds=np.where(daily["offered"] > 0, 300.0, np.nan), holiday_name=None)

    grid = interval_grid(queues, args.as_of - timedelta(days=70), last, args.interval_minutes, cfg.timezone, hours,
                         closed)
    hour = grid["interval_start"].dt.hour + grid["interval_start"].dt.minute / 60
    shape = np.where(grid["is_open"], np.exp(-((hour - 10.5) ** 2) / 3) + 0.7 * np.exp(-((hour - 14) ** 2) / 4) + 0.05,
                     0.0)
    grid = grid.assign(shape=shape).merge(daily[["queue", "date", "offered"]], on=["queue", "date"])
    weight = grid["shape"] / grid.groupby(["queue", "date"])["shape"].transform("sum").where(lambda s: s > 0)
    offered = np.round(grid["offered"] * weight.fillna(0.0))
    intervals = grid.drop(columns=["shape"]).assign(
        offered=offered, handled=offered, abandoned=0.0, short_abandoned=0.0, offered_outside_hours=0.0,
        aht_seconds=np.where(offered > 0, rng.normal(300, 30, len(grid)).clip(60), np.nan))
    return daily, intervals


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    forecast_step = importlib.import_module("3_forecast")
    with tempfile.TemporaryDirectory() as tmp:
        path = write_bench_config(Path(tmp), args)
        cfg = load_config(path)
        t0 = time.perf_counter()
        daily, intervals = synthetic_silver(cfg, args)
        engine = db.make_engine(cfg.database_url)
        db.ensure_schema(engine)
        with engine.begin() as conn:
            db.insert_frame(conn, tables.silver_daily, daily)
            db.insert_frame(conn, tables.silver_interval, intervals)
        setup_seconds = time.perf_counter() - t0

        t0 = time.perf_counter()
        history = daily.rename(columns={"queue": "series", "offered": "y"})
        model = QuantileForecaster(params={"n_estimators": args.n_estimators}).fit(
            history, closed_dates_for(cfg, history["date"].min().date(), args.as_of + timedelta(days=366)))
        version = "vbench"
        shas = registry.write_artifacts(cfg.path(cfg.training.model_dir) / version, model, {"version": version})
        with engine.begin() as conn:
            registry.save_version(conn, {"version": version, "created_at": db.utc_now(), "data_hash": "0" * 64,
                                         "params": {}, "metrics": {}, "feature_importance": {},
                                         "artifact_path": f"{cfg.training.model_dir}/{version}",
                                         "artifact_sha256": shas}, "production", "bench")
        train_seconds = time.perf_counter() - t0

        t0 = time.perf_counter()
        rc = forecast_step.main(["--config", str(path), "--as-of", args.as_of.isoformat(), "--log-level",
                                 args.log_level])
        step_seconds = time.perf_counter() - t0
        with engine.connect() as conn:
            fc = db.read_table(conn, tables.gold_forecast_daily)
            iv = db.read_table(conn, tables.gold_forecast_interval)

        staffing_in = iv.rename(columns={q: f"volume_{q}" for q in ("p10", "p50", "p90")})
        s = cfg.staffing
        times = []
        for _ in range(max(args.repeats, 1)):
            t1 = time.perf_counter()
            staffing_table(staffing_in, args.interval_minutes, s.service_level, s.answer_seconds, s.max_occupancy,
                           s.shrinkage, s.asa_target_seconds)
            times.append(time.perf_counter() - t1)
        engine.dispose()

    methods = fc.groupby("method")["queue"].nunique().to_dict()
    print("## Step 3 forecast benchmark\n")
    print(f"command: `{shlex.join([sys.executable, *sys.argv])}`\n")
    print("| item | value |")
    print("|---|---|")
    print(f"| queues x days x intervals/day | {args.queues} x {args.days} x {24 * 60 // args.interval_minutes} "
          f"= {len(iv):,} interval rows |")
    print(f"| history | {args.history_days} days daily, 10 weeks of intervals |")
    print(f"| setup (synthetic silver + inserts) | {setup_seconds:.1f} s |")
    print(f"| model training ({args.n_estimators} trees x 3 quantiles, not step 3) | {train_seconds:.1f} s |")
    print(f"| **3_forecast wall time** (exit {rc}) | **{step_seconds:.2f} s** |")
    print(f"| queues by method | {methods} |")
    print(f"| Erlang C staffing_table (best of {len(times)}) | {min(times):.3f} s, "
          f"{len(iv) / min(times):,.0f} intervals/s |")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
