"""Time step 2's work (final fit + rolling-origin backtest with production scoring) on synthetic daily data.

The data: `--queues` queues of lognormal size over `--days` days, a per-queue
weekly shape (a few queues also open on Saturdays), yearly seasonality, a
slow trend, Swedish public holidays closed, negative-binomial noise. A
"production" model trained `--production-age-days` before the as-of gives the
production setup, retrained at every origin next to the candidate as 2_train.py
does (free when it is the candidate's setup; `--production-level` makes it another).
Reported: wall time per stage, peak memory (max RSS; `--tracemalloc` adds the
Python-heap peak, slower), and the backtest accuracy table.

    .venv/bin/python bench/bench_train.py --queues 50 --days 730 --origins 4
"""

from __future__ import annotations

import argparse
import resource
import shlex
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common import training  # noqa: E402
from common.config_schema import TrainingConfig  # noqa: E402
from common.public_holidays import holiday_calendar  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queues", type=int, default=50)
    parser.add_argument("--days", type=int, default=730, help="days of history before the as-of")
    parser.add_argument("--origins", type=int, default=4, help="training.backtest_origins")
    parser.add_argument("--horizon", type=int, default=14)
    parser.add_argument("--threads", type=int, default=1, help="training.num_threads")
    parser.add_argument("--n-estimators", type=int, default=None, help="override the default 300 trees")
    parser.add_argument("--no-retrain", action="store_true", help="training.retrain_per_origin = false")
    parser.add_argument("--no-production", action="store_true", help="skip scoring a production model")
    parser.add_argument("--production-age-days", type=int, default=21,
                        help="the production model was trained this many days before the as-of (its setup is "
                             "what is compared, retrained per origin)")
    parser.add_argument("--production-level", choices=("seasonal", "window"), default=None,
                        help="the production model's training.level (default: the candidate's, so the same setup: "
                             "production's backtest is the candidate's, no extra fits)")
    parser.add_argument("--baseline", action="store_true",
                        help="also time the final fit + backtest without the shared calibration cache (as before it), "
                             "in this process, and check that both give the same bands")
    parser.add_argument("--level", choices=("seasonal", "window"), default=None,
                        help="training.level (default: the config default)")
    parser.add_argument("--level-baseline", action="store_true",
                        help="also time the final fit + backtest with training.level: window (the 28-day level), "
                             "in this process, and compare accuracy")
    parser.add_argument("--ensemble-baseline", action="store_true",
                        help="also fit + backtest with training.ensemble off (LightGBM alone) and report the ratio")
    parser.add_argument("--tracemalloc", action="store_true", help="also measure the Python heap peak (slower)")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def make_history(queues: int, days: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """(one row per queue per date: series, date, y, is_open, is_holiday; closed dates; the as-of)."""
    rng = np.random.default_rng(seed)
    as_of = pd.Timestamp("2025-03-10")
    dates = pd.date_range(as_of - pd.Timedelta(days=days), periods=days, freq="D")
    holidays = holiday_calendar("SE", None, [], range(dates[0].year, as_of.year + 2))
    is_holiday = dates.isin(holidays["date"])
    weekday = dates.day_of_week.to_numpy()
    t = np.arange(days) / 365.25
    parts = []
    for i in range(queues):
        size = rng.lognormal(5.0, 1.0)
        week = np.array([1.25, 1.1, 1.0, 0.95, 0.85, 0.45, 0.3]) * rng.uniform(0.9, 1.1, 7)
        open_days = weekday < (6 if rng.random() < 0.2 else 5)
        is_open = open_days & ~is_holiday
        season = 1 + rng.uniform(0.05, 0.25) * np.cos(2 * np.pi * (t - rng.uniform(0, 1)))
        trend = 1 + rng.uniform(-0.1, 0.2) * t
        mean = size * week[weekday] * season * trend
        y = rng.negative_binomial(200, 200 / (200 + mean))  # mean `mean`, a little over-dispersed
        parts.append(pd.DataFrame({"series": f"Q{i:03d}", "date": dates, "y": np.where(is_open, y, 0).astype(float),
                                   "is_open": is_open, "is_holiday": is_holiday}))
    return pd.concat(parts, ignore_index=True), holidays, as_of


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print("command:", shlex.join([sys.executable, *sys.argv]))
    if args.tracemalloc:
        tracemalloc.start()
    started = time.perf_counter()
    history, holidays, as_of = make_history(args.queues, args.days, args.seed)
    params = {} if args.n_estimators is None else {"n_estimators": args.n_estimators}
    cfg = TrainingConfig(backtest_origins=args.origins, num_threads=args.threads, params=params,
                         retrain_per_origin=not args.no_retrain, **({"level": args.level} if args.level else {}))

    def make_model():
        return training.make_forecaster(cfg, (0.1, 0.5, 0.9))

    old, production = None, None
    setup_seconds = time.perf_counter() - started
    if not args.no_production:
        t0 = time.perf_counter()
        old_cfg = cfg.model_copy(update={"level": args.production_level}) if args.production_level else cfg
        old = training.make_forecaster(old_cfg, (0.1, 0.5, 0.9)).fit(
            history.loc[history["date"] < as_of - pd.Timedelta(days=args.production_age_days)], holidays)
        production = training.production_setup("v-old", old, make_model(), None)
        setup_seconds += time.perf_counter() - t0
    first, last = history["date"].min(), history["date"].max()
    origins = training.backtest_origins(first, last, args.origins, args.horizon, cfg.backtest_step_days)

    def fit_and_backtest(setup: TrainingConfig):
        """What 2_train.py does: the final fit, then the backtest sharing its calibration (timed apart)."""
        t0 = time.perf_counter()
        cache = training.CalibrationCache()
        fitted = training.make_forecaster(setup, (0.1, 0.5, 0.9)).fit(history, holidays, calibration_cache=cache)
        t1 = time.perf_counter()
        backtest = training.rolling_backtest(
            history, holidays, lambda: training.make_forecaster(setup, (0.1, 0.5, 0.9)), origins, args.horizon,
            setup.retrain_per_origin, calibration_cache=cache,
            production=None if old is None else training.production_setup("v-old", old, fitted, None))
        return fitted, cache, backtest, t1 - t0, time.perf_counter() - t1

    model, cache, result, fit_seconds, backtest_seconds = fit_and_backtest(cfg)
    version = training.model_version(as_of.date(), training.data_hash(history, holidays), training.model_params(model))
    t0 = time.perf_counter()
    frame = result.frame
    overall = training.backtest_metrics(frame.loc[frame["method"] != training.PRODUCTION])["overall"]
    metrics_seconds = time.perf_counter() - t0
    step_seconds = fit_seconds + backtest_seconds + metrics_seconds

    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    heap = f", Python heap peak {tracemalloc.get_traced_memory()[1] / 2**20:.0f} MiB" if args.tracemalloc else ""
    print(f"data: {args.queues} queues x {args.days} days = {len(history)} rows ({int(history['is_open'].sum())} open), "
          f"{model.n_train_rows_} training rows, {len(model.feature_names_)} features, version {version}")
    print(f"backtest: {len(origins)} origins {origins[0].date()}..{origins[-1].date()} x {args.horizon} days, "
          f"retrain_per_origin={cfg.retrain_per_origin}, threads={args.threads}, "
          f"trees={model.lightgbm_params_['num_boost_round']}")
    print(f"time: final fit {fit_seconds:.1f}s + backtest {backtest_seconds:.1f}s + metrics {metrics_seconds:.1f}s "
          f"= {step_seconds:.1f}s (setup: data + production model {setup_seconds:.1f}s)")
    print(f"memory: max RSS {maxrss_mb:.0f} MiB{heap}")
    rows = {"candidate": overall["candidate"], "seasonal_naive": overall["seasonal_naive"]}
    if production is not None and (frame["method"] == training.PRODUCTION).any():
        tag = "the same setup" if production.same_as_candidate else f"changed: {', '.join(production.changes)}"
        prod = training.backtest_metrics(frame.loc[frame["method"] == training.PRODUCTION])["overall"]
        rows[f"production's setup ({tag}; retrained per origin)"] = prod["production"]
    print(training.format_accuracy(rows))
    if args.baseline:
        t0 = time.perf_counter()
        plain = make_model().fit(history, holidays)
        plain_result = training.rolling_backtest(history, holidays, make_model, origins, args.horizon,
                                                 cfg.retrain_per_origin, production=production)
        plain_seconds = time.perf_counter() - t0
        same = plain.adjustments_ == model.adjustments_ and plain_result.frame.equals(result.frame)
        print(f"calibration cache: inner forecasts computed {cache.misses}x, reused {cache.hits}x, backtest models "
              f"adopted {cache.models_reused}x; fit + backtest "
              f"{fit_seconds + backtest_seconds:.1f}s vs {plain_seconds:.1f}s without the cache "
              f"({plain_seconds / (fit_seconds + backtest_seconds):.1f}x faster); same bands and backtest: {same}")
        if not same:
            return 1
    if args.level_baseline:
        _, _, window_result, *seconds = fit_and_backtest(cfg.model_copy(update={"level": "window"}))
        window_seconds = sum(seconds)
        ours = training.backtest_metrics(window_result.frame)["overall"]["candidate"]
        print(f"level: {cfg.level} fit + backtest {fit_seconds + backtest_seconds:.1f}s, wMAPE "
              f"{overall['candidate']['wmape']:.2%} vs window {window_seconds:.1f}s, wMAPE {ours['wmape']:.2%} "
              f"({(fit_seconds + backtest_seconds) / window_seconds:.2f}x the time)")
    if args.ensemble_baseline:
        _, _, alone_result, *seconds = fit_and_backtest(cfg.model_copy(update={"ensemble": False}))
        alone_seconds = sum(seconds)
        alone = training.backtest_metrics(alone_result.frame)["overall"]["candidate"]
        print(f"ensemble: {cfg.ensemble} fit + backtest {fit_seconds + backtest_seconds:.1f}s, wMAPE "
              f"{overall['candidate']['wmape']:.2%} vs LightGBM alone {alone_seconds:.1f}s, wMAPE "
              f"{alone['wmape']:.2%} ({(fit_seconds + backtest_seconds) / alone_seconds:.2f}x the time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
