"""The date and queue dimensions (gold_dim_date, gold_dim_queue_date, gold_dim_queue), rebuilt by step 3.

Past days come from silver as it was built (its open and holiday flags); days silver lacks and the forecast days from
the config's calendar, through the same functions step 3's forecast closes days with (`guards.day_calendar`,
`silver.closed_dates_for`), so a day the forecast put at 0 as closed is closed here too. The range runs from the
first day in silver to the last date any stored forecast covers.
"""

from __future__ import annotations

import logging
from datetime import date

import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from common import db, tables
from common.config import Config
from common.guards import day_calendar
from common.opening_hours import WEEKDAYS, OpeningHours, parse_opening_hours
from common.silver import closed_dates_for

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
log = logging.getLogger(__name__)

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def date_dimension(first: date, last: date, closed: pd.DataFrame) -> pd.DataFrame:
    """One row per local date first..last: calendar parts, ISO week, weekend, and the closed dates' names
    (`closed`: holiday_calendar rows, date + holiday_name)."""
    days = pd.Series(pd.date_range(pd.Timestamp(first), pd.Timestamp(last), freq="D", unit="ns"))
    iso = days.dt.isocalendar()
    names = days.map(dict(zip(pd.to_datetime(closed["date"]), closed["holiday_name"], strict=True)))
    return pd.DataFrame({
        "date": days, "year": days.dt.year, "quarter": days.dt.quarter, "month": days.dt.month,
        "month_name": days.dt.month.map(lambda m: MONTHS[m - 1]).astype("str"),
        "year_month": days.dt.strftime("%Y-%m"), "day_of_month": days.dt.day, "weekday": days.dt.day_of_week,
        "weekday_name": days.dt.day_of_week.map(lambda w: WEEKDAY_NAMES[w]).astype("str"),
        "iso_year": iso["year"].astype("int64"), "iso_week_number": iso["week"].astype("int64"),
        "iso_week": iso["year"].astype("str") + "-W" + iso["week"].astype("str").str.zfill(2),
        "is_weekend": days.dt.day_of_week >= 5, "is_holiday": names.notna(), "holiday_name": names,
    })


def queue_date_dimension(silver_days: pd.DataFrame, calendar: pd.DataFrame) -> pd.DataFrame:
    """One row per queue per date: silver's flags where silver has the day (`source` silver), else the calendar's
    (`source` calendar; `calendar`: day_calendar rows). Each queue starts at its first day in either."""
    built = silver_days.loc[:, ["queue", "date", "is_open", "is_holiday"]].assign(source="silver")
    planned = calendar.loc[:, ["queue", "date", "is_open", "is_holiday"]].assign(source="calendar")
    first = built.groupby("queue")["date"].min()
    planned = planned.loc[planned["date"] >= planned["queue"].map(first)]  # NaT (a queue silver lacks): none
    both = pd.concat([built, planned], ignore_index=True).drop_duplicates(["queue", "date"], keep="first")
    return both.sort_values(["queue", "date"], kind="stable").reset_index(drop=True).astype(
        {"queue": "str", "is_open": bool, "is_holiday": bool, "source": "str"})


def queue_dimension(silver_days: pd.DataFrame, interval_queues: list[str], newest: pd.DataFrame,
                    hours: OpeningHours) -> pd.DataFrame:
    """One row per queue of silver or the forecast: the days with calls, open weekdays, interval data, and the newest
    forecast (`newest`: queue, last_forecast_origin, last_forecast_date, forecast_method)."""
    with_calls = silver_days.loc[silver_days["offered"] > 0]
    seen = with_calls.groupby("queue")["date"].agg(first_date="min", last_date="max", days_with_calls="count")
    queues = sorted(set(silver_days["queue"]) | set(newest["queue"]))
    out = pd.DataFrame({"queue": pd.Series(queues, dtype="str")}).merge(
        seen.reset_index(), on="queue", how="left").merge(newest, on="queue", how="left")
    return out.assign(
        days_with_calls=out["days_with_calls"].fillna(0).astype("int64"),
        open_weekdays=[",".join(d.capitalize() for i, d in enumerate(WEEKDAYS) if hours.window(q, i) is not None)
                       for q in out["queue"]],
        has_interval_data=out["queue"].isin(set(interval_queues)))


# --- step 3's read and write ---------------------------------------------------------------------------------------

def replace_dims(conn: Connection, cfg: Config) -> int:
    """Rebuild the three dimensions inside the caller's transaction (step 3's, after the forecast is written).
    Rows written; nothing when silver is empty."""
    s, f = tables.silver_daily, tables.gold_forecast_daily
    silver_days = db.read_table(conn, s, columns=["queue", "date", "offered", "is_open", "is_holiday", "holiday_name"])
    if silver_days.empty:
        return 0
    interval_queues = list(conn.execute(select(tables.silver_interval.c.queue).distinct()).scalars())
    newest = _newest_forecasts(conn)
    first = silver_days["date"].min().date()
    last = max([silver_days["date"].max().date(), *pd.to_datetime(newest["last_forecast_date"]).dt.date])
    closed = closed_dates_for(cfg, first, last)
    # Past days keep the names silver was built with (a holiday the config no longer closes was closed then).
    built_names = silver_days.dropna(subset=["holiday_name"]).drop_duplicates("date")
    closed = pd.concat([built_names.loc[:, ["date", "holiday_name"]],
                        closed.loc[~closed["date"].isin(set(silver_days["date"]))]], ignore_index=True)
    hours = parse_opening_hours(cfg.rules.opening_hours.model_dump())
    queues = sorted(set(silver_days["queue"]) | set(newest["queue"]))
    calendar = day_calendar(queues, first, last, hours, closed)
    frames = {tables.gold_dim_date: date_dimension(first, last, closed),
              tables.gold_dim_queue_date: queue_date_dimension(silver_days, calendar),
              tables.gold_dim_queue: queue_dimension(silver_days, interval_queues, newest, hours)}
    written = 0
    for table, frame in frames.items():
        conn.execute(delete(table))
        written += db.insert_frame(conn, table, frame)
    log.info("dims: %d dates %s .. %s, %d queues, %d queue-days", len(frames[tables.gold_dim_date]), first, last,
             len(frames[tables.gold_dim_queue]), len(frames[tables.gold_dim_queue_date]))
    return written


def _newest_forecasts(conn: Connection) -> pd.DataFrame:
    """queue, last_forecast_origin, last_forecast_date, forecast_method: each queue's newest origin."""
    f = tables.gold_forecast_daily
    newest = select(f.c.queue, func.max(f.c.forecast_origin).label("origin")).group_by(f.c.queue).subquery()
    rows = (select(f.c.queue, f.c.forecast_origin.label("last_forecast_origin"),
                   func.max(f.c.date).label("last_forecast_date"), func.max(f.c.method).label("forecast_method"))
            .join_from(f, newest, (f.c.queue == newest.c.queue) & (f.c.forecast_origin == newest.c.origin))
            .group_by(f.c.queue, f.c.forecast_origin))
    frame = pd.DataFrame(conn.execute(rows).all(), columns=["queue", "last_forecast_origin", "last_forecast_date",
                                                            "forecast_method"])
    return frame.assign(last_forecast_origin=pd.to_datetime(frame["last_forecast_origin"]),
                        last_forecast_date=pd.to_datetime(frame["last_forecast_date"]))
