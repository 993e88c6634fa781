"""From weekly workload to the agent-hours the service targets need, through the pipeline's own staffing model.

Erlang staffing is not linear: a small queue needs proportionally more agents than a big one, and the intraday peak
sets the staff, not the weekly mean. So each queue gets a curve: its typical week (the share of the week's calls in
each weekday x interval over the last 8 weeks of silver_interval) is scaled to 15 weekly workloads, from a third to
three times today's, and `staffing.staffing_table` (Erlang A with the queue's patience, else Erlang C, with the
queue's targets) staffs every interval. A simulated week's agent-hours are read off the curve (log-log
interpolation). A week with fewer open days packs its workload into those days: (open / usual open) x
curve(workload x usual open / open).

Queues without interval history (daily totals only), or `capacity.method: occupancy`, need workload / max occupancy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from common.staffing import staffing_table

GRID = np.r_[np.geomspace(1 / 3, 1.0, 8), np.geomspace(1.0, 3.0, 8)[1:]]   # workloads tried, x today's (1 on it)
PROFILE_WEEKS = 8
ERLANG, OCCUPANCY = "erlang", "occupancy"


@dataclass(frozen=True)
class StaffingCurve:
    """Agent-hours a week needs as a function of its workload hours (one queue)."""

    model: str                       # erlang_a | erlang_c | occupancy
    open_days: float                 # the typical week's open days
    workload: np.ndarray             # hours, increasing
    agent_hours: np.ndarray
    max_occupancy: float

    def need(self, workload: np.ndarray, open_days: np.ndarray) -> np.ndarray:
        """Agent-hours for these weekly workloads (any shape; open_days broadcasts against it)."""
        workload = np.asarray(workload, dtype=float)
        open_days = np.broadcast_to(np.asarray(open_days, dtype=float), workload.shape)
        if self.model == "occupancy" or not len(self.workload):
            return workload / self.max_occupancy
        scale = np.where(open_days > 0, self.open_days / np.maximum(open_days, 1e-9), 0.0)
        packed = np.maximum(workload * scale, 1e-9)
        log_w, log_a = np.log(self.workload), np.log(self.agent_hours)
        # beyond the grid: the ratio agent-hours / workload of its end (staffing is ~linear far from it)
        ratio = np.exp(np.interp(np.log(packed), log_w, log_a - log_w))
        return np.where(open_days > 0, packed * ratio / np.maximum(scale, 1e-9), 0.0)


def typical_week(intervals: pd.DataFrame) -> pd.DataFrame:
    """`queue, weekday, slot, share, interval_start` of the last PROFILE_WEEKS weeks: each queue's shares sum to 1.

    `interval_start` is one real interval start of that weekday and slot (the targets can depend on the month and
    weekday: shrinkage_by_weekday).
    """
    if intervals.empty:
        return pd.DataFrame(columns=["queue", "weekday", "slot", "share", "interval_start"])
    i = intervals.loc[intervals["is_open"].astype(bool)].copy()
    start = pd.to_datetime(i["interval_start"])
    i = i.loc[start > start.max() - pd.Timedelta(weeks=PROFILE_WEEKS)]
    start = pd.to_datetime(i["interval_start"])
    i = i.assign(weekday=start.dt.day_of_week, slot=start.dt.hour * 60 + start.dt.minute, interval_start=start)
    g = i.groupby(["queue", "weekday", "slot"], sort=True).agg(calls=("offered", "sum"),
                                                               interval_start=("interval_start", "max")).reset_index()
    total = g.groupby("queue")["calls"].transform("sum")
    g = g.loc[total > 0]
    return g.assign(share=g["calls"] / total[total > 0]).drop(columns="calls").astype({"queue": "str"})


def curves(week: pd.DataFrame, queues: list[str], workload_now: Mapping[str, float], aht_now: Mapping[str, float],
           interval_minutes: int, method: str, staffing_args: dict, max_occupancy: Mapping[str, float]
           ) -> dict[str, StaffingCurve]:
    """{queue: its curve}: Erlang on the typical week where the queue has one and a known AHT, else occupancy.

    `staffing_args`: staffing_table's targets and options (positional targets as keywords, plus model, patience,
    queue_targets). `workload_now`: each queue's recent weekly workload hours (the grid's centre).
    """
    out: dict[str, StaffingCurve] = {}
    frames = []
    for queue in queues:
        rows = week.loc[week["queue"] == queue]
        w0, aht = workload_now.get(queue, np.nan), aht_now.get(queue, np.nan)
        if method == OCCUPANCY or rows.empty or not (np.isfinite(w0) and w0 > 0 and np.isfinite(aht) and aht > 0):
            out[queue] = StaffingCurve("occupancy", 0.0, np.array([]), np.array([]), max_occupancy[queue])
            continue
        for k, factor in enumerate(GRID):
            calls = w0 * factor * 3600.0 / aht * rows["share"].to_numpy()
            frames.append(pd.DataFrame({"queue": queue, "grid": k, "interval_start": rows["interval_start"].to_numpy(),
                                        "volume_p10": calls, "volume_p50": calls, "volume_p90": calls,
                                        "aht_seconds": aht}))
    if frames:
        staffed = staffing_table(pd.concat(frames, ignore_index=True), interval_minutes, **staffing_args)
        hours = staffed.assign(h=staffed["agents_p50"] * interval_minutes / 60.0)
        for queue, g in hours.groupby("queue", sort=True):
            per_grid = g.groupby("grid")["h"].sum().reindex(range(len(GRID))).to_numpy()
            rows = week.loc[week["queue"] == queue]
            days = float(rows["weekday"].nunique())
            out[str(queue)] = StaffingCurve(str(g["staffing_model"].iloc[0]), days, workload_now[queue] * GRID,
                                            np.maximum(per_grid, 1e-9), max_occupancy[str(queue)])
    return out
