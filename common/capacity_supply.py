"""Supply: the FTE a queue will have week by week, from today's headcount, attrition and planned hires.

Week 1 of the plan has the headcount of today. Each week a share of everyone leaves: the weekly survival is
(1 - monthly attrition) ** (12 / 52). A hire starting in week w counts in week h >= w as survival ** (h - w) people,
productive at `ramp[h - w]` (1 once the ramp is over). The attrition rate itself is uncertain: each simulation
draws it from a Beta distribution with the configured mean and sd, the same rate for every week of that run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from common.config_capacity import CapacityConfig
from common.errors import ConfigError, DataError

WEEKS_PER_MONTH = 52 / 12


@dataclass(frozen=True)
class QueueSupply:
    """What the planner told us about one queue (headcount None: unknown, no supply or gap for it)."""

    headcount: float | None
    attrition_monthly: float
    attrition_sd: float
    hires: tuple[tuple[int, float], ...] = ()   # (week index from the plan's week 1 = 1, people)


def weekly_survival(monthly_rate: np.ndarray | float) -> np.ndarray:
    """The share of people still there a week later, for a monthly attrition rate."""
    return (1.0 - np.asarray(monthly_rate, dtype=float)) ** (1.0 / WEEKS_PER_MONTH)


def draw_attrition(mean: float, sd: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` monthly attrition rates ~ Beta with that mean and sd (all `mean` when sd is 0 or the mean is 0)."""
    if sd <= 0 or mean <= 0:
        return np.full(n, float(mean))
    variance = min(sd**2, 0.9 * mean * (1 - mean))     # a Beta needs variance < mean (1 - mean)
    k = mean * (1 - mean) / variance - 1
    return rng.beta(mean * k, (1 - mean) * k, size=n)


def supply_paths(supply: QueueSupply, weeks: int, ramp: list[float],
                 monthly_rates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(productive FTE, headcount): simulations x weeks 1..`weeks`, one simulation per attrition rate."""
    s = weekly_survival(monthly_rates)[:, None]                       # sims x 1
    h = np.arange(1, weeks + 1)[None, :]
    heads = supply.headcount * s ** (h - 1)
    productive = heads.copy()
    for week, count in supply.hires:
        since = h - week                                              # weeks since the hire started (0: first week)
        started = since >= 0
        ramp_now = np.where(since < len(ramp), np.take(np.asarray(ramp + [1.0], dtype=float),
                                                      np.clip(since, 0, len(ramp))), 1.0)
        stayed = count * s ** np.maximum(since, 0)
        heads = heads + np.where(started, stayed, 0.0)
        productive = productive + np.where(started, stayed * ramp_now, 0.0)
    return productive, heads


def queue_supplies(cfg: CapacityConfig, queues: list[str], week1: date, hires_table: pd.DataFrame | None
                   ) -> dict[str, QueueSupply]:
    """{queue: QueueSupply} from capacity.* and capacity.queues.<queue>.*, plus the hires file's rows."""
    unknown = sorted(set(cfg.queues) - set(queues))
    if unknown:
        raise ConfigError(f"capacity.queues: {', '.join(unknown)} not in silver_daily (queues: {', '.join(queues)}); "
                          "fix the name or remove it")
    out = {}
    for queue in queues:
        q = cfg.queues.get(queue)
        hires = [(h.week, h.count) for h in (q.hires if q else [])]
        if hires_table is not None:
            rows = hires_table.loc[hires_table["queue"] == queue]
            hires += list(zip(rows["week"], rows["count"], strict=True))
        out[queue] = QueueSupply(
            headcount=q.headcount if q else None,
            attrition_monthly=q.attrition_monthly if q and q.attrition_monthly is not None else cfg.attrition_monthly,
            attrition_sd=q.attrition_monthly_sd if q and q.attrition_monthly_sd is not None
            else cfg.attrition_monthly_sd,
            hires=tuple(sorted((_week_index(d, week1), float(c)) for d, c in hires)))
    return out


def _week_index(day: date, week1: date) -> int:
    """The plan week a date falls in (1 = the week starting `week1`; earlier dates count as already started)."""
    return (pd.Timestamp(day) - pd.Timestamp(week1)).days // 7 + 1


def read_hires(path: Path) -> pd.DataFrame:
    """capacity.hires_file: CSV `queue,week,count` (week: any date of the start week)."""
    try:
        frame = pd.read_csv(path, dtype={"queue": "str"})
    except FileNotFoundError:
        raise ConfigError(f"capacity.hires_file: {path} does not exist; fix the path or remove the key") from None
    missing = {"queue", "week", "count"} - set(frame.columns)
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))}; expected queue,week,count")
    weeks = pd.to_datetime(frame["week"], errors="coerce", format="ISO8601")
    counts = pd.to_numeric(frame["count"], errors="coerce")
    bad = weeks.isna() | counts.isna() | (counts <= 0) | frame["queue"].isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path}: row {row + 2} ({frame.iloc[row].to_dict()}) needs a queue, a date in week and a "
                        "count > 0; fix the row")
    return pd.DataFrame({"queue": frame["queue"].astype("str"), "week": weeks.dt.date, "count": counts.astype(float)})
