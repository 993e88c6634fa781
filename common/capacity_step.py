"""Step 6's reads, checks and writes around `capacity_plan.make_plan` (6_capacity_plan.py calls these)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from common import db, forecast_run, guards, patience, scenarios, silver, tables
from common.capacity_supply import read_hires
from common.capacity_volume import first_monday
from common.config_schema import Config
from common.opening_hours import parse_opening_hours
from common.staffing_targets import WEEKDAYS
from common.tables_capacity import PUBLISHED

PROFILE_DAYS = 7 * 8 + 7   # silver_interval read for the typical week (8 weeks, and a spare week)


def skip_reason(cfg: Config, as_of: date, force: bool, scenario: str | None, engine: Engine) -> str | None:
    """Why tonight does not plan (capacity.run_weekdays), or None. A scenario or --force always plans; so does the
    first night, whatever the weekday."""
    days = cfg.capacity.run_weekdays
    weekday = WEEKDAYS[as_of.weekday()]
    if scenario or force or days is None or weekday in days:
        return None
    t = tables.gold_capacity_plan
    with engine.connect() as conn:
        planned = conn.execute(select(func.count()).select_from(t).where(t.c.scenario == PUBLISHED)).scalar()
    if not planned:
        return None
    return (f"capacity plan skipped: as-of {as_of} is a {weekday}, capacity.run_weekdays is [{', '.join(days)}] "
            "(use --force to plan anyway)")


def read_inputs(conn: Connection, cfg: Config, as_of: date) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(silver_daily before as_of, the last weeks of silver_interval, silver_calls' waits for the patience)."""
    t = tables.silver_daily
    daily = db.read_table(conn, t, where=t.c.date < as_of,
                          columns=["queue", "date", "offered", "handled", "aht_seconds", "is_open"])
    intervals = forecast_run.read_intervals(conn, as_of - timedelta(days=PROFILE_DAYS), as_of)
    waits = patience.read_waits(conn, as_of, cfg.staffing.patience_days)
    return daily, intervals, waits


def planned_calendar(cfg: Config, queues: list[str], as_of: date) -> pd.DataFrame:
    """`queue, date, is_open` of the plan's weeks (opening hours and holidays)."""
    week1 = first_monday(as_of)
    last = week1 + timedelta(days=7 * cfg.capacity.horizon_weeks - 1)
    closed = silver.closed_dates_for(cfg, week1, last)
    hours = parse_opening_hours(cfg.rules.opening_hours.model_dump())
    return guards.day_calendar(queues, week1, last, hours, closed)


def staffing_args(cfg: Config, daily: pd.DataFrame, waits: pd.DataFrame) -> dict:
    """staffing_table's keyword arguments: the targets of staffing.* and each queue's patience, as step 3 has them."""
    s = cfg.staffing
    queue_patience = patience.estimate_patience(waits, daily["queue"].unique(), s.patience_days, s.min_abandons,
                                                s.default_patience_seconds)
    return {"service_level_target": s.service_level, "answer_seconds": s.answer_seconds,
            "max_occupancy": s.max_occupancy, "shrinkage": s.shrinkage, "asa_target_seconds": s.asa_target_seconds,
            **forecast_run.staffing_options(cfg, queue_patience)}


def hires(cfg: Config) -> pd.DataFrame | None:
    return read_hires(cfg.path(cfg.capacity.hires_file)) if cfg.capacity.hires_file else None


def write(conn: Connection, scenario: str, as_of: date, run_id: str, rows: pd.DataFrame,
          drivers: pd.DataFrame) -> int:
    """Replace the plan and drivers of (scenario, as_of): one transaction, the caller's."""
    stamp = {"run_id": run_id, "plan_origin": pd.Timestamp(as_of)}
    written = scenarios.replace_rows(conn, tables.gold_capacity_plan, scenario, "plan_origin", as_of,
                                     rows.assign(**stamp))
    return written + scenarios.replace_rows(conn, tables.gold_capacity_drivers, scenario, "plan_origin", as_of,
                                            drivers.assign(**stamp))
