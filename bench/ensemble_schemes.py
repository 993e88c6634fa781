"""How should the ensemble's weights be learnt? Each scheme replayed out of sample on the same member forecasts.

For a data set already loaded by bench/accuracy.py (its SQLite under --work-dir), weekly origins are fitted once
each, exactly like the forecaster's inner backtest fits (every row before the origin, 14 days forecast recursively,
each member's p50 kept). A scheme is then scored as the nightly model would use it: at target origin T its weights
are learnt on the points of the origins T-14, T-21, ... (the inner backtest of a model trained on the days before
T: 8 origins, the latest one's horizon ending the day before T) and applied to T's member forecasts. Scores are
daily wMAPE on open days over the last --targets origins, pooled over queues. LightGBM alone and each member alone
are schemes too, so the table says what the combination buys.

    .venv/bin/python bench/ensemble_schemes.py --datasets us_bank_2003,odd_centre,demo
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine  # noqa: E402

from common import ensemble, silver, training  # noqa: E402
from common.config import load_config  # noqa: E402
from common.errors import DataError  # noqa: E402
from common.forecaster import QuantileForecaster  # noqa: E402

CONFIGS = {"demo": REPO / "config.yaml", "us_bank_2003": REPO / "bench/configs/us_bank_2003.yaml",
           "odd_centre": REPO / "bench/configs/odd_centre.yaml",
           "toronto_central_intake": REPO / "bench/configs/toronto_central_intake.yaml"}
HORIZON, INNER = 14, 8


def member_points(name: str, work_dir: Path, targets: int, overrides: list[str] | None = None) -> pd.DataFrame:
    """Member forecasts of every weekly origin the schemes need: one row per origin x series x date."""
    cfg = load_config(CONFIGS[name], overrides=[f"database.url=sqlite:///{(work_dir / name / 'wfm.db').resolve()}",
                                                *(overrides or [])])
    with create_engine(cfg.database_url).connect() as conn:
        daily = training.read_daily_history(conn, pd.Timestamp("2100-01-01").date())
    daily, _ = training.split_by_history(daily, cfg.training.min_history_days)
    last = daily["date"].max()
    latest = last - pd.Timedelta(days=HORIZON - 1)
    origins = [latest - pd.Timedelta(days=7 * k) for k in range(targets + HORIZON // 7 + INNER - 1)]
    holidays = silver.closed_dates_for(cfg, daily["date"].min().date(), (last + pd.Timedelta(days=366)).date())
    params = {**training.make_forecaster(cfg.training, cfg.forecast.quantiles).init_params(),
              "calibrate": False, "blend": False, "ensemble": True}
    parts = []
    for origin in sorted(origins):
        train = daily.loc[daily["date"] < origin]
        actual = daily.loc[(daily["date"] >= origin) & (daily["date"] < origin + pd.Timedelta(days=HORIZON))]
        try:
            model = QuantileForecaster(**params).fit(train, holidays, adjust=False)
        except DataError:
            continue
        actual = actual.loc[actual["series"].isin(model.categories_)]
        fc = model.forecast(train.loc[train["series"].isin(model.categories_)], actual.drop(columns="y"), holidays)
        parts.append(fc.merge(actual.loc[:, ["series", "date", "y", "is_open"]], on=["series", "date"])
                     .assign(origin=origin))
        print(f"  {name}: origin {origin.date()} fitted", flush=True)
    return pd.concat(parts, ignore_index=True)


def scheme_p50(points: pd.DataFrame, target: pd.Timestamp, scheme: dict) -> np.ndarray:
    rows = points.loc[points["origin"] == target]
    if "member" in scheme:
        return rows[ensemble.member_column(scheme["member"])].to_numpy(dtype=float)
    inner = [target - pd.Timedelta(days=HORIZON + 7 * k) for k in range(INNER)]
    pts = points.loc[points["origin"].isin(inner)]
    members = scheme.get("members", list(ensemble.MEMBERS))
    drop = [ensemble.member_column(m) for m in ensemble.MEMBERS if m not in members and m != "lightgbm"]
    weights = ensemble.learn_weights(pts.drop(columns=drop, errors="ignore"),
                                     scheme.get("shrink", ensemble.SHRINK_ORIGINS),
                                     scheme.get("half_life", ensemble.HALF_LIFE_ORIGINS),
                                     scheme.get("step", ensemble.WEIGHT_STEP), scheme.get("prior", ensemble.PRIOR),
                                     scheme.get("min_gain", ensemble.MIN_GAIN))
    return ensemble.combine(rows, weights)


EQUAL = {"prior": "equal", "min_gain": 0.0}
SCHEMES = {
    "lightgbm alone": {"member": "lightgbm"},
    "linear alone": {"member": "linear"},
    "same_weekday_mean alone": {"member": "same_weekday_mean"},
    "seasonal_naive alone": {"member": "seasonal_naive"},
    "default: prior lightgbm, shrink 1, half-life 2, no gain rule": {},
    "prior lightgbm, shrink 3, half-life 2, no gain rule": {"shrink": 3.0},
    "prior lightgbm, shrink 1, no decay, no gain rule": {"half_life": 0.0},
    "prior lightgbm, shrink 1, half-life 2, min gain 5%": {"min_gain": 0.05},
    "prior lightgbm, shrink 3, half-life 2, min gain 5%": {"shrink": 3.0, "min_gain": 0.05},
    "prior equal, shrink 1, half-life 2, no gain rule": {**EQUAL, "shrink": 1.0},
    "prior equal, shrink 1, no decay, no gain rule": {**EQUAL, "shrink": 1.0, "half_life": 0.0},
    "prior equal, shrink 3, half-life 2, no gain rule": {**EQUAL, "shrink": 3.0},
    "prior equal, shrink 1, half-life 2, min gain 5%": {"prior": "equal", "shrink": 1.0, "min_gain": 0.05},
    "default without linear": {"members": ["lightgbm", "same_weekday_mean", "seasonal_naive"]},
    "default without seasonal naive": {"members": ["lightgbm", "linear", "same_weekday_mean"]},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="us_bank_2003,odd_centre,demo")
    parser.add_argument("--work-dir", type=Path, default=REPO / "data" / "bench")
    parser.add_argument("--targets", type=int, default=8)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for the fits, e.g. training.level=window (repeatable)")
    parser.add_argument("--keep", type=Path, help="write each data set's member forecasts here (points_<name>.pkl)")
    args = parser.parse_args(argv)
    table = {}
    for name in args.datasets.split(","):
        started = time.perf_counter()
        points = member_points(name, args.work_dir, args.targets, args.overrides)
        if args.keep:
            points.to_pickle(args.keep / f"points_{name}.pkl")
        targets = sorted(points["origin"].unique())[-args.targets:]
        scored = points.loc[points["origin"].isin(targets)]
        ok = (scored["is_open"].astype(bool) & (scored["y"] > 0)).to_numpy()
        y = scored["y"].to_numpy(dtype=float)
        for label, scheme in SCHEMES.items():
            p50 = np.concatenate([scheme_p50(points, t, scheme) for t in targets])
            table.setdefault(label, {})[name] = float(np.abs(p50 - y)[ok].sum() / y[ok].sum())
        print(f"{name}: {len(targets)} target origins, {int(ok.sum())} open points "
              f"({time.perf_counter() - started:.0f}s)", flush=True)
    names = args.datasets.split(",")
    print("\n| scheme (daily wMAPE, out of sample) | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for label, scores in table.items():
        print(f"| {label} | " + " | ".join(f"{100 * scores[n]:.1f}%" for n in names) + " |")
    sets = "".join(f" --set {o}" for o in args.overrides)
    print(f"\nCommand: .venv/bin/python bench/ensemble_schemes.py --datasets {args.datasets} --targets {args.targets}{sets}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
