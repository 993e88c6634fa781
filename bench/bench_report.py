"""Time step 5 (charts + report email) for a large centre against a 4-queue baseline, and size its email.

For each --queues count (the first is the baseline) builds a temporary SQLite
database with the rows step 5 reads, inserted directly (no load, no training):
8 weeks of silver_daily, the origin's gold_forecast_daily (14 days),
gold_staffing_interval (48 intervals a day) and gold_staffing_daily, 8 weeks of
same-night accuracy rows, the accuracy summary, a few alerts and a successful
4_evaluate run. Then runs `5_report.main --no-email` and reports its wall
time, the size of report.eml and of each chart, and the ratios to the baseline.

    .venv/bin/python bench/bench_report.py --queues 4 500
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere

from common import db, tables  # noqa: E402
from common.config import load_config  # noqa: E402
from common.staffing import daily_staffing_summary  # noqa: E402

WEEKDAY = np.array([1.25, 1.1, 1.0, 0.95, 0.85, 0.45, 0.0])  # Sunday closed
CHARTS = ("forecast.png", "totals.png", "staffing.png", "past.png", "accuracy.png")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queues", type=int, nargs="+", default=[4, 500], help="queue counts; the first is the baseline")
    parser.add_argument("--top-queues", type=int, default=None, help="report.top_queues (default: config.yaml's)")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2025, 3, 10))
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--log-level", default="WARNING", help="log level of the step run")
    return parser.parse_args(argv)


def write_bench_config(directory: Path, top_queues: int | None) -> Path:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["database"]["url"] = "sqlite:///data/wfm.db"
    if top_queues is not None:
        cfg["report"]["top_queues"] = top_queues
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def gold_frames(n_queues: int, as_of: date, seed: int) -> dict[str, pd.DataFrame]:
    """The rows step 5 reads, per table: n queues of lognormal size (a few large), open Mon-Sat 08:00-18:00."""
    rng = np.random.default_rng(seed)
    queues = [f"Queue {i:03d}" for i in range(1, n_queues + 1)]
    level = dict(zip(queues, rng.lognormal(5.5, 1.0, n_queues)))
    origin = pd.Timestamp(as_of)
    past, ahead = pd.date_range(origin - pd.Timedelta(days=56), periods=56), pd.date_range(origin, periods=14)
    q, d = (a.ravel() for a in np.meshgrid(queues, past, indexing="ij"))
    base = np.array([level[x] for x in q]) * WEEKDAY[pd.DatetimeIndex(d).day_of_week]
    offered = rng.poisson(base).astype(float)
    silver = pd.DataFrame({"queue": q, "date": d, "offered": offered, "offered_outside_hours": 0.0,
                           "is_open": base > 0, "is_holiday": False})
    q, d = (a.ravel() for a in np.meshgrid(queues, ahead, indexing="ij"))
    p50 = np.array([level[x] for x in q]) * WEEKDAY[pd.DatetimeIndex(d).day_of_week]
    fallback = np.isin(q, queues[::25])  # every 25th queue on the seasonal naive fallback
    forecast = pd.DataFrame({"run_id": "r3", "forecast_origin": origin, "queue": q, "date": d,
                             "horizon_day": np.tile(np.arange(1, 15), n_queues), "p10": 0.85 * p50, "p50": p50,
                             "p90": 1.15 * p50, "method": np.where(fallback, "seasonal_naive", "lightgbm"),
                             "fallback_reason": np.where(fallback, "no production model", None)})
    # Intervals 08:00-18:00 (20 of 48 open), a two-peak day; staff ~ volume / 6 per half hour, after shrinkage.
    k = np.arange(48)
    shape = np.where((k >= 16) & (k < 36), 1 + 0.5 * np.sin((k - 16) / 20 * 2 * np.pi) ** 2, 0.0)
    shape = shape / shape.sum()
    days = np.repeat(forecast["date"].to_numpy(), 48)
    vol = np.repeat(p50, 48) * np.tile(shape, len(p50))
    staff = np.ceil(vol / 6 + (vol > 0))
    staffing = pd.DataFrame({"run_id": "r3", "forecast_origin": origin, "queue": np.repeat(q, 48),
                             "interval_start": days + np.tile(k * pd.Timedelta(minutes=30), len(p50)),
                             "volume_p10": 0.85 * vol, "volume_p50": vol, "volume_p90": 1.15 * vol,
                             "aht_seconds": np.where(vol > 0, 300.0, np.nan), "workload_minutes": vol * 5,
                             "agents_p10": staff, "agents_p50": staff, "agents_p90": staff + 1,
                             "staff_p10": staff, "staff_p50": staff, "staff_p90": staff + 1})
    staffing = staffing.assign(interval_start_utc=staffing["interval_start"] - pd.Timedelta(hours=1))
    staffing_daily = daily_staffing_summary(staffing, 30)  # what step 3 writes
    p = silver["offered"] * rng.normal(1.0, 0.08, len(silver))
    accuracy = pd.DataFrame({"run_id": "r4", "forecast_origin": silver["date"], "queue": silver["queue"],
                             "date": silver["date"], "method": "lightgbm", "horizon_day": 1,
                             "weekday": silver["date"].dt.day_of_week, "actual": silver["offered"], "p10": 0.85 * p,
                             "p50": p, "p90": 1.15 * p, "error": p - silver["offered"],
                             "abs_error": (p - silver["offered"]).abs(), "is_open": silver["is_open"],
                             "in_band": True})
    summary = pd.DataFrame([{"run_id": "r4", "as_of": origin, "scope": scope, "scope_value": value,
                             "method": "forecast", "window_days": 28, "n_days": 24, "wmape": 0.064, "bias": 0.01,
                             "coverage": 0.81, "wmape_naive": 0.11}
                            for scope, value in [("overall", "all"), *(("queue", x) for x in queues)]])
    alerts = pd.DataFrame([{"run_id": "r4", "as_of": origin, "created_at": origin + pd.Timedelta(hours=1),
                            "severity": "warning", "alert_rule": "mape_daily", "queue": x, "metric": "mape",
                            "value": 0.12, "threshold": 0.10, "message": f"{x}: MAPE above 10% on 3 open days"}
                           for x in queues[:3]])
    runs = pd.DataFrame([{"run_id": "r4", "step": "4_evaluate", "as_of": origin, "started_at": origin,
                          "finished_at": origin, "status": "success", "rows_written": 1, "message": ""}])
    return {"silver_daily": silver, "gold_forecast_daily": forecast, "gold_staffing_interval": staffing,
            "gold_staffing_daily": staffing_daily, "gold_forecast_accuracy": accuracy,
            "gold_forecast_accuracy_summary": summary, "gold_alerts": alerts, "pipeline_runs": runs}


def run_one(n_queues: int, args: argparse.Namespace, report_step: ModuleType) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_bench_config(Path(tmp), args.top_queues)
        cfg = load_config(path)
        t0 = time.perf_counter()
        engine = db.make_engine(cfg.database_url)
        db.ensure_schema(engine)
        with engine.begin() as conn:
            for name, frame in gold_frames(n_queues, args.as_of, args.seed).items():
                db.insert_frame(conn, getattr(tables, name), frame)
        engine.dispose()
        setup = time.perf_counter() - t0
        t0 = time.perf_counter()
        rc = report_step.main(["--config", str(path), "--as-of", args.as_of.isoformat(), "--no-email",
                               "--log-level", args.log_level])
        seconds = time.perf_counter() - t0
        out = cfg.path(cfg.report.output_dir) / args.as_of.isoformat()
        sizes = {name: (out / name).stat().st_size for name in (*CHARTS, "report.eml") if (out / name).exists()}
    return {"queues": n_queues, "rc": rc, "setup": setup, "seconds": seconds, "sizes": sizes,
            "top": cfg.report.top_queues}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report_step = importlib.import_module("5_report")
    results = [run_one(n, args, report_step) for n in args.queues]
    base = results[0]
    print("## Step 5 report benchmark\n")
    print(f"command: `{shlex.join([sys.executable, *sys.argv])}`\n")
    print(f"report.top_queues = {base['top']}; ratios are to the {base['queues']}-queue run of the same command; "
          f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}.\n")
    print("| queues | setup (inserts) | **5_report wall time** | ratio | report.eml | ratio | "
          + " | ".join(CHARTS) + " | exit |")
    print("|---|---|---|---|---|---|" + "---|" * len(CHARTS) + "---|")
    for r in results:
        eml = r["sizes"].get("report.eml", 0)
        charts = " | ".join(f"{r['sizes'].get(c, 0) / 1e3:,.0f} kB" for c in CHARTS)
        print(f"| {r['queues']} | {r['setup']:.1f} s | **{r['seconds']:.1f} s** | {r['seconds'] / base['seconds']:.2f}× "
              f"| {eml / 1e6:.2f} MB | {eml / max(base['sizes'].get('report.eml', 1), 1):.2f}× | {charts} "
              f"| {r['rc']} |")
    return 0 if all(r["rc"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
