"""Step 1's wiring: which days to rebuild, reading bronze for them, and replacing their silver rows.

Incremental by default: a day is rebuilt when the bronze rows behind it changed
since the last build (`silver_day_state` remembers count and newest load per
day), or when it has never been built. Its neighbours are rebuilt too, because
a redial just after midnight belongs to the contact that started the day
before. `full=True` rebuilds every day. Only days before the run's as-of are
built: the as-of day itself is not complete yet.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from common import db, tables
from common.calendar import holiday_calendar, interval_grid, parse_opening_hours
from common.cdr import ContactRules
from common.config import Config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildPlan:
    """The days this run rebuilds, and the wider span of bronze it must read to rebuild them right."""

    dates: list[date]
    read_from: date | None
    read_to: date | None
    first_date_per_queue: dict[str, date]
    bronze_state: pd.DataFrame  # one row per local date with bronze rows: date, bronze_rows, bronze_max_load_id


def _bronze(cfg: Config):
    return tables.bronze_cdr if cfg.source.kind == "cdr" else tables.bronze_interval


def bronze_day_state(conn: Connection, cfg: Config) -> pd.DataFrame:
    """One row per local date that bronze has rows for: how many and the newest load behind them."""
    t = _bronze(cfg)
    stmt = select(t.c.start_date.label("date"), func.count().label("bronze_rows"),
                  func.max(t.c.load_id).label("bronze_max_load_id")).group_by(t.c.start_date)
    frame = db.read_frame(conn, stmt, tables.silver_day_state)
    return frame


def plan_build(conn: Connection, cfg: Config, as_of: date, full: bool) -> BuildPlan:
    """Decide which days to rebuild (see module docstring)."""
    t = _bronze(cfg)
    state = bronze_day_state(conn, cfg)
    queues = db.read_frame(conn, select(t.c.queue, func.min(t.c.start_date).label("date")).group_by(t.c.queue),
                           tables.silver_daily)
    first_per_queue = {q: d.date() for q, d in zip(queues["queue"], queues["date"])}
    if state.empty:
        return BuildPlan([], None, None, first_per_queue, state)
    first = state["date"].min().date()
    last = as_of - timedelta(days=1)
    if last < first:
        return BuildPlan([], None, None, first_per_queue, state)
    all_days = pd.date_range(first, last, freq="D")
    if full:
        changed = set(all_days.date)
    else:
        built = db.read_table(conn, tables.silver_day_state)
        merged = pd.DataFrame({"date": all_days}).merge(state, on="date", how="left").merge(
            built, on="date", how="left", suffixes=("", "_built"))
        merged[["bronze_rows", "bronze_max_load_id"]] = merged[["bronze_rows", "bronze_max_load_id"]].fillna(0)
        differs = (merged["bronze_rows_built"].isna()
                   | (merged["bronze_rows"] != merged["bronze_rows_built"])
                   | (merged["bronze_max_load_id"] != merged["bronze_max_load_id_built"]))
        changed = set(merged.loc[differs, "date"].dt.date)
        neighbours = {d + timedelta(days=k) for d in changed for k in (-1, 1)} if cfg.source.kind == "cdr" else set()
        changed |= {d for d in neighbours if first <= d <= last}
    dates = sorted(changed)
    if not dates:
        return BuildPlan([], None, None, first_per_queue, state)
    pad = timedelta(days=1) if cfg.source.kind == "cdr" else timedelta(0)
    return BuildPlan(dates, dates[0] - pad, dates[-1] + pad, first_per_queue, state)


def read_bronze(conn: Connection, cfg: Config, plan: BuildPlan) -> pd.DataFrame:
    """The bronze rows of the read span (legs for CDR sources, interval rows for interval reports)."""
    t = _bronze(cfg)
    wanted = set(plan.dates)
    if cfg.source.kind == "cdr":
        wanted |= {d + timedelta(days=k) for d in plan.dates for k in (-1, 1)}
    # A contiguous span is read with one range predicate; scattered days with an IN list.
    span_days = (plan.read_to - plan.read_from).days + 1
    if len(wanted) >= span_days * 0.5:
        where = t.c.start_date.between(plan.read_from, plan.read_to)
    else:
        where = t.c.start_date.in_(sorted(wanted))
    return db.read_table(conn, t, where=where)


def contact_rules(cfg: Config, closed_dates: pd.DataFrame) -> ContactRules:
    """The rules that turn legs into contacts, from config."""
    r = cfg.rules
    return ContactRules(
        redial_window_minutes=r.redial_window_minutes, redial_match=r.redial_match,
        short_abandon_seconds=r.short_abandon_seconds, interval_minutes=r.interval_minutes, tz=cfg.timezone,
        hours=parse_opening_hours(r.opening_hours.model_dump()), closed_dates=closed_dates)


def closed_dates_for(cfg: Config, first: date, last: date) -> pd.DataFrame:
    """Holidays and extra closed dates for every year from `first` to `last`."""
    h = cfg.rules.holidays
    return holiday_calendar(h.country, h.subdivision, list(h.extra_closed_dates), range(first.year, last.year + 1))


def calendar_grid(cfg: Config, plan: BuildPlan, closed_dates: pd.DataFrame) -> pd.DataFrame:
    """The complete interval calendar of the rebuilt days, per queue from the queue's first day in bronze on."""
    if not plan.dates:
        return pd.DataFrame()
    hours = parse_opening_hours(cfg.rules.opening_hours.model_dump())
    grid = interval_grid(sorted(plan.first_date_per_queue), plan.dates[0], plan.dates[-1], cfg.rules.interval_minutes,
                         cfg.timezone, hours, closed_dates)
    first = grid["queue"].map({q: pd.Timestamp(d) for q, d in plan.first_date_per_queue.items()})
    keep = grid["date"].isin(pd.to_datetime(plan.dates)) & (grid["date"] >= first)
    return grid[keep].reset_index(drop=True)


def last_open_end(cfg: Config, queues: list[str], as_of: date, closed_dates: pd.DataFrame) -> pd.Timestamp | None:
    """End (local time) of the last open interval of any queue in the 14 days before `as_of`."""
    if not queues:
        return None
    hours = parse_opening_hours(cfg.rules.opening_hours.model_dump())
    grid = interval_grid(queues, as_of - timedelta(days=14), as_of - timedelta(days=1), cfg.rules.interval_minutes,
                         cfg.timezone, hours, closed_dates)
    open_ = grid[grid["is_open"]]
    if open_.empty:
        return None
    return open_["interval_start"].max() + pd.Timedelta(minutes=cfg.rules.interval_minutes)


def history_daily_max(conn: Connection, dates: list[date]) -> pd.Series:
    """Each queue's highest daily offered outside the days being rebuilt (the yardstick for the volume check)."""
    t = tables.silver_daily
    stmt = select(t.c.queue, func.max(t.c.offered).label("offered")).where(t.c.date.not_in(dates) if len(dates) < 900
                                                                             else t.c.date < min(dates)).group_by(t.c.queue)
    frame = db.read_frame(conn, stmt, t)
    return frame.set_index("queue")["offered"] if not frame.empty else pd.Series(dtype="float64")


def newest_contact(conn: Connection, cfg: Config, as_of: date) -> pd.Timestamp | None:
    """The newest start time in bronze before the run's date."""
    t = _bronze(cfg)
    col = t.c.start_time if cfg.source.kind == "cdr" else t.c.interval_start
    frame = db.read_frame(conn, select(func.max(col).label("start_time")).where(t.c.start_date < as_of), tables.bronze_cdr)
    value = frame["start_time"].iloc[0] if not frame.empty else pd.NaT
    return None if pd.isna(value) else value


def replace_silver(conn: Connection, plan: BuildPlan, calls: pd.DataFrame | None, intervals: pd.DataFrame,
                   daily: pd.DataFrame, run_id: str) -> int:
    """Replace the rebuilt days in every silver table and record what bronze held for them (caller's transaction)."""
    dates = plan.dates
    for i in range(0, len(dates), 500):
        chunk = dates[i:i + 500]
        conn.execute(delete(tables.silver_calls).where(tables.silver_calls.c.date.in_(chunk)))
        conn.execute(delete(tables.silver_interval).where(tables.silver_interval.c.date.in_(chunk)))
        conn.execute(delete(tables.silver_daily).where(tables.silver_daily.c.date.in_(chunk)))
        conn.execute(delete(tables.silver_day_state).where(tables.silver_day_state.c.date.in_(chunk)))
    written = 0
    if calls is not None:
        written += db.insert_frame(conn, tables.silver_calls, calls)
    written += db.insert_frame(conn, tables.silver_interval, intervals)
    written += db.insert_frame(conn, tables.silver_daily, daily)
    state = pd.DataFrame({"date": pd.to_datetime(dates)}).merge(plan.bronze_state, on="date", how="left")
    state[["bronze_rows", "bronze_max_load_id"]] = state[["bronze_rows", "bronze_max_load_id"]].fillna(0).astype("int64")
    db.insert_frame(conn, tables.silver_day_state, state.assign(run_id=run_id))
    return written


def save_checks(conn: Connection, results: pd.DataFrame, run_id: str, step: str, as_of: date) -> None:
    """Append this run's data-quality results (replacing any earlier results of the same run id)."""
    conn.execute(delete(tables.data_quality_checks).where(tables.data_quality_checks.c.run_id == run_id))
    db.insert_frame(conn, tables.data_quality_checks,
                    results.assign(run_id=run_id, step=step, as_of=pd.Timestamp(as_of), checked_at=db.utc_now()))
