"""The service the centre actually delivered, per queue and interval, from silver_calls' waits and outcomes.

Offered calls are the demand the forecast and staffing are for (silver_calls.counts_as_offered: answered or
abandoned within opening hours; short abandons are not demand). Service level = answered within the queue's
target answer seconds / offered (an abandon counts against it, as in Erlang A), ASA = mean wait of the answered
calls, abandon rate = abandoned / offered. Rows keep the counts, so a day or a week is sum(answered_in_target) /
sum(offered) in Power BI, not a mean of ratios.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, delete

from common import db, tables
from common.config_schema import Config
from common.staffing_targets import row_targets

COLUMNS = ["queue", "interval_start_utc", "interval_start", "date", "offered", "answered", "answered_in_target",
           "abandoned", "wait_seconds_answered", "target_answer_seconds", "target_service_level", "service_level",
           "asa_seconds", "abandon_rate"]


def read_calls(conn: Connection, start: date, as_of: date) -> pd.DataFrame:
    """Offered silver_calls of dates start .. as_of - 1."""
    t = tables.silver_calls
    return db.read_table(conn, t, where=(t.c.date >= start) & (t.c.date < as_of) & t.c.counts_as_offered,
                         columns=["queue", "date", "interval_start", "interval_start_utc", "outcome", "wait_seconds"])


def service_delivered(calls: pd.DataFrame, defaults: Mapping[str, Any],
                      queue_targets: Mapping[str, Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """One row per queue per interval with offered calls: counts and delivered service against the queue's target.

    `defaults`: the global staffing targets (service_level, answer_seconds, max_occupancy, asa_target_seconds,
    max_abandon_rate, shrinkage); `queue_targets`: staffing.queues. A missing wait counts as 0 s.
    """
    if calls.empty:
        return pd.DataFrame(columns=COLUMNS)
    offered = calls.loc[calls["outcome"].isin(["answered", "abandoned"])].reset_index(drop=True)
    targets = row_targets(offered["queue"], offered["interval_start"], defaults, queue_targets)
    wait = offered["wait_seconds"].astype("float64").fillna(0.0).clip(lower=0.0)
    answered = offered["outcome"] == "answered"
    frame = offered.assign(
        answered=answered.astype("int64"), abandoned=(~answered).astype("int64"),
        answered_in_target=(answered & (wait <= targets["target_answer_seconds"])).astype("int64"),
        wait_seconds_answered=wait.where(answered, 0.0), offered=1,
        target_answer_seconds=targets["target_answer_seconds"], target_service_level=targets["target_service_level"])
    keys = ["queue", "interval_start_utc", "interval_start", "date"]
    sums = {c: (c, "sum") for c in ("offered", "answered", "answered_in_target", "abandoned", "wait_seconds_answered")}
    per = frame.groupby(keys, sort=True, as_index=False).agg(
        **sums, target_answer_seconds=("target_answer_seconds", "first"),
        target_service_level=("target_service_level", "first"))
    with np.errstate(divide="ignore", invalid="ignore"):
        asa = np.where(per["answered"] > 0, per["wait_seconds_answered"] / per["answered"], np.nan)
    return per.assign(service_level=per["answered_in_target"] / per["offered"], asa_seconds=asa,
                      abandon_rate=per["abandoned"] / per["offered"]).loc[:, COLUMNS]


def daily_delivered(intervals: pd.DataFrame) -> pd.DataFrame:
    """`service_delivered` rows summed to one row per queue per date (ratios from the sums)."""
    counts = ["offered", "answered", "answered_in_target", "abandoned", "wait_seconds_answered"]
    per = intervals.groupby(["queue", "date"], sort=True, as_index=False).agg(
        **{c: (c, "sum") for c in counts}, target_service_level=("target_service_level", "first"))
    with np.errstate(divide="ignore", invalid="ignore"):
        asa = np.where(per["answered"] > 0, per["wait_seconds_answered"] / per["answered"], np.nan)
    return per.assign(service_level=per["answered_in_target"] / per["offered"], asa_seconds=asa,
                      abandon_rate=per["abandoned"] / per["offered"])


def replace_delivered(conn: Connection, start: date, as_of: date, frame: pd.DataFrame, run_id: str) -> int:
    """Replace gold_service_delivered rows of dates start .. as_of - 1 with `frame`; rows written."""
    t = tables.gold_service_delivered
    conn.execute(delete(t).where((t.c.date >= start) & (t.c.date < as_of)))
    return db.insert_frame(conn, t, frame.assign(run_id=run_id))


def window_start(as_of: date, days: int) -> date:
    """First date step 4 rebuilds: the trailing `days` before the as-of (late or corrected calls restate them)."""
    return as_of - timedelta(days=days)


def staffing_targets(cfg: Config) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(global targets, per-queue targets) of `staffing.*`, as `service_delivered` takes them."""
    s = cfg.staffing
    defaults = {k: getattr(s, k) for k in ("service_level", "answer_seconds", "max_occupancy", "asa_target_seconds",
                                          "max_abandon_rate", "shrinkage")}
    return defaults, {q: t.model_dump(exclude_none=True) for q, t in s.queues.items()}


def delivered_sentence(intervals: pd.DataFrame, as_of: date, weeks: int = 4, top: int = 10) -> str:
    """The service delivered in words, all queues together and then per queue: the day before the as-of and the
    past `weeks` weeks.

    E.g. "Service delivered (target 80%): yesterday 84% answered within target, 3.1% abandoned, ASA 12 s; last 4
    weeks 82% answered within target, 2.8% abandoned, ASA 14 s. By queue, answered within target yesterday / last 4
    weeks: Support 86% / 83% (target 80%), VIP 97% / 95% (target 90%)." The `top` busiest queues of the weeks are
    named (with how many others there are). Empty when there are no rows (no CDR source).
    """
    if intervals.empty:
        return ""
    days = pd.to_datetime(intervals["date"])
    end = pd.Timestamp(as_of)

    def part(rows: pd.DataFrame) -> str:
        offered = rows["offered"].sum()
        answered = rows["answered"].sum()
        asa = f", ASA {rows['wait_seconds_answered'].sum() / answered:.0f} s" if answered else ""
        return (f"{rows['answered_in_target'].sum() / offered:.0%} answered within target, "
                f"{rows['abandoned'].sum() / offered:.1%} abandoned{asa}")

    recent = intervals.loc[(days >= end - pd.Timedelta(weeks=weeks)) & (days < end) & (intervals["offered"] > 0)]
    if recent.empty:
        return ""
    targets = sorted(recent["target_service_level"].dropna().unique())
    target = "/".join(f"{t:.0%}" for t in targets)
    yesterday = recent.loc[pd.to_datetime(recent["date"]) == end - pd.Timedelta(days=1)]
    first = f"yesterday {part(yesterday)}" if len(yesterday) else "no calls yesterday"
    sentence = f"Service delivered (target {target}): {first}; last {weeks} weeks {part(recent)}."
    if recent["queue"].nunique() < 2:
        return sentence
    sums = ["answered_in_target", "offered"]
    weeks_q = recent.groupby("queue")[sums].sum()
    day_q = yesterday.groupby("queue")[sums].sum()
    busiest = weeks_q.sort_values("offered", ascending=False, kind="stable").head(top).index
    targets_q = recent.groupby("queue")["target_service_level"].last()
    parts = []
    for queue in busiest:
        day = (f"{day_q.loc[queue, 'answered_in_target'] / day_q.loc[queue, 'offered']:.0%}"
               if queue in day_q.index and day_q.loc[queue, "offered"] > 0 else "no calls")
        both = f"{day} / {weeks_q.loc[queue, 'answered_in_target'] / weeks_q.loc[queue, 'offered']:.0%}"
        target_q = targets_q.get(queue)
        parts.append(f"{queue} {both}" + ("" if pd.isna(target_q) else f" (target {target_q:.0%})"))
    more = len(weeks_q) - len(busiest)
    return (f"{sentence} By queue, answered within target yesterday / last {weeks} weeks: {', '.join(parts)}"
            + (f", and {more} more queues." if more else "."))
