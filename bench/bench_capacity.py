#!/usr/bin/env python3
"""The capacity plan (step 6) measured: p10-p90 coverage of weekly volume and FTE need, and its speed.

Coverage: every data set of bench/accuracy.py with enough history goes through steps 0 and 1, then the plan is made
at weekly origins over the last `--eval-weeks` weeks that have actuals (each plan from data before its origin only:
the plan's own rolling backtest is run once and each origin uses only the rows it could have known, which
tests/test_capacity.py checks equals the step's own plan). At 4, 8, 13 and 26 weeks ahead: the share of weeks whose
actual volume, and actual FTE need (actual volume x actual AHT through the plan's own staffing curve and shrinkage),
fell within the plan's p10-p90. Goal 72-88%. Shrinkage is held at its configured value (capacity.shrinkage_sd 0):
nobody's export says what the shrinkage really was, so only the forecastable inputs are scored.

Speed: a 26-week plan for `--queues` generated queues x 2 years with 1,000 simulations, against the same plan with
50 simulations (the baseline, in the same command: the machine is shared). Goal: under 30 s.

    .venv/bin/python bench/bench_capacity.py                       # coverage on every data set + speed
    .venv/bin/python bench/bench_capacity.py --only demo --no-speed
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.accuracy_data import DATASETS, SHARED_DIR, EXTRA_DIR, data_glob, missing_data, prepare  # noqa: E402
from common import capacity_step, capacity_volume as cv, db, tables  # noqa: E402
from common.capacity_plan import make_plan, paid_hours_per_week  # noqa: E402
from common.config import load_config  # noqa: E402

HORIZONS = (4, 8, 13, 26)
log = logging.getLogger("bench.capacity")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", default=None, help="data sets to score (default: all with their files)")
    p.add_argument("--eval-weeks", type=int, default=52, help="weekly plan origins scored (default 52: a year)")
    p.add_argument("--work-dir", type=Path, default=REPO / "data" / "bench",
                   help="where bench/accuracy.py keeps each data set's database (re-used: steps 0-1 are idempotent)")
    p.add_argument("--shared-dir", type=Path, default=SHARED_DIR)
    p.add_argument("--data-dir", type=Path, default=EXTRA_DIR)
    p.add_argument("--queues", type=int, default=20)
    p.add_argument("--simulations", type=int, default=1000)
    p.add_argument("--no-speed", action="store_true")
    p.add_argument("--no-coverage", action="store_true")
    return p.parse_args(argv)


def read_silver(cfg) -> tuple[pd.DataFrame, pd.DataFrame]:
    engine = db.make_engine(cfg.database_url)
    with engine.connect() as conn:
        daily = db.read_table(conn, tables.silver_daily,
                              columns=["queue", "date", "offered", "handled", "aht_seconds", "is_open"])
        t = tables.silver_interval
        intervals = db.read_table(conn, t, columns=["queue", "date", "interval_start", "offered", "aht_seconds",
                                                    "is_open"])
    engine.dispose()
    return daily, intervals


def score(name: str, cfg, daily: pd.DataFrame, intervals: pd.DataFrame, eval_weeks: int) -> pd.DataFrame:
    """One row per plan origin x queue x week ahead scored: in-band flags for volume and FTE."""
    end = pd.to_datetime(daily["date"]).max().date() + timedelta(days=1)
    panel = cv.Panel.from_daily(daily, end)
    calls, aht = panel.weekly()
    last = cv.first_monday(end) - timedelta(weeks=HORIZONS[0] + 1)
    first_data = pd.to_datetime(daily["date"]).min().date()
    origins = [last - timedelta(weeks=k) for k in range(eval_weeks)]
    origins = sorted(o for o in origins if o >= first_data + timedelta(weeks=16))
    inner = cv.backtest_origins(panel, end, cfg.capacity.backtest_weeks + eval_weeks, cfg.capacity.min_history_weeks)
    started = time.perf_counter()
    errors = cv.backtest(panel, cfg.capacity.horizon_weeks, inner)
    log.info("%s: backtest of %d origins in %.1fs; scoring %d plan origins", name, len(inner),
             time.perf_counter() - started, len(origins))
    rows = []
    paid = paid_hours_per_week(cfg)
    for origin in origins:
        before = daily.loc[pd.to_datetime(daily["date"]) < pd.Timestamp(origin)]
        ints = intervals.loc[(pd.to_datetime(intervals["date"]) < pd.Timestamp(origin))
                             & (pd.to_datetime(intervals["date"]) >= pd.Timestamp(origin - timedelta(days=63)))]
        queues = sorted(before["queue"].astype("str").unique())
        calendar = capacity_step.planned_calendar(cfg, queues, origin)
        args = capacity_step.staffing_args(cfg, before, pd.DataFrame(columns=["queue", "outcome", "wait_seconds"]))
        plan = make_plan(cfg, origin, before, ints, calendar, args, backtest=errors)
        p = plan.rows.loc[plan.rows["queue"] != "(centre)"]
        ow = panel.index_of(origin) // 7
        for r in p.itertuples():
            q = panel.queues.index(r.queue)
            w = ow + r.weeks_ahead - 1
            if w >= calls.shape[1] or np.isnan(calls[q, w]):
                continue
            inp = plan.inputs[r.queue]
            h = r.weeks_ahead - 1
            a_aht = aht[q, w] if np.isfinite(aht[q, w]) else inp.aht[h]
            workload = calls[q, w] * a_aht / 3600.0
            fte = inp.curve.need(np.array([workload]), np.array([inp.open_days[h]]))[0] / (1 - inp.shrinkage[h]) / paid
            rows.append({"dataset": name, "origin": origin, "queue": r.queue, "weeks_ahead": r.weeks_ahead,
                         "volume_in": r.volume_p10 <= calls[q, w] <= r.volume_p90,
                         "fte_in": r.fte_required_p10 <= fte <= r.fte_required_p90 if np.isfinite(fte) else np.nan,
                         "volume_ape": abs(r.volume_p50 - calls[q, w]), "actual": calls[q, w],
                         "method": r.volume_method})
    return pd.DataFrame(rows)


def coverage_table(scored: pd.DataFrame) -> str:
    lines = ["| data set | weeks ahead | plan-weeks | volume p10-p90 coverage | FTE p10-p90 coverage | volume wMAPE |",
             "|---|---|---|---|---|---|"]
    for (name, h), g in scored.loc[scored["weeks_ahead"].isin(HORIZONS)].groupby(["dataset", "weeks_ahead"]):
        fte = g["fte_in"].dropna()
        lines.append(f"| {name} | {h} | {len(g)} | {g['volume_in'].mean():.0%} | "
                     f"{fte.astype(bool).mean():.0%} | {g['volume_ape'].sum() / g['actual'].sum():.1%} |")
    return "\n".join(lines)


def speed(queues: int, simulations: int, work: Path) -> str:
    from bench.bench_train import make_history

    history, _, as_of = make_history(queues, 730, 7)
    daily = history.rename(columns={"series": "queue", "y": "offered"}).assign(
        handled=lambda f: f["offered"], aht_seconds=lambda f: np.where(f["offered"] > 0, 300.0, np.nan))
    # nine weeks of half-hours, 08:00-18:00, a late-morning peak: the staffing curves' typical week
    recent = daily.loc[(daily["date"] >= as_of - pd.Timedelta(days=63)) & daily["is_open"]]
    slots = pd.timedelta_range("08:00:00", "17:30:00", freq="30min")
    share = np.exp(-((slots.total_seconds() / 3600 - 11) ** 2) / 8)
    share = share / share.sum()
    intervals = pd.DataFrame({"queue": np.repeat(recent["queue"].to_numpy(), len(slots)),
                              "date": np.repeat(recent["date"].to_numpy(), len(slots)),
                              "interval_start": np.repeat(recent["date"].to_numpy(), len(slots)) + np.tile(slots,
                                                                                                        len(recent)),
                              "offered": np.repeat(recent["offered"].to_numpy(), len(slots)) * np.tile(share,
                                                                                                     len(recent)),
                              "is_open": True})
    config = work / "speed.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text((REPO / "config.yaml").read_text())
    times = {}
    for sims in (50, simulations):
        cfg = load_config(config, [f"capacity.simulations={sims}", "database.url=sqlite://"])
        calendar = capacity_step.planned_calendar(cfg, sorted(daily["queue"].unique()), as_of.date())
        args = capacity_step.staffing_args(cfg, daily, pd.DataFrame(columns=["queue", "outcome", "wait_seconds"]))
        started = time.perf_counter()
        plan = make_plan(cfg, as_of.date(), daily, intervals, calendar, args)
        times[sims] = time.perf_counter() - started
    return (f"speed: {queues} queues x 730 days, 26 weeks: {simulations} simulations {times[simulations]:.1f} s, "
            f"50 simulations {times[50]:.1f} s (ratio {times[simulations] / times[50]:.2f}x); goal < 30 s; "
            f"{len(plan.rows)} plan rows, backtest on {plan.backtest_origins} origins")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("common").setLevel(logging.WARNING)
    out = [f"command: {' '.join(['bench/bench_capacity.py', *(argv if argv is not None else sys.argv[1:])])}"]
    if not args.no_coverage:
        scored = []
        for name, dataset in DATASETS.items():
            if args.only and name not in args.only:
                continue
            files = data_glob(dataset, args.shared_dir, args.data_dir)
            why = missing_data(dataset, files)
            if why:
                out.append(f"{name}: skipped: {why}")
                continue
            config, overrides = prepare(dataset, args.work_dir, files=files)
            cfg = load_config(config, [*overrides, "capacity.shrinkage_sd=0"])
            daily, intervals = read_silver(cfg)
            got = score(name, cfg, daily, intervals, args.eval_weeks)
            if got.empty:
                out.append(f"{name}: skipped: too short for a plan 4 weeks ahead after 16 weeks of history")
                continue
            scored.append(got)
        if scored:
            out.append(coverage_table(pd.concat(scored, ignore_index=True)))
    if not args.no_speed:
        out.append(speed(args.queues, args.simulations, args.work_dir))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
