"""The capacity plan's Monte Carlo: weekly FTE need and supply as ranges, and which input drives the spread.

Each simulation draws, per queue:
- a volume multiplier per week from the plan backtest's errors at that many weeks ahead (the empirical quantile at
  a correlated uniform: a level error persists from week to week (`week_corr`) and queues move together in part
  (`queue_corr`), both measured on the backtest);
- an AHT multiplier the same way from the AHT backtest;
- shrinkage: staffing's value for the queue and month + normal(0, capacity.shrinkage_sd), clipped to [0, 0.9];
- a monthly attrition rate (`common.capacity_supply`).
FTE need = agent-hours (the staffing curve of volume x AHT) / (1 - shrinkage) / paid hours per week. A plan with
no uncertainty (one error of 0, sd 0) is the deterministic calculation; tests/test_capacity.py checks it by hand.

The spread's drivers: the same simulation is rerun with one input random and the others at their medians; each
input's share is its variance of (need - supply) over the sum of the four.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from common.capacity_staffing import StaffingCurve
from common.capacity_supply import QueueSupply, draw_attrition, supply_paths

LEVELS = np.linspace(0.0, 1.0, 101)    # the error quantile function is stored at these probabilities
MIN_SAMPLES = 20                      # fewer errors at a horizon than this: the queues' errors are pooled
WINDOW = 2                            # errors of weeks h-2 .. h+2 ahead count for week h (smoother, more samples)
DEFAULT_LOG_SD_4W = 0.10              # no backtest at all: 10% at 4 weeks, growing with sqrt(weeks)
DRIVERS = ("volume", "aht", "shrinkage", "attrition")


@dataclass
class QueueInputs:
    """One queue's plan inputs for weeks 1..H (arrays of length H; the plan keeps first_week..H)."""

    volume: np.ndarray            # the chosen method's point forecast
    open_days: np.ndarray
    aht: np.ndarray               # seconds (NaN: unknown: no FTE)
    shrinkage: np.ndarray
    volume_errors: np.ndarray     # H x len(LEVELS): quantile function of log(actual / forecast)
    aht_errors: np.ndarray
    curve: StaffingCurve
    supply: QueueSupply


@dataclass
class SimSettings:
    simulations: int
    seed: int
    paid_hours_per_week: float
    shrinkage_sd: float
    ramp: list[float]
    week_corr: float = 0.8
    queue_corr: float = 0.5
    vary: tuple[str, ...] = DRIVERS


def quantile_function(errors: pd.DataFrame, queue: str, weeks: int) -> tuple[np.ndarray, bool]:
    """H x len(LEVELS) log-error quantiles for `queue` from backtest rows (`queue, weeks_ahead, log_error`).

    Week h uses the queue's errors of weeks h-2..h+2 ahead, the pooled queues' when the queue has fewer than
    MIN_SAMPLES, and a default band (10% at 4 weeks x sqrt(h / 4), flagged) when there is no backtest at all.
    Symmetric in log scale around 0: the plan's p50 is the chosen method's forecast.
    """
    out = np.zeros((weeks, len(LEVELS)))
    default = False
    own = errors.loc[errors["queue"] == queue]
    for h in range(1, weeks + 1):
        near = own.loc[own["weeks_ahead"].between(h - WINDOW, h + WINDOW), "log_error"].to_numpy()
        if len(near) < MIN_SAMPLES:
            near = errors.loc[errors["weeks_ahead"].between(h - WINDOW, h + WINDOW), "log_error"].to_numpy()
        if len(near) < MIN_SAMPLES and len(errors):   # the longest horizons: the widest the backtest reached
            longest = errors.loc[errors["weeks_ahead"] >= errors["weeks_ahead"].max() - 2 * WINDOW, "log_error"]
            near = longest.to_numpy()
            near = near * np.sqrt(h / max(errors["weeks_ahead"].max() - WINDOW, 1))
        if len(near) < MIN_SAMPLES:
            default = True
            z = np.array([NormalDist().inv_cdf(p) for p in np.clip(LEVELS, 0.001, 0.999)])
            out[h - 1] = z * DEFAULT_LOG_SD_4W * np.sqrt(h / 4)
            continue
        out[h - 1] = np.quantile(near, LEVELS)
    # The spread of the errors, not their bias, mirrored: a bias learnt in a growing year bends the band the wrong
    # way in a falling one (Toronto 2025: 45-57% coverage with it, 52-71% without; bench/bench_capacity.py).
    centred = out - out[:, [len(LEVELS) // 2]]
    return (centred - centred[:, ::-1]) / 2, default


def correlations(errors: pd.DataFrame) -> tuple[float, float]:
    """(week-to-week, queue-to-queue) correlation of the backtest's log errors, clipped to [0, 0.95].

    Defaults 0.8 and 0.5 when the backtest has too few pairs.
    """
    if errors.empty:
        return 0.8, 0.5
    e = errors.assign(r=errors["log_error"] - errors.groupby(["queue", "weeks_ahead"])["log_error"].transform("mean"))
    wide = e.pivot_table(index=["queue", "origin"], columns="weeks_ahead", values="r")
    a, b = wide.iloc[:, :-1].to_numpy().ravel(), wide.iloc[:, 1:].to_numpy().ravel()
    ok = ~(np.isnan(a) | np.isnan(b))
    week = float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() >= 20 else 0.8
    across = e.pivot_table(index=["origin", "weeks_ahead"], columns="queue", values="r")
    queue = 0.5
    if across.shape[1] >= 2 and len(across) >= 20:
        c = across.corr(min_periods=20).to_numpy()
        off = c[~np.eye(len(c), dtype=bool)]
        off = off[np.isfinite(off)]
        queue = float(off.mean()) if len(off) else 0.5
    return tuple(float(np.clip(v if np.isfinite(v) else d, 0.0, 0.95)) for v, d in ((week, 0.8), (queue, 0.5)))


def _draw(qf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Quantile function (weeks x LEVELS) at probabilities u (sims x weeks): linear interpolation."""
    pos = np.clip(u, 0.0, 1.0) * (len(LEVELS) - 1)
    lo = np.minimum(pos.astype(int), len(LEVELS) - 2)
    frac = pos - lo
    weeks = np.arange(qf.shape[0])[None, :]
    return qf[weeks, lo] * (1 - frac) + qf[weeks, lo + 1] * frac


def _uniforms(rng: np.random.Generator, sims: int, queues: int, weeks: int, week_corr: float,
              queue_corr: float) -> np.ndarray:
    """sims x queues x weeks correlated uniforms (a Gaussian copula)."""
    centre = rng.standard_normal((sims, 1, 1))
    level = np.sqrt(queue_corr) * centre + np.sqrt(1 - queue_corr) * rng.standard_normal((sims, queues, 1))
    z = np.sqrt(week_corr) * level + np.sqrt(1 - week_corr) * rng.standard_normal((sims, queues, weeks))
    return _normal_cdf(z)


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    """Phi(z) to 1.5e-7 (Abramowitz and Stegun 7.1.26): numpy has no erf, and one formula beats a dependency."""
    x = np.abs(z) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-x * x)
    return 0.5 * (1.0 + np.sign(z) * erf)


def simulate(inputs: dict[str, QueueInputs], settings: SimSettings) -> dict[str, dict[str, np.ndarray]]:
    """{queue: {volume, aht, shrinkage, need, supply, heads}: sims x weeks} (supply NaN without a headcount).

    Inputs not in `settings.vary` stay at their medians. The random streams do not depend on `vary`, so a
    one-input rerun moves that input exactly as the full run did.
    """
    rng = np.random.default_rng(settings.seed)
    names = list(inputs)
    weeks = len(next(iter(inputs.values())).volume) if inputs else 0
    n = settings.simulations
    u_vol = _uniforms(rng, n, len(names), weeks, settings.week_corr, settings.queue_corr)
    u_aht = _uniforms(rng, n, len(names), weeks, settings.week_corr, settings.queue_corr)
    z_shr = rng.standard_normal((n, len(names), 1))
    attr_rng = np.random.default_rng([settings.seed, 1])
    out = {}
    for i, name in enumerate(names):
        q = inputs[name]
        half = np.full((n, weeks), 0.5)
        vol = q.volume * np.exp(_draw(q.volume_errors, u_vol[:, i] if "volume" in settings.vary else half))
        aht = q.aht * np.exp(_draw(q.aht_errors, u_aht[:, i] if "aht" in settings.vary else half))
        noise = z_shr[:, i] * settings.shrinkage_sd if "shrinkage" in settings.vary else 0.0
        shrink = np.clip(q.shrinkage + noise, 0.0, 0.9)
        workload = vol * aht / 3600.0
        need = q.curve.need(workload, q.open_days) / (1.0 - shrink) / settings.paid_hours_per_week
        rates = draw_attrition(q.supply.attrition_monthly, q.supply.attrition_sd, n, attr_rng)
        if "attrition" not in settings.vary:
            rates = np.full(n, float(np.median(rates)))
        if q.supply.headcount is None:
            supply = heads = np.full((n, weeks), np.nan)
        else:
            supply, heads = supply_paths(q.supply, weeks, settings.ramp, rates)
        out[name] = {"volume": vol, "aht": aht, "shrinkage": np.broadcast_to(shrink, (n, weeks)),
                     "need": need, "supply": supply, "heads": heads, "workload": workload}
    return out


def with_centre(sims: dict[str, dict[str, np.ndarray]], centre: str) -> dict[str, dict[str, np.ndarray]]:
    """The sims plus the centre: the sum of its queues in every simulation (supply: of queues with a headcount)."""
    if not sims:
        return sims
    parts = list(sims.values())
    total = {k: np.sum([p[k] for p in parts], axis=0) for k in ("volume", "need", "workload")}
    # the centre's supply only when every queue has one: a part of the staff beside all of the need is no gap
    for k in ("supply", "heads"):
        total[k] = np.sum([p[k] for p in parts], axis=0)
    work = np.where(total["volume"] > 0, total["volume"], 1.0)
    total["aht"] = np.sum([p["aht"] * p["volume"] for p in parts], axis=0) / work
    total["shrinkage"] = np.sum([p["shrinkage"] * p["need"] for p in parts], axis=0) / np.maximum(total["need"], 1e-9)
    return {**sims, centre: total}


def variance_shares(one_at_a_time: dict[str, dict], queue: str, weeks: slice) -> dict[str, float]:
    """{driver: share of the variance of the block's mean (need - supply)} from the one-input reruns."""
    var = {}
    for driver, sims in one_at_a_time.items():
        s = sims[queue]
        gap = s["need"][:, weeks].mean(axis=1) - np.nan_to_num(s["supply"][:, weeks].mean(axis=1))
        var[driver] = float(np.var(gap))
    total = sum(var.values())
    return {d: (v / total if total > 0 else np.nan) for d, v in var.items()}
