"""Replay the intraday reforecast on real interval series: rest-of-day error at 10:00, 12:00, 14:00, and its speed.

For every open day of each data set (after 2 weeks of warm-up), at each hour H the day's intervals that ended by H
are observed and the rest of the day is forecast three ways, scored on the intervals after H:
  nightly  the day's "nightly forecast": the same-weekday mean day total of the 4 weeks before (fewer when the data
           is shorter) x the same-weekday profile of forecast.profile_weeks as of the week's Monday (running the
           whole pipeline per day would take too long; this is the issue's own stand-in);
  plain    the issue's plain projection: nightly rest x actual so far / expected so far, trusted by S / (S + 0.15);
  ours     common/reforecast.py as 3_5_reforecast_intraday.py runs it: k per queue calibrated on a replay of the
           intraday.calibration_weeks weeks before the day (hourly checkpoints), nothing of the day itself.
Metrics: rest-of-day total error = sum |forecast rest - actual rest| / sum actual rest over queue-days; interval
wMAPE over the remaining open intervals; p10-p90 coverage of the rest (80% nominal) with ours' band (out of sample:
each replayed day split by its own week's profile, each week projected with the pair the other weeks chose) and,
as coverage_in_sample, with the band before 2026-12 (today's profile, the pair chosen on all replayed days, plain
quantiles), on the same p50; band_width = mean (p90 - p10) / p50 of the rest. Then the time of one reforecast of
20 queues with 2 years of history (`reforecast_step.build` on generated frames, reads excluded).

    .venv/bin/python bench/bench_reforecast.py                       (us_bank_2003, anonymous_bank_feb1999, demo)
    .venv/bin/python bench/bench_reforecast.py --datasets demo --demo-days 180
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from bench.accuracy_data import (
    DATASETS,
    REPO,
    SHARED_DIR,
    data_glob,
    missing_data,
    prepare,
)
from common import db, reforecast, reforecast_step, silver
from common.calendar import interval_grid
from common.config import load_config
from common.config_schema import Config
from common.intraday import intraday_profile, minute_of_day
from common.opening_hours import parse_opening_hours

log = logging.getLogger("bench.reforecast")
HOURS = (10, 12, 14)
WARMUP_DAYS = 14


def read_intervals(config: Path, overrides: list[str]) -> tuple[Config, pd.DataFrame, pd.DataFrame]:
    """(config, silver_interval rows, closed dates) of a prepared data set (any length: no training threshold)."""
    cfg = load_config(config, overrides)
    engine = db.make_engine(cfg.database_url)
    with engine.connect() as conn:
        ints = reforecast_step.read_history(conn, date(1900, 1, 1), date(2100, 1, 1))
    engine.dispose()
    closed = silver.closed_dates_for(cfg, ints["date"].min().date(), ints["date"].max().date())
    return cfg, ints, closed


def day_frame(intervals: pd.DataFrame) -> pd.DataFrame:
    """Open intervals as queue, date, minute, offered (one row per clock time)."""
    h = intervals.loc[intervals["is_open"].astype(bool)]
    f = pd.DataFrame({"queue": h["queue"].astype("str").to_numpy(), "date": h["date"].to_numpy(),
                      "minute": minute_of_day(h["interval_start"]),
                      "offered": h["offered"].to_numpy(dtype=float, na_value=0.0)})
    return f.groupby(["queue", "date", "minute"], as_index=False)["offered"].sum()


def replay(intervals: pd.DataFrame, holidays: pd.DataFrame, profile_weeks: int, calibration_weeks: int,
           minutes: int) -> pd.DataFrame:
    """One row per method per hour per queue-day: rest forecast, rest actual, interval abs error sum, band."""
    actual = day_frame(intervals)
    totals = actual.groupby(["queue", "date"], as_index=False)["offered"].sum()
    days = sorted(d for d in totals.loc[totals["offered"] > 0, "date"].unique()
                  if d >= actual["date"].min() + pd.Timedelta(days=WARMUP_DAYS))
    weeks = min(reforecast_step.MEAN_WEEKS, max(1, (len(totals["date"].unique()) // 5) // 2))
    nightly = reforecast_step.day_means(intervals, pd.DatetimeIndex(sorted(totals["date"].unique())), weeks)
    profiles: dict = {}

    def profile_of(monday: date) -> pd.DataFrame:
        if monday not in profiles:
            profiles[monday] = intraday_profile(intervals, monday, profile_weeks, holidays)
        return profiles[monday]

    # every day against its own week's profile, as the step replays them for the band: once, sliced per day below
    band_points = reforecast_step.replay_by_week(actual, profile_of, nightly, minutes)
    rows = []
    for day in days:
        monday = (day - pd.Timedelta(days=day.day_of_week)).date()
        profile = profile_of(monday)
        since = day - pd.Timedelta(days=7 * calibration_weeks)
        past = actual.loc[(actual["date"] < day) & (actual["date"] >= since)]
        points = reforecast.replay_points(past, profile, nightly, reforecast_step.CHECKPOINTS, minutes)
        cal = reforecast.calibrate(points, 0.15, band_points.loc[(band_points["date"] < day)
                                                                 & (band_points["date"] >= since)])
        today = actual.loc[actual["date"] == day].assign(weekday=day.day_of_week)
        today = today.merge(profile.loc[:, ["queue", "weekday", "minute", "share"]], on=["queue", "weekday", "minute"],
                            how="inner").merge(nightly.loc[nightly["date"] == day, ["queue", "p10", "p50", "p90"]],
                                               on="queue", how="inner")
        for queue, q in today.groupby("queue"):
            share = q["share"].to_numpy() / q["share"].sum()
            y, n = q["offered"].to_numpy(), float(q["p50"].iloc[0])
            n_lo, n_hi = float(q["p10"].iloc[0]) / n, float(q["p90"].iloc[0]) / n
            for hour in HOURS:
                done = q["minute"].to_numpy() + minutes <= hour * 60
                if done.all() or not done.any():
                    continue
                s, a, rest_actual = share[done].sum(), y[done].sum(), y[~done].sum()
                half_life, k = cal.for_queue(str(queue))
                v = reforecast.recency_weights((hour * 60 - q["minute"].to_numpy()[done] - minutes) / 60.0, half_life)
                lo, hi = reforecast.band_ratios(cal, str(queue), s, n_lo, n_hi, k)
                old = reforecast.band_ratios(cal, str(queue), s, n_lo, n_hi, k, in_sample=True)
                ours = float(reforecast.project_rest(a, s, n, k, (v * y[done]).sum(), (v * share[done]).sum()))
                for method, rest in (("nightly", n * (1 - s)), ("plain", float(reforecast.plain_projection(a, s, n))),
                                     ("ours", ours)):
                    pred = rest * share[~done] / max(1 - s, 1e-12)
                    band, before = ((lo, hi), old) if method == "ours" else ((n_lo, n_hi), (n_lo, n_hi))
                    rows.append((method, hour, queue, day, rest, rest_actual, np.abs(pred - y[~done]).sum(),
                                 rest * band[0] <= rest_actual <= rest * band[1],
                                 rest * before[0] <= rest_actual <= rest * before[1], band[1] - band[0]))
    return pd.DataFrame(rows, columns=["method", "hour", "queue", "date", "rest", "rest_actual", "interval_abs",
                                       "in_band", "in_band_in_sample", "band_width"])


def summary(scored: pd.DataFrame) -> pd.DataFrame:
    """Per method and hour: rest-of-day total error, interval wMAPE, coverage, queue-days."""
    g = scored.assign(abs_rest=(scored["rest"] - scored["rest_actual"]).abs()).groupby(["hour", "method"])
    out = pd.DataFrame({"rest_total_error": g["abs_rest"].sum() / g["rest_actual"].sum(),
                        "interval_wmape": g["interval_abs"].sum() / g["rest_actual"].sum(),
                        "coverage": g["in_band"].mean(), "coverage_in_sample": g["in_band_in_sample"].mean(),
                        "band_width": g["band_width"].mean(), "queue_days": g.size()})
    return out.reset_index()


def time_build(queues: int = 20, days: int = 730, seed: int = 1) -> float:
    """Seconds of one `reforecast_step.build` (profile, replay calibration, projection, Erlang, alerts) for
    `queues` queues with `days` days of 30-minute history, on generated frames (the step's reads not included)."""
    cfg = load_config(REPO / "config.yaml", ["timezone=UTC", "rules.holidays.country=null"])
    rng = np.random.default_rng(seed)
    day = pd.Timestamp("2025-03-10")
    names = [f"Q{i:02d}" for i in range(queues)]
    hours = parse_opening_hours(cfg.rules.opening_hours.model_dump())
    full = interval_grid(names, (day - pd.Timedelta(days=days)).date(), (day + pd.Timedelta(days=1)).date(), 30,
                         "UTC", hours, pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]")}))
    shape = np.sin(np.pi * ((full["interval_start"].dt.hour * 60 + full["interval_start"].dt.minute) / 1440.0)) ** 2
    lam = np.where(full["is_open"], 40 * shape + 1, 0.0)
    full = full.assign(offered=rng.poisson(lam).astype(float), handled=0.0, aht_seconds=300.0)
    full = full.assign(handled=full["offered"])
    history = full.loc[full["date"] < day]
    nightly = full.loc[full["date"] >= day].assign(p50=lambda f: np.where(f["is_open"], 40 * shape.loc[f.index] + 1,
                                                                           0.0))
    nightly = nightly.assign(p10=nightly["p50"] * 0.8, p90=nightly["p50"] * 1.2).loc[
        :, ["queue", "interval_start", "interval_start_utc", "p10", "p50", "p90", "aht_seconds"]]
    at = day + pd.Timedelta(hours=12, minutes=10)
    observed = full.loc[(full["date"] == day) & (full["interval_start"] < at)]
    started = time.perf_counter()
    reforecast_step.build(cfg, at, nightly, history, observed, full.loc[full["date"] >= day,
                                                                        ["queue", "date", "interval_start",
                                                                         "interval_start_utc", "is_open"]])
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="us_bank_2003,anonymous_bank_feb1999,demo")
    parser.add_argument("--demo-days", type=int, default=240)
    parser.add_argument("--shared-dir", type=Path, default=SHARED_DIR)
    parser.add_argument("--work-dir", type=Path, default=REPO / "data" / "bench")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--set", action="append", default=[], dest="cfg_overrides", metavar="KEY=VALUE",
                        help="config override for the replay, e.g. --set intraday.calibration_weeks=12")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for name in args.datasets.split(","):
        ds = DATASETS[name]
        files = data_glob(ds, args.shared_dir)
        why = missing_data(ds, files)
        if why:
            print(f"{name}: skipped: {why}")
            continue
        started = time.perf_counter()
        config, overrides = prepare(ds, args.work_dir, demo_days=args.demo_days, files=files)
        cfg, intervals, closed = read_intervals(config, [*overrides, *args.cfg_overrides])
        scored = replay(intervals, closed, cfg.forecast.profile_weeks, cfg.intraday.calibration_weeks,
                        cfg.rules.interval_minutes)
        table = summary(scored)
        print(f"\n{name}: {scored['date'].nunique()} days, {scored['queue'].nunique()} queues "
              f"({time.perf_counter() - started:.0f}s)")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        for hour, t in table.groupby("hour"):
            e = t.set_index("method")["rest_total_error"]
            w = t.set_index("method")["interval_wmape"]
            print(f"  {hour}:00 ours vs plain: total {e['ours']:.1%} vs {e['plain']:.1%} "
                  f"({'beats' if e['ours'] < e['plain'] else 'does NOT beat'}), interval wMAPE {w['ours']:.1%} vs "
                  f"{w['plain']:.1%}; vs nightly {e['nightly']:.1%}: cut {1 - e['ours'] / e['nightly']:.0%}")
    if not args.no_timing:
        seconds = time_build()
        print(f"\ntiming: one reforecast of 20 queues x 730 days of 30-minute history: {seconds:.1f}s (goal < 10 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
