"""Forecast accuracy benchmark: our pipeline against the best open-source forecasters, on real and demo data.

Every data set goes through the pipeline's normal source path (configs under bench/configs/, steps 0 and 1 on a
SQLite file under --work-dir), so the benchmark measures what users get. On silver_daily, a rolling-origin
backtest (--origins origins --step-days apart, the latest horizon ending on the last known day, --horizon days
each, as 2_train.py places them) scores side by side:

- `ours`: the QuantileForecaster with the data set's training config, retrained per origin (training.rolling_backtest,
  exactly what 2_train.py runs); when its forecast carries ensemble members (`member_<name>` p50 columns next to
  p10/p50/p90, p50 being the ensemble), each member is also scored alone as method `member_<name>` (no band);
- `published`: what step 3 publishes at each origin with that model (guards, fallback, intraday profile choice);
- `seasonal_naive`: weekly seasonal naive with its empirical band (the pipeline's fallback);
- `same_weekday_mean_4`: mean of the last 4 open same weekdays before the origin;
- the peers of bench/peers.py (statsforecast AutoETS and MSTL, season 7; mlforecast LightGBM, quantile and L2),
  run with the peers' own interpreter (--peers-python; they need pandas < 3, see bench/requirements.txt).

Metrics (common.metrics, open days = actual > 0, pooled over origins): daily wMAPE, mean 14-day total-volume
error, bias, MASE against seasonal naive, mean pinball loss over p10/p50/p90 and p10-p90 coverage for methods
with a band, fit+predict seconds over all origins, and where the data has intervals the interval wMAPE of each
method's daily p50 split by the pipeline's intraday profile (intraday.split_daily; open intervals of open days).
Each data set also gets issue 16's goal line (bench.accuracy_metrics.goal_check): the published p50's daily wMAPE
against the best of {0.9 x seasonal naive, same_weekday_mean_4, every peer}, and p10-p90 coverage within 72-88%.
Real exports are read from --shared-dir (../shared/data) and --data-dir (../data_extra); a data set whose files
are not there is skipped with the reason. The anonymous bank month is too short to train on: steps 2 and 3 run
at --as-of 1999-02-15 and the benchmark shows the flagged seasonal naive forecast they publish, scored against the
next 14 days.

Writes bench/results/accuracy_<timestamp>.json and .md and prints the Markdown and the command that made it.

    .venv/bin/python bench/accuracy.py                         # every data set, 8 origins
    .venv/bin/python bench/accuracy.py --datasets us_bank_2003 --no-peers --set training.target=raw
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run as a script from anywhere

from bench.accuracy_data import (DATASETS, DEMO_END, EXTRA_DIR, SHARED_DIR, DataSet, Inputs, data_glob,  # noqa: E402
                                 load_inputs, missing_data, prepare, run_step)
from bench.accuracy_intraday import compare_profiles, split_intervals  # noqa: E402
from bench.accuracy_metrics import (MEAN4, NAIVE, OURS, PUBLISHED, QCOLS, critical_miss_rates,  # noqa: E402
                                    goal_check, interval_wmape, member_forecasts, method_metrics)
from bench.accuracy_report import (critical_markdown, fallback_markdown, goal_markdown, json_ready,  # noqa: E402
                                   metrics_markdown, profiles_markdown, published_markdown)
from common import db, forecast_run, tables, training  # noqa: E402
from common.baselines import seasonal_naive_forecast  # noqa: E402
from common.config import load_config  # noqa: E402
from common.metrics import coverage, open_mask, wmape  # noqa: E402

log = logging.getLogger("bench.accuracy")

DEFAULT_PEERS_PYTHON = REPO / "bench" / ".venv" / "bin" / "python"


# --- forecasts -------------------------------------------------------------------------------------------

def origins_for(history: pd.DataFrame, count: int, horizon: int, step_days: int) -> list[pd.Timestamp]:
    """Backtest origins placed as 2_train.py places them (the latest horizon ends on the last day)."""
    return training.backtest_origins(history["date"].min(), history["date"].max(), count, horizon, step_days)


def same_weekday_mean(train: pd.DataFrame, future: pd.DataFrame, weeks: int = 4) -> pd.DataFrame:
    """Mean of the last `weeks` open same weekdays before the origin: one row per series per future date.

    A weekday without an open day in those weeks gets the mean of the open days of the last 28 days; closed
    future days are 0. Point forecast only (p10/p90 NaN).
    """
    parts = []
    for series, fut in future.groupby("series", sort=True):
        h = train.loc[(train["series"] == series) & train["is_open"].astype(bool) & train["y"].notna()]
        end = train.loc[train["series"] == series, "date"].max()
        recent = h.loc[h["date"] > end - pd.Timedelta(days=7 * weeks)]
        by_weekday = recent.groupby(recent["date"].dt.day_of_week)["y"].mean()
        fallback = float(h.loc[h["date"] > end - pd.Timedelta(days=28), "y"].mean()) if len(h) else 0.0
        point = fut["date"].dt.day_of_week.map(by_weekday).fillna(fallback if np.isfinite(fallback) else 0.0)
        point = np.where(fut["is_open"].to_numpy(dtype=bool), point.to_numpy(dtype=float), 0.0)
        parts.append(pd.DataFrame({"series": series, "date": fut["date"].to_numpy(), "p10": np.nan, "p50": point,
                                   "p90": np.nan}))
    return pd.concat(parts, ignore_index=True)


def backtest_ours(inputs: Inputs, origins: Sequence[pd.Timestamp], horizon: int,
                  with_model: bool = True) -> tuple[pd.DataFrame, dict[str, float]]:
    """Our model (as 2_train.py backtests it), seasonal naive and the 4-week mean at each origin.

    Grain: one row per method per origin per series per date: method, origin, series, date, y, is_open, p10,
    p50, p90. Also seconds of fit+predict per method over all origins.
    """
    cfg = inputs.cfg
    make_model = partial(training.make_forecaster, cfg.training, cfg.forecast.quantiles)
    hist = inputs.history
    parts, seconds, fallbacks, published_intervals = [], {OURS: 0.0, NAIVE: 0.0, MEAN4: 0.0}, [], []
    for origin in origins:
        train = hist.loc[hist["date"] < origin]
        actual = hist.loc[(hist["date"] >= origin) & (hist["date"] < origin + pd.Timedelta(days=horizon))]
        future = actual.drop(columns="y")
        started = time.perf_counter()
        naive = seasonal_naive_forecast(train, future, cfg.forecast.quantiles)
        seconds[NAIVE] += time.perf_counter() - started
        started = time.perf_counter()
        mean4 = same_weekday_mean(train, future)
        seconds[MEAN4] += time.perf_counter() - started
        forecasts = {NAIVE: naive, MEAN4: mean4}
        if with_model:
            started = time.perf_counter()
            model = make_model().fit(train, inputs.holidays)
            forecasts[OURS] = model.forecast(train, future, inputs.holidays)
            seconds[OURS] += time.perf_counter() - started
            forecasts.update(member_forecasts(forecasts[OURS]))  # an ensemble's members, each scored alone
            started = time.perf_counter()
            published, why, split = publish(inputs, model, origin, horizon)
            published_intervals.append(split)
            seconds[PUBLISHED] = seconds.get(PUBLISHED, 0.0) + time.perf_counter() - started
            forecasts[PUBLISHED] = published
            fallbacks.append(why)
        for method, fc in forecasts.items():
            fc = fc.loc[:, ["series", "date", *QCOLS]].merge(
                actual.loc[:, ["series", "date", "y", "is_open"]], on=["series", "date"], how="left")
            parts.append(fc.assign(method=method, origin=origin))
        log.info("origin %s: %s", origin.date(), ", ".join(forecasts))
    if not with_model:
        seconds.pop(OURS)
    why = pd.concat(fallbacks, ignore_index=True) if fallbacks else pd.DataFrame()
    intervals = pd.concat(published_intervals, ignore_index=True) if published_intervals else pd.DataFrame()
    return pd.concat(parts, ignore_index=True), seconds, why, intervals


def publish(inputs: Inputs, model, origin: pd.Timestamp,
            horizon: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """What step 3 publishes at `origin` with `model` as production (common.forecast_run.build_forecast: guards,
    fallback, profile choice): (forecast: series, date, p10, p50, p90; one row per queue: origin, queue, method,
    fallback_reason, intraday profiles used; the published intervals in `split_intervals`' columns)."""
    hist = inputs.history
    daily = hist.loc[hist["date"] < origin].rename(columns={"series": "queue", "y": "offered"}).loc[
        :, ["queue", "date", "offered", "is_open", "is_holiday"]]
    ints = inputs.intervals
    ints = ints.loc[(ints["date"] < origin)
                    & (ints["date"] >= origin - pd.Timedelta(weeks=forecast_run.history_weeks(inputs.cfg)))]
    cfg = inputs.cfg.model_copy(update={"forecast": inputs.cfg.forecast.model_copy(update={"horizon_days": horizon})})
    run = forecast_run.build_forecast(cfg, origin.date(), daily, ints, None, model, "bench", None)
    fc = run.forecast
    per_queue = fc.groupby("queue", sort=True).agg(
        method=("method", "first"), fallback_reason=("fallback_reason", "first"),
        profiles=("intraday_profile", lambda v: ", ".join(sorted(set(v.dropna()) - {"same_weekday"}))))
    why = per_queue.reset_index().assign(origin=origin)
    actual = inputs.intervals.loc[:, ["queue", "interval_start_utc", "offered"]].rename(columns={"offered": "y"})
    split = run.intervals.merge(actual, on=["queue", "interval_start_utc"], how="left").assign(
        method=PUBLISHED, origin=origin).loc[:, ["queue", "date", "interval_start", "is_open", "p50", "y", "method",
                                                 "origin"]]
    return fc.rename(columns={"queue": "series"}).loc[:, ["series", "date", *QCOLS]], why, split


def run_peers(history: pd.DataFrame, origins: Sequence[pd.Timestamp], horizon: int,
              python: Path) -> tuple[pd.DataFrame, dict[str, float]]:
    """bench/peers.py under the peers' interpreter: forecasts (method, origin, series, date, p10, p50, p90), seconds."""
    with tempfile.TemporaryDirectory(prefix="wfm_peers_") as tmp:
        tmp = Path(tmp)
        history.loc[:, ["series", "date", "y", "is_open"]].assign(
            is_open=history["is_open"].astype(int), date=history["date"].dt.strftime("%Y-%m-%d")).to_csv(
            tmp / "history.csv", index=False)
        cmd = [str(python), str(REPO / "bench" / "peers.py"), "--history", str(tmp / "history.csv"),
               "--origins", ",".join(str(o.date()) for o in origins), "--horizon", str(horizon),
               "--out", str(tmp / "forecast.csv"), "--timings", str(tmp / "timings.json")]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"peers failed ({shlex.join(cmd)}):\n{done.stderr[-3000:]}")
        fc = pd.read_csv(tmp / "forecast.csv", parse_dates=["origin", "date"], dtype={"series": "str"})
        timings = json.loads((tmp / "timings.json").read_text())
    fc = fc.astype({"date": "datetime64[ns]", "origin": "datetime64[ns]"})
    return fc, {m: float(sum(v.values())) for m, v in timings.items()}


def score_peers(peers: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Peer forecasts joined to the actuals, closed days 0 by rule and values clipped at 0 (as ours are)."""
    fc = peers.merge(history.loc[:, ["series", "date", "y", "is_open"]], on=["series", "date"], how="left")
    is_open = fc["is_open"].astype(bool).to_numpy()
    values = {q: np.where(is_open, np.clip(fc[q].to_numpy(dtype=float), 0, None), 0.0) for q in QCOLS}
    values = {q: np.where(fc[q].isna().to_numpy(), np.nan, v) for q, v in values.items()}
    return fc.assign(**values)


def backtest_dataset(inputs: Inputs, origins: int = 8, horizon: int = 14, step_days: int = 7,
                     peers_python: Path | None = None, with_model: bool = True,
                     intervals: bool = True) -> dict:
    """The whole comparison on one data set: {"origins", "frame", "metrics" (DataFrame), "interval_wmape"}."""
    points = origins_for(inputs.history, origins, horizon, step_days)
    frame, seconds, fallbacks, published_split = backtest_ours(inputs, points, horizon, with_model)
    if peers_python is not None:
        peers, peer_seconds = run_peers(inputs.history, points, horizon, peers_python)
        frame = pd.concat([frame, score_peers(peers, inputs.history)], ignore_index=True)
        seconds.update(peer_seconds)
    metrics = method_metrics(frame, seconds)
    int_wmape = {}
    if intervals and len(inputs.intervals):
        split = split_intervals(frame.loc[frame["method"] != PUBLISHED], inputs)
        # the published intervals are step 3's own: split by the profile it chose per queue and weekday
        split = pd.concat([split, published_split], ignore_index=True)
        int_wmape = interval_wmape(split, frame)
        # the split's own error: the profile applied to the actual daily totals
        oracle = frame.loc[frame["method"] == NAIVE].assign(p50=lambda f: f["y"], method="actual_daily")
        int_wmape["actual daily x profile"] = interval_wmape(split_intervals(oracle, inputs), oracle)["actual_daily"]
    metrics = metrics.assign(interval_wmape=metrics["method"].map(int_wmape))
    return {"origins": points, "frame": frame, "metrics": metrics, "interval_wmape": int_wmape,
            "fallbacks": fallbacks}


def fallback_dataset(config: Path, overrides: Sequence[str], dataset: DataSet, cfg_overrides: Sequence[str],
                     horizon: int = 14) -> pd.DataFrame:
    """Steps 2 and 3 at `dataset.fallback_as_of`; gold_forecast_daily of that origin next to the actuals.

    Grain: one row per queue: method, fallback_reason, open days, wMAPE, coverage over the horizon.
    """
    as_of = dataset.fallback_as_of
    sets = [*overrides, *cfg_overrides]
    # --publish: the bench measures what the nightly run would publish with these settings, not a what-if
    run_step("2_train", config, as_of, sets, "--publish")
    run_step("3_forecast", config, as_of, sets, "--publish")
    cfg = load_config(config, sets)
    engine = db.make_engine(cfg.database_url)
    with engine.connect() as conn:
        g = tables.gold_forecast_daily
        fc = db.read_table(conn, g, where=g.c.forecast_origin == as_of)
        s = tables.silver_daily
        actual = db.read_table(conn, s, where=(s.c.date >= as_of) & (s.c.date < as_of + timedelta(days=horizon)),
                               columns=["queue", "date", "offered", "is_open"])
        r = tables.pipeline_runs
        runs = db.read_table(conn, r, where=(r.c.step == "2_train") & (r.c.as_of == as_of))
    engine.dispose()
    train_note = str(runs.sort_values("started_at")["message"].iloc[-1]) if len(runs) else "2_train did not run"
    fc = fc.merge(actual, on=["queue", "date"], how="left").rename(columns={"offered": "y"})
    rows = []
    for queue, g in fc.groupby("queue", sort=True):
        m = open_mask(g)
        rows.append({"queue": queue, "method": ", ".join(sorted(g["method"].unique())),
                     "fallback_reason": "; ".join(sorted(g["fallback_reason"].dropna().unique())),
                     "open_days": int(m.sum()), "actual": float(g["y"].to_numpy(dtype=float)[m].sum()),
                     "p50": float(g["p50"].to_numpy(dtype=float)[m].sum()), "wmape": wmape(g, m),
                     "coverage": coverage(g, m)})
    return pd.DataFrame(rows).assign(train_step=train_note)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated, of {', '.join(DATASETS)}")
    parser.add_argument("--origins", type=int, default=8)
    parser.add_argument("--horizon", type=int, default=14)
    parser.add_argument("--step-days", type=int, default=7)
    parser.add_argument("--peers-python", type=Path, default=DEFAULT_PEERS_PYTHON,
                        help="interpreter with bench/requirements.txt installed (default bench/.venv/bin/python)")
    parser.add_argument("--no-peers", action="store_true", help="skip statsforecast/mlforecast")
    parser.add_argument("--set", action="append", default=[], dest="cfg_overrides", metavar="KEY=VALUE",
                        help="config override for our model on every data set, e.g. training.target=raw")
    parser.add_argument("--shared-dir", type=Path, default=SHARED_DIR,
                        help=f"folder of the shared real exports (default {SHARED_DIR}, or WFM_BENCH_SHARED_DIR)")
    parser.add_argument("--data-dir", type=Path, default=EXTRA_DIR,
                        help=f"folder of further public exports, one folder each (default {EXTRA_DIR}, or "
                             "WFM_BENCH_DATA_DIR)")
    parser.add_argument("--work-dir", type=Path, default=REPO / "data" / "bench",
                        help="SQLite files and demo CSVs (kept: re-runs reuse the loaded bronze/silver)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--demo-days", type=int, default=730)
    parser.add_argument("--demo-seed", type=int, default=42, help="the demo generator's seed (robustness checks)")
    parser.add_argument("--demo-end", type=date.fromisoformat, default=DEMO_END,
                        help=f"last day of the demo data (default {DEMO_END}); the origins end there")
    parser.add_argument("--profiles", action="store_true",
                        help="also compare intraday profile variants (30-minute wMAPE of our daily p50 split)")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.pop("WFM_DB_URL", None)  # it would win over the benchmark's own database files
    command = shlex.join([".venv/bin/python", "bench/accuracy.py", *(sys.argv[1:] if argv is None else argv)])
    peers_python = None if args.no_peers else args.peers_python
    if peers_python is not None and not Path(peers_python).exists():
        print(f"accuracy: peers interpreter {peers_python} not found; create it with\n"
              f"  python3 -m venv bench/.venv && bench/.venv/bin/pip install -r bench/requirements.txt\n"
              "or pass --no-peers", file=sys.stderr)
        return 2
    results, sections = {"command": command, "created": datetime.now().isoformat(timespec="seconds"),
                         "origins": args.origins, "horizon": args.horizon, "step_days": args.step_days,
                         "overrides": args.cfg_overrides, "datasets": {}}, []
    for name in [n.strip() for n in args.datasets.split(",") if n.strip()]:
        dataset = DATASETS[name]
        if name == "demo" and (args.demo_seed, args.demo_end) != (42, DEMO_END):
            # Another draw or season of the generator (robustness): its own folder under --work-dir.
            dataset = replace(dataset, name=f"demo_seed{args.demo_seed}_{args.demo_end}",
                              as_of=args.demo_end + timedelta(days=1),
                              description=f"generated demo CDRs (common.demo, seed {args.demo_seed}): 4 queues, "
                                          f"{args.demo_days} days to {args.demo_end}")
        files = data_glob(dataset, args.shared_dir, args.data_dir)
        skip = missing_data(dataset, files)
        if skip:
            log.warning("%s skipped: %s", name, skip)
            results["datasets"][name] = {"skipped": skip}
            sections.append(f"### {name}: {dataset.description}\n\nSkipped: {skip}")
            continue
        config, overrides = prepare(dataset, args.work_dir, args.demo_days, args.demo_seed, files)
        if dataset.mode == "fallback":
            table = fallback_dataset(config, overrides, dataset, args.cfg_overrides, args.horizon)
            results["datasets"][name] = {"as_of": dataset.fallback_as_of, "queues": table}
            sections.append(f"### {name}: {dataset.description}\n\nSteps 2 and 3 at as-of {dataset.fallback_as_of} "
                            f"(14 days of history), scored on the next {args.horizon} days. 2_train: "
                            f"{table['train_step'].iloc[0]}\n\n" + fallback_markdown(table))
            continue
        inputs = load_inputs(config, overrides, dataset.as_of, args.cfg_overrides)
        out = backtest_dataset(inputs, args.origins, args.horizon, args.step_days, peers_python)
        rates = critical_miss_rates(out["frame"])
        goal = goal_check(out["metrics"])
        results["datasets"][name] = {"origins": out["origins"], "metrics": out["metrics"],
                                     "interval_wmape": out["interval_wmape"],
                                     "left_out_queues": inputs.left_out, "published": out["fallbacks"],
                                     "critical_misses": rates, "goal": goal}
        o = out["origins"]
        profiles = ""
        if args.profiles and len(inputs.intervals):
            table = compare_profiles(out["frame"], inputs)
            results["datasets"][name]["profiles"] = table
            profiles = "\n\n30-minute wMAPE by intraday profile (same origins):\n\n" + profiles_markdown(table)
        sections.append(f"### {name}: {dataset.description}\n\n{len(o)} origins {o[0].date()} .. {o[-1].date()}, "
                        f"{args.horizon}-day horizon, {out['metrics']['n_points'].iloc[0]} open forecast days per "
                        f"method\n\n" + metrics_markdown(out["metrics"], out["interval_wmape"]) + "\n\n"
                        + goal_markdown(goal) + "\n\n" + published_markdown(out["fallbacks"]) + "\n\n"
                        + critical_markdown(rates) + profiles)
    markdown = "\n\n".join(sections) + f"\n\nCommand: `{command}`\n"
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    for n in range(1, 1000):  # two runs started in the same second must not overwrite each other
        name = f"accuracy_{stamp}" + (f"_{n}" if n > 1 else "")
        try:
            with open(args.out / f"{name}.md", "x", encoding="utf-8") as handle:
                handle.write(markdown)
            break
        except FileExistsError:
            continue
    (args.out / f"{name}.json").write_text(json.dumps(json_ready(results), indent=1) + "\n")
    print(markdown)
    print(f"written: {args.out / f'{name}.md'} and .json\ncommand: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
