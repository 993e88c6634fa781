"""The date and queue dimensions Power BI relates every gold table and view to (re-exported by `common/tables.py`).

Tables, not views: a weekday name, an ISO week and a holiday name have no common SQL across SQLite, PostgreSQL and
SQL Server, and the open flag of a past day must stay what silver was built with (a view computed from tonight's
config would rewrite history). `3_forecast.py` rebuilds all three in the transaction that publishes the forecast
(`common.dims`), from silver (past days, as built) and the config's calendar (the forecast days, as the forecast
itself closed them), so they always cover the newest forecast's dates.
"""

from sqlalchemy import Boolean, Column, Date, Integer, String, Table

from common.table_types import NAME as _NAME
from common.table_types import metadata

gold_dim_date = Table(
    "gold_dim_date", metadata,
    Column("date", Date, primary_key=True, comment="local date"),
    Column("year", Integer, nullable=False, comment="calendar year"),
    Column("quarter", Integer, nullable=False, comment="calendar quarter, 1-4"),
    Column("month", Integer, nullable=False, comment="month, 1-12"),
    Column("month_name", String(12), nullable=False, comment="month name in English (January ...)"),
    Column("year_month", String(7), nullable=False, comment="YYYY-MM: sorts as text"),
    Column("day_of_month", Integer, nullable=False, comment="day of the month, 1-31"),
    Column("weekday", Integer, nullable=False, comment="0 = Monday .. 6 = Sunday (as gold_forecast_accuracy.weekday)"),
    Column("weekday_name", String(12), nullable=False, comment="weekday name in English (Monday ...)"),
    Column("iso_year", Integer, nullable=False, comment="ISO 8601 year the ISO week belongs to"),
    Column("iso_week_number", Integer, nullable=False, comment="ISO 8601 week number, 1-53 (weeks start Monday)"),
    Column("iso_week", String(8), nullable=False,
           comment="ISO week as text, e.g. 2025-W11 (as gold_capacity_plan.iso_week)"),
    Column("is_weekend", Boolean, nullable=False, comment="Saturday or Sunday"),
    Column("is_holiday", Boolean, nullable=False,
           comment="a closed date of the centre: a public holiday of rules.holidays.country it does not work, or "
                   "one of rules.holidays.extra_closed_dates"),
    Column("holiday_name", _NAME, comment="the closed date's name (in the country's language); NULL: not closed"),
    comment="One row per local date, from the first day in silver to the last forecast date.",
)

gold_dim_queue_date = Table(
    "gold_dim_queue_date", metadata,
    Column("queue", _NAME, primary_key=True, comment="queue name"),
    Column("date", Date, primary_key=True, comment="local date"),
    Column("is_open", Boolean, nullable=False,
           comment="the queue opens that day (an opening window that weekday, not a closed date)"),
    Column("is_holiday", Boolean, nullable=False, comment="a closed date of the centre (gold_dim_date.is_holiday)"),
    Column("source", String(10), nullable=False,
           comment="silver: a day silver was built for (its flags as built) | calendar: from the config's opening "
                   "hours and closed dates (forecast days, and days silver lacks)"),
    comment="One row per queue per local date, from the queue's first day to the last forecast date.",
)

gold_dim_queue = Table(
    "gold_dim_queue", metadata,
    Column("queue", _NAME, primary_key=True, comment="queue name"),
    Column("first_date", Date, comment="first local date with offered calls in silver_daily; NULL: none yet"),
    Column("last_date", Date, comment="last local date with offered calls in silver_daily; NULL: none yet"),
    Column("days_with_calls", Integer, nullable=False, comment="days with offered calls in silver_daily"),
    Column("open_weekdays", String(40), nullable=False,
           comment="weekdays the queue opens (rules.opening_hours), e.g. Mon,Tue,Wed,Thu,Fri; empty: never"),
    Column("has_interval_data", Boolean, nullable=False,
           comment="silver_interval holds rows of the queue (false: daily totals only, no interval forecast)"),
    Column("last_forecast_origin", Date, comment="newest forecast_origin in gold_forecast_daily; NULL: none"),
    Column("last_forecast_date", Date, comment="last date that origin forecasts"),
    Column("forecast_method", String(20),
           comment="method of that origin's forecast (ensemble | lightgbm | seasonal_naive)"),
    comment="One row per queue seen in silver or the forecast.",
)
