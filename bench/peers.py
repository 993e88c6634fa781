"""Open-source peer forecasters for bench/accuracy.py, run in their own environment (bench/requirements.txt).

statsforecast and mlforecast pin pandas < 3 while the pipeline needs pandas 3, so the peers cannot share the
project's .venv: bench/accuracy.py writes the daily history to a CSV file, runs this script with the peers'
interpreter (`bench/.venv/bin/python`), and reads the forecasts back. Every peer sees exactly the history our
model sees at each origin and forecasts the same 14 days.

Closed days (weekends, holidays, days missing from the export) have no demand to learn from, and the libraries
need a regular daily calendar: before fitting, y on closed days is filled by linear interpolation between the
neighbouring open days (the weekly season stays 7 days, no zero drags a level or a lag down); forecasts on
closed days are set to 0 afterwards (they are not scored: metrics use open days only). Library settings are the
defaults apart from what the benchmark asks for (season 7; LightGBM lags 1/7/14/28, rolling means, calendar
features, recursive; one LightGBM per quantile).

Input CSV: series, date, y, is_open. Output CSV: one row per method per origin per series per date:
method, origin, series, date, p10, p50, p90 (p10/p90 empty where the method has no band), and a JSON file of
fit+predict seconds per method per origin.

    bench/.venv/bin/python bench/peers.py --history h.csv --origins 2003-08-25,2003-09-01 --horizon 14 \
        --out fc.csv --timings t.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd

QUANTILES = (0.1, 0.5, 0.9)
LAGS = (1, 7, 14, 28)


def fill_closed(train: pd.DataFrame) -> pd.DataFrame:
    """unique_id, ds, y per series per day of `train`, closed days' y interpolated between open days."""
    parts = []
    for series, rows in train.groupby("series", sort=True):
        rows = rows.sort_values("date")
        y = rows["y"].where(rows["is_open"].astype(bool)).astype(float)
        y = y.interpolate(limit_direction="both").fillna(0.0)
        parts.append(pd.DataFrame({"unique_id": series, "ds": rows["date"].to_numpy(), "y": y.to_numpy()}))
    return pd.concat(parts, ignore_index=True)


def statsforecast_peers(filled: pd.DataFrame, horizon: int) -> dict[str, tuple[pd.DataFrame, float]]:
    from statsforecast import StatsForecast
    from statsforecast.models import MSTL, AutoETS

    out = {}
    for name, model in (("statsforecast_autoets", AutoETS(season_length=7)),
                        ("statsforecast_mstl", MSTL(season_length=7))):
        started = time.perf_counter()
        sf = StatsForecast(models=[model], freq="D", n_jobs=1)
        fc = sf.forecast(df=filled, h=horizon, level=[80])
        seconds = time.perf_counter() - started
        col = [c for c in fc.columns if c not in ("unique_id", "ds") and "-lo-" not in c and "-hi-" not in c][0]
        out[name] = (pd.DataFrame({"series": fc["unique_id"].astype(str).to_numpy(), "date": fc["ds"].to_numpy(),
                                   "p10": fc[f"{col}-lo-80"].to_numpy(), "p50": fc[col].to_numpy(),
                                   "p90": fc[f"{col}-hi-80"].to_numpy()}), seconds)
    return out


def mlforecast_peers(filled: pd.DataFrame, horizon: int, seed: int) -> dict[str, tuple[pd.DataFrame, float]]:
    from lightgbm import LGBMRegressor
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean

    def lgbm(**kw) -> LGBMRegressor:
        return LGBMRegressor(random_state=seed, n_jobs=1, verbosity=-1, deterministic=True, **kw)

    features = dict(freq="D", lags=list(LAGS),
                    lag_transforms={1: [RollingMean(window_size=7), RollingMean(window_size=28)]},
                    date_features=["dayofweek", "month", "day", "dayofyear"])
    out = {}
    started = time.perf_counter()
    models = {f"q{int(q * 100)}": lgbm(objective="quantile", alpha=q) for q in QUANTILES}
    mlf = MLForecast(models=models, **features)
    mlf.fit(filled, static_features=[])
    fc = mlf.predict(horizon)
    out["mlforecast_lgbm_quantile"] = (pd.DataFrame({
        "series": fc["unique_id"].astype(str).to_numpy(), "date": fc["ds"].to_numpy(),
        "p10": fc["q10"].to_numpy(), "p50": fc["q50"].to_numpy(), "p90": fc["q90"].to_numpy()}),
        time.perf_counter() - started)
    started = time.perf_counter()
    mlf = MLForecast(models={"l2": lgbm()}, **features)
    mlf.fit(filled, static_features=[])
    fc = mlf.predict(horizon)
    out["mlforecast_lgbm_l2"] = (pd.DataFrame({
        "series": fc["unique_id"].astype(str).to_numpy(), "date": fc["ds"].to_numpy(),
        "p10": np.nan, "p50": fc["l2"].to_numpy(), "p90": np.nan}), time.perf_counter() - started)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", required=True)
    parser.add_argument("--origins", required=True, help="comma-separated YYYY-MM-DD")
    parser.add_argument("--horizon", type=int, default=14)
    parser.add_argument("--out", required=True)
    parser.add_argument("--timings", required=True)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.getLogger("statsforecast").setLevel(logging.ERROR)
    os.environ.setdefault("NIXTLA_ID_AS_COL", "1")

    history = pd.read_csv(args.history, parse_dates=["date"], dtype={"series": str})
    parts, timings = [], {}
    for origin in [pd.Timestamp(o) for o in args.origins.split(",")]:
        train = history.loc[history["date"] < origin]
        filled = fill_closed(train)
        results = {**statsforecast_peers(filled, args.horizon), **mlforecast_peers(filled, args.horizon, args.seed)}
        for method, (fc, seconds) in results.items():
            parts.append(fc.assign(method=method, origin=origin))
            timings.setdefault(method, {})[str(origin.date())] = round(seconds, 4)
        print(f"peers: origin {origin.date()}: " + ", ".join(f"{m} {s:.2f}s" for m, (_, s) in results.items()),
              file=sys.stderr)
    out = pd.concat(parts, ignore_index=True)
    out = out.loc[:, ["method", "origin", "series", "date", "p10", "p50", "p90"]]
    out.to_csv(args.out, index=False)
    with open(args.timings, "w", encoding="utf-8") as fh:
        json.dump(timings, fh, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
