"""The capacity plan from silver and the config: inputs per queue, the Monte Carlo, and the gold rows (pure).

`make_plan` is what 6_capacity_plan.py computes; bench/bench_capacity.py runs the same function at past origins.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import pandas as pd

from common import capacity_volume as cv
from common.capacity_sim import DRIVERS, QueueInputs, SimSettings, correlations, quantile_function, simulate, \
    variance_shares, with_centre
from common.capacity_staffing import OCCUPANCY, curves, typical_week
from common.capacity_supply import queue_supplies
from common.config_schema import Config
from common.staffing_targets import row_targets
from common.tables_capacity import CENTRE

QUANTILES = {"p10": 0.1, "p50": 0.5, "p90": 0.9}


@dataclass
class Plan:
    rows: pd.DataFrame            # gold_capacity_plan without run_id and scenario
    drivers: pd.DataFrame         # gold_capacity_drivers without run_id and scenario
    methods: dict[str, str]       # queue -> volume method
    backtest_origins: int
    default_band: list[str]       # queues whose volume spread is assumed (no backtest)
    inputs: dict[str, QueueInputs]  # what the simulation drew from (the bench converts actuals to FTE with it)


def paid_hours_per_week(cfg: Config) -> float:
    return cfg.capacity.paid_hours_per_week or 5.0 * cfg.staffing.paid_hours_per_fte


def weekly_shrinkage(cfg: Config, queues: list[str], week1: date, weeks: int) -> dict[str, np.ndarray]:
    """{queue: shrinkage per week}: staffing.shrinkage with the queue's by-month and by-weekday values, averaged."""
    s = cfg.staffing
    days = pd.date_range(pd.Timestamp(week1), periods=7 * weeks, freq="D") + pd.Timedelta(hours=12)
    defaults = {"service_level": s.service_level, "answer_seconds": s.answer_seconds,
                "max_occupancy": s.max_occupancy, "asa_target_seconds": s.asa_target_seconds,
                "max_abandon_rate": s.max_abandon_rate, "shrinkage": s.shrinkage}
    targets = {q: t.model_dump(exclude_none=True) for q, t in s.queues.items()}
    out = {}
    for queue in queues:
        rows = row_targets(pd.Series([queue] * len(days)), pd.Series(days), defaults, targets)
        out[queue] = rows["shrinkage"].to_numpy().reshape(weeks, 7).mean(axis=1)
    return out


def max_occupancy(cfg: Config, queues: list[str]) -> dict[str, float]:
    s = cfg.staffing
    return {q: (s.queues[q].max_occupancy if q in s.queues and s.queues[q].max_occupancy is not None
                else s.max_occupancy) for q in queues}


def make_plan(cfg: Config, as_of: date, daily: pd.DataFrame, intervals: pd.DataFrame, calendar: pd.DataFrame,
              staffing_args: dict, hires: pd.DataFrame | None = None, progress=None,
              backtest: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> Plan:
    """The plan of `as_of` from silver_daily before it (`daily`), the last weeks of silver_interval (`intervals`),
    the open flags of the planned days (`calendar`: queue, date, is_open) and staffing_table's keyword targets.

    `backtest`: (volume, AHT) errors of a backtest run once over a longer history (bench/bench_capacity.py plans
    a year of origins): only its rows this plan could have known are used, so the plan is the same as without it.
    """
    c = cfg.capacity
    weeks = c.horizon_weeks
    panel = cv.Panel.from_daily(daily, as_of)
    origins = cv.backtest_origins(panel, as_of, c.backtest_weeks, c.min_history_weeks)
    if backtest is None:
        vol_err, aht_err = cv.backtest(panel, weeks, origins, progress)
    else:
        known = [pd.Timestamp(o) for o in origins]
        vol_err, aht_err = (cv.known_before(e.loc[e["origin"].isin(known)], as_of) for e in backtest)
    methods = cv.choose_methods(vol_err, c.first_week, weeks, cv.VOLUME_METHODS, "recent_mean")
    aht_methods = cv.choose_methods(aht_err, c.first_week, weeks, cv.AHT_METHODS, "recent")
    queues = panel.queues
    week1 = cv.first_monday(as_of)
    o = panel.index_of(week1)

    # point forecasts of every method; each queue keeps its own
    cal = calendar.assign(date=pd.to_datetime(calendar["date"]), queue=calendar["queue"].astype("str"))
    days = pd.date_range(pd.Timestamp(week1), periods=7 * weeks, freq="D")
    open_future = (cal.pivot_table(index="queue", columns="date", values="is_open", aggfunc="max")
                   .reindex(index=queues, columns=days).fillna(False).astype(bool).to_numpy())
    by_method = {m: cv.volume_forecast(panel, o, open_future, m, {}).reshape(len(queues), weeks, 7).sum(axis=2)
                 for m in cv.VOLUME_METHODS}
    calls, aht_weekly = panel.weekly()
    aht_by_method = {m: cv.aht_forecast(aht_weekly, calls.shape[1], weeks, m) for m in cv.AHT_METHODS}
    open_days = open_future.reshape(len(queues), weeks, 7).sum(axis=2)

    shrink = weekly_shrinkage(cfg, queues, week1, weeks)
    recent = slice(max(calls.shape[1] - cv.LEVEL_WEEKS, 0), calls.shape[1])
    aht_now = {q: _configured_aht(cfg, q, np.nanmean(aht_weekly[i, recent]) if np.isfinite(aht_weekly[i, recent]).any()
                                  else np.nan) for i, q in enumerate(queues)}
    workload_now = {q: float(np.nanmean(calls[i, recent]) * aht_now[q] / 3600.0) if np.isfinite(calls[i, recent]).any()
                    else np.nan for i, q in enumerate(queues)}
    occupancy = max_occupancy(cfg, queues)
    curve = curves(typical_week(intervals), queues, workload_now, aht_now, cfg.rules.interval_minutes,
                   OCCUPANCY if c.method == "occupancy" else "erlang", staffing_args, occupancy)
    supplies = queue_supplies(c, queues, week1, hires)

    chosen_vol = pd.concat([vol_err.loc[(vol_err["queue"] == q) & (vol_err["method"] == m)]
                            for q, m in methods.items()]) if methods else vol_err
    chosen_aht = pd.concat([aht_err.loc[(aht_err["queue"] == q) & (aht_err["method"] == m)]
                            for q, m in aht_methods.items()]) if aht_methods else aht_err
    inputs, default_band = {}, []
    for i, q in enumerate(queues):
        vq, vdefault = quantile_function(chosen_vol, q, weeks)
        aq, _ = quantile_function(chosen_aht, q, weeks)
        if not np.isfinite(aht_weekly[i]).any():     # no AHT in the data: a configured one, no spread to learn
            aq = np.zeros_like(aq)
        aht = aht_by_method[aht_methods.get(q, "recent")][i]
        aht = np.where(np.isfinite(aht), aht, _configured_aht(cfg, q, np.nan))
        if vdefault:
            default_band.append(q)
        inputs[q] = QueueInputs(volume=by_method[methods.get(q, "recent_mean")][i], open_days=open_days[i],
                                aht=aht, shrinkage=shrink[q], volume_errors=vq, aht_errors=aq, curve=curve[q],
                                supply=supplies[q])
    week_corr, queue_corr = correlations(chosen_vol)
    settings = SimSettings(c.simulations, c.seed, paid_hours_per_week(cfg), c.shrinkage_sd, list(c.ramp),
                           week_corr, queue_corr)
    full = with_centre(simulate(inputs, settings), CENTRE)
    alone = {d: with_centre(simulate(inputs, _only(settings, d)), CENTRE) for d in DRIVERS}

    first = c.first_week - 1
    rows = plan_rows(full, inputs, methods, week1, first, weeks, settings)
    drivers = driver_rows(full, alone, week1, c.first_week, weeks)
    return Plan(rows, drivers, methods, len(origins), default_band, inputs)


def _only(settings: SimSettings, driver: str) -> SimSettings:
    return replace(settings, vary=(driver,))


def _configured_aht(cfg: Config, queue: str, measured: float) -> float:
    """The queue's measured AHT, else capacity.queues.<queue>.aht_seconds, else forecast.default_aht_seconds (as
    step 3 staffs a queue without handled calls)."""
    q = cfg.capacity.queues.get(queue)
    if np.isfinite(measured):
        return float(measured)
    return float(q.aht_seconds) if q and q.aht_seconds else float(cfg.forecast.default_aht_seconds)


def iso_week(day: pd.Timestamp) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def plan_rows(sims: dict, inputs: dict[str, QueueInputs], methods: dict[str, str], week1: date, first: int,
              weeks: int, settings: SimSettings) -> pd.DataFrame:
    """gold_capacity_plan rows (without run_id, scenario, plan_origin) of weeks first+1..weeks."""
    starts = [pd.Timestamp(week1) + pd.Timedelta(weeks=h) for h in range(first, weeks)]
    parts = []
    for queue, s in sims.items():
        cut = {k: v[:, first:weeks] for k, v in s.items()}
        cut["gap"] = cut["supply"] - cut["need"]
        q = {k: np.nanquantile(cut[k], list(QUANTILES.values()), axis=0) if np.isfinite(cut[k]).any()
             else np.full((3, weeks - first), np.nan) for k in ("volume", "need", "supply", "gap")}
        inp = inputs.get(queue)
        open_days = inp.open_days[first:weeks] if inp else np.max([i.open_days[first:weeks] for i in inputs.values()],
                                                                   axis=0)
        frame = pd.DataFrame({
            "queue": queue, "week_start": [d.date() for d in starts], "iso_week": [iso_week(d) for d in starts],
            "weeks_ahead": np.arange(first + 1, weeks + 1), "open_days": open_days.astype(int),
            **{f"volume_{k}": q["volume"][j] for j, k in enumerate(QUANTILES)},
            "aht_seconds_p50": np.nanmedian(cut["aht"], axis=0) if np.isfinite(cut["aht"]).any() else np.nan,
            "workload_hours_p50": np.nanmedian(cut["workload"], axis=0),
            "shrinkage_p50": np.median(cut["shrinkage"], axis=0),
            **{f"fte_required_{k}": q["need"][j] for j, k in enumerate(QUANTILES)},
            "headcount_p50": np.median(cut["heads"], axis=0),
            **{f"supply_fte_{k}": q["supply"][j] for j, k in enumerate(QUANTILES)},
            **{f"gap_fte_{k}": q["gap"][j] for j, k in enumerate(QUANTILES)},
            "shortfall_probability": np.where(np.isnan(cut["supply"]).all(axis=0), np.nan,
                                              (cut["supply"] < cut["need"]).mean(axis=0)),
            "volume_method": methods.get(queue, "sum of queues") if inp else "sum of queues",
            "staffing_model": inp.curve.model if inp else "sum",
            "simulations": settings.simulations, "seed": settings.seed})
        parts.append(frame)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def blocks(first_week: int, weeks: int) -> list[tuple[int, int]]:
    """Blocks of weeks ahead the drivers are reported for: the rest of this quarter's 13 weeks, then quarters."""
    out, lo = [], first_week
    while lo <= weeks:
        hi = min((lo - 1) // 13 * 13 + 13, weeks)
        out.append((lo, hi))
        lo = hi + 1
    return out


def driver_rows(full: dict, alone: dict[str, dict], week1: date, first_week: int, weeks: int) -> pd.DataFrame:
    """gold_capacity_drivers rows: per queue and block, the mean weekly need's range and the variance shares."""
    rows = []
    for queue, s in full.items():
        for lo, hi in blocks(first_week, weeks):
            cols = slice(lo - 1, hi)
            need = s["need"][:, cols].mean(axis=1)
            supply = s["supply"][:, cols].mean(axis=1)
            shares = variance_shares(alone, queue, cols)
            if np.isnan(supply).all():
                shares["attrition"] = np.nan
            p10, p50, p90 = np.nanquantile(need, [0.1, 0.5, 0.9]) if np.isfinite(need).any() else (np.nan,) * 3
            first_day, last_day = pd.Timestamp(week1) + pd.Timedelta(weeks=lo - 1), pd.Timestamp(week1) + \
                pd.Timedelta(weeks=hi - 1)
            known = {d: v for d, v in shares.items() if np.isfinite(v)}
            main = max(known, key=known.get) if known else None
            rows.append({"queue": queue, "first_week": first_day.date(), "last_week": last_day.date(),
                         "fte_required_p10": p10, "fte_required_p50": p50, "fte_required_p90": p90,
                         "supply_fte_p50": float(np.median(supply)) if np.isfinite(supply).any() else np.nan,
                         **{f"share_{d}": shares.get(d, np.nan) for d in DRIVERS}, "main_driver": main,
                         "sentence": sentence(queue, first_day, last_day, p10, p90, supply, need, known, main)})
    return pd.DataFrame(rows)


def sentence(queue: str, first: pd.Timestamp, last: pd.Timestamp, p10: float, p90: float, supply: np.ndarray,
             need: np.ndarray, shares: dict[str, float], main: str | None) -> str:
    """"Support needs 112-131 FTE in weeks 10-22 of 2027; 120 FTE on hand (short in 35% of runs); volume drives
    70% of the spread." (what a finance partner reads)."""
    a, b = iso_week(first), iso_week(last)
    when = (f"weeks {int(a[-2:])}-{int(b[-2:])} of {a[:4]}" if a[:4] == b[:4] else f"weeks {a} to {b}")
    if not np.isfinite(p10):
        return f"{queue}: no FTE need in {when}: no AHT is known (set capacity.queues.{queue}.aht_seconds)."
    who = "The centre" if queue == CENTRE else queue
    text = f"{who} needs {p10:.0f}-{p90:.0f} FTE a week in {when}"
    if np.isfinite(supply).any():
        short = float((supply < need).mean())
        text += f"; {np.median(supply):.0f} FTE on hand (short in {short:.0%} of simulations)"
    if main is not None:
        text += f"; {main if main != 'aht' else 'AHT'} drives {shares[main]:.0%} of the spread"
    return text + "."
