"""Time `staffing_table` on a realistic random forecast against a naive Erlang C search, and with Erlang A.

The naive baseline is what a first implementation usually does: for every
interval and quantile separately, try N = floor(A)+1, floor(A)+2, ... and for
each candidate recompute Erlang B from B(0) with the recursion (no factorials,
but O(N) work per candidate, no reuse between candidates or intervals). Both
run in this process on the same frame; the baseline's agents must match. Then the same frame is
staffed with Erlang A (each queue a mean patience drawn from 60-600 s) and timed against Erlang C.

    .venv/bin/python bench/bench_erlang.py --queues 50 --days 14 --intervals 48
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.staffing import QUANTILES, staffing_table  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queues", type=int, default=50)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--intervals", type=int, default=48, help="intervals per day (48 = 30 min)")
    parser.add_argument("--seed", type=int, default=20240304)
    parser.add_argument("--service-level", type=float, default=0.80)
    parser.add_argument("--answer-seconds", type=float, default=20.0)
    parser.add_argument("--max-occupancy", type=float, default=0.85)
    parser.add_argument("--shrinkage", type=float, default=0.30)
    parser.add_argument("--patience-seed", type=int, default=7, help="seed of the queues' mean patience (Erlang A)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of staffing_table; best is reported")
    parser.add_argument(
        "--baseline-rows",
        type=int,
        default=0,
        help="run the naive baseline on a random sample of this many rows and extrapolate (0 = all rows)",
    )
    args = parser.parse_args(argv)
    if 24 * 60 % args.intervals:
        parser.error(f"--intervals {args.intervals} does not divide a day into whole minutes")
    return args


def make_intervals(queues: int, days: int, intervals: int, seed: int) -> pd.DataFrame:
    """One row per queue per interval: a quantile forecast shaped like a contact centre's.

    Queues differ in size (lognormal daily volume, a few very large), open 08:00-18:00
    (some also at weekends, quieter), with a two-peak intraday profile, and p10/p90
    spread around p50. Closed intervals have volume 0 and AHT NaN, as the forecast writes them.
    """
    rng = np.random.default_rng(seed)
    minutes = 24 * 60 // intervals
    start = pd.Timestamp("2024-03-04")
    stamps = pd.date_range(start, periods=days * intervals, freq=f"{minutes}min")
    hour = stamps.hour.to_numpy() + stamps.minute.to_numpy() / 60
    weekday = stamps.day_of_week.to_numpy()
    # Morning and early-afternoon peaks, zero outside 08:00-18:00.
    shape = np.exp(-((hour - 10.5) ** 2) / 2.0) + 0.8 * np.exp(-((hour - 14.0) ** 2) / 3.0)
    shape = np.where((hour >= 8) & (hour < 18), shape, 0.0)

    frames = []
    for q in range(queues):
        daily = rng.lognormal(mean=math.log(1500), sigma=1.0)
        weekend_factor = 0.4 if rng.random() < 0.3 else 0.0
        day_factor = np.where(weekday >= 5, weekend_factor, 1.0) * rng.normal(1.0, 0.1, len(stamps)).clip(0.5)
        per_day = shape.reshape(days, intervals).sum(axis=1, keepdims=True)
        p50 = (shape.reshape(days, intervals) / per_day).ravel() * daily * day_factor
        spread = rng.uniform(0.1, 0.3)
        aht = rng.uniform(120, 600) * rng.normal(1.0, 0.05, len(stamps))
        frames.append(
            pd.DataFrame(
                {
                    "queue": f"q{q:02d}",
                    "interval_start": stamps,
                    "volume_p10": p50 * (1 - spread),
                    "volume_p50": p50,
                    "volume_p90": p50 * (1 + spread),
                    "aht_seconds": np.where(p50 > 0, aht, np.nan),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def naive_required_agents(
    calls: float, aht: float, interval_seconds: int, target: float, answer: float, max_occupancy: float
) -> int:
    """Plain search: every candidate N restarts the Erlang B recursion at B(0) = 1."""
    traffic = calls * aht / interval_seconds
    if traffic == 0:
        return 0
    n = math.floor(traffic) + 1
    while True:
        b = 1.0
        for k in range(1, n + 1):
            b = traffic * b / (k + traffic * b)
        wait = n * b / (n - traffic * (1 - b))
        level = 1 - wait * math.exp(-(n - traffic) * answer / aht)
        if level >= target and traffic / n <= max_occupancy:
            return n
        n += 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interval_minutes = 24 * 60 // args.intervals
    frame = make_intervals(args.queues, args.days, args.intervals, args.seed)
    params = (interval_minutes, args.service_level, args.answer_seconds, args.max_occupancy, args.shrinkage)

    times = []
    for _ in range(max(args.repeats, 1)):
        t0 = time.perf_counter()
        result = staffing_table(frame, *params)
        times.append(time.perf_counter() - t0)
    fast_seconds = min(times)

    rows = np.arange(len(frame))
    if 0 < args.baseline_rows < len(frame):
        rows = np.sort(np.random.default_rng(args.seed).choice(rows, args.baseline_rows, replace=False))
    aht = frame["aht_seconds"].to_numpy()
    t0 = time.perf_counter()
    mismatches = 0
    for q in QUANTILES:
        volume = frame[f"volume_{q}"].to_numpy()
        expected = result[f"agents_{q}"].to_numpy()
        for i in rows:
            calls = float(volume[i])
            n = naive_required_agents(
                calls, float(aht[i]) if calls > 0 else 0.0, interval_minutes * 60, *params[1:4]
            )
            mismatches += n != expected[i]
    naive_seconds = (time.perf_counter() - t0) * len(frame) / len(rows)

    patience = dict(zip(sorted(frame["queue"].unique()),
                        np.random.default_rng(args.patience_seed).uniform(60, 600, args.queues), strict=True))
    times_a = []
    for _ in range(max(args.repeats, 1)):
        t0 = time.perf_counter()
        result_a = staffing_table(frame, *params, patience_seconds=patience)
        times_a.append(time.perf_counter() - t0)
    erlang_a_seconds = min(times_a)
    hours = {name: float(r["agents_p50"].sum()) * interval_minutes / 60 for name, r in (("c", result), ("a", result_a))}

    n_intervals = len(frame)
    open_share = float((frame["volume_p50"] > 0).mean())
    fast_rate = n_intervals / fast_seconds
    naive_rate = n_intervals / naive_seconds
    print("## Erlang C staffing benchmark\n")
    print(f"command: `{shlex.join([sys.executable, *sys.argv])}`\n")
    print("| item | value |")
    print("|---|---|")
    print(f"| queues x days x intervals | {args.queues} x {args.days} x {args.intervals} = {n_intervals:,} rows |")
    print(f"| quantiles per row | {len(QUANTILES)} ({n_intervals * len(QUANTILES):,} searches) |")
    print(f"| open intervals | {open_share:.0%} |")
    print(f"| max agents_p90 | {int(result['agents_p90'].max())} |")
    print(f"| staffing_table (best of {len(times)}) | {fast_seconds:.3f} s, {fast_rate:,.0f} intervals/s |")
    sampled = "" if len(rows) == n_intervals else f", extrapolated from {len(rows):,} rows"
    print(f"| naive baseline | {naive_seconds:.3f} s{sampled}, {naive_rate:,.0f} intervals/s |")
    print(f"| speed-up | {fast_rate / naive_rate:,.1f}x |")
    print(f"| agents differing from baseline | {mismatches} |")
    print(f"| staffing_table, Erlang A (best of {len(times_a)}) | {erlang_a_seconds:.3f} s, "
          f"{n_intervals / erlang_a_seconds:,.0f} intervals/s, "
          f"{erlang_a_seconds / fast_seconds:.1f}x Erlang C's time |")
    print(f"| agent-hours p50, Erlang C -> Erlang A | {hours['c']:,.0f} -> {hours['a']:,.0f} "
          f"({hours['a'] / hours['c'] - 1:+.1%}) |")
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
