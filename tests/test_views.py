"""The Power BI views: hand-checked rows on a tiny fixture, on SQLite and PostgreSQL; SQL Server's DDL compiles.

The fixture: queue Support, two forecast origins (2025-03-09 and 2025-03-10) covering 2025-03-10 and 2025-03-11, the
older one also 2025-03-09; actuals for 03-09 and 03-10 only (Europe/Stockholm, CET = UTC+1 in March).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import date, datetime

import pandas as pd
import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.dialects import mssql, postgresql, sqlite

from common import db, tables, views
from common.view_sql import CreateView
from tests.conftest import REPO

R = {"run_id": "r1"}
D9, D10, D11 = (pd.Timestamp(f"2025-03-{d:02d}") for d in (9, 10, 11))


def _daily(origin, day, p10, p50, p90, method) -> dict:
    return {**R, "forecast_origin": origin, "queue": "Support", "date": day, "horizon_day": (day - origin).days + 1,
            "p10": p10, "p50": p50, "p90": p90, "method": method}


def _interval(origin, local: str, p10, p50, p90) -> dict:
    start = pd.Timestamp(local)
    return {**R, "forecast_origin": origin, "queue": "Support", "interval_start": start,
            "interval_start_utc": start - pd.Timedelta(hours=1), "p10": p10, "p50": p50, "p90": p90}


def _silver_interval(local: str, offered: float) -> dict:
    start = pd.Timestamp(local)
    return {"queue": "Support", "interval_start": start, "interval_start_utc": start - pd.Timedelta(hours=1),
            "date": start.normalize(), "offered": offered, "offered_outside_hours": 0.0, "is_open": True}


def _service(local: str, offered, answered, in_target, abandoned, wait) -> dict:
    start = pd.Timestamp(local)
    return {**R, "queue": "Support", "interval_start": start, "interval_start_utc": start - pd.Timedelta(hours=1),
            "date": start.normalize(), "offered": offered, "answered": answered, "answered_in_target": in_target,
            "abandoned": abandoned, "wait_seconds_answered": wait, "target_answer_seconds": 20.0,
            "target_service_level": 0.8, "service_level": in_target / offered}


def _alert(as_of: str, rule: str) -> dict:
    return {**R, "as_of": pd.Timestamp(as_of), "created_at": pd.Timestamp(as_of) + pd.Timedelta(hours=3),
            "severity": "warning", "alert_rule": rule, "queue": "Support", "metric": "m", "message": rule}


def _plan(origin: str, week: str, scenario: str, fte: float) -> dict:
    return {**R, "scenario": scenario, "plan_origin": pd.Timestamp(origin), "queue": "Support",
            "week_start": pd.Timestamp(week), "iso_week": "2025-Wxx", "weeks_ahead": 1, "open_days": 5,
            "volume_p10": 1.0, "volume_p50": 2.0, "volume_p90": 3.0, "workload_hours_p50": 1.0,
            "fte_required_p10": fte - 1, "fte_required_p50": fte, "fte_required_p90": fte + 1,
            "volume_method": "m", "staffing_model": "erlang_a", "simulations": 10, "seed": 1}


FIXTURE = {
    tables.gold_forecast_daily: [
        _daily(D9, D9, 50, 60, 70, "seasonal_naive"), _daily(D9, D10, 80, 100, 120, "seasonal_naive"),
        _daily(D9, D11, 90, 110, 130, "seasonal_naive"),
        _daily(D10, D10, 70, 95, 110, "ensemble"), _daily(D10, D11, 100, 120, 140, "ensemble")],
    tables.gold_forecast_interval: [
        _interval(D9, "2025-03-10 09:00", 8, 10, 12), _interval(D9, "2025-03-10 09:30", 9, 11, 13),
        _interval(D10, "2025-03-10 09:00", 5, 7, 9), _interval(D10, "2025-03-10 09:30", 6, 8, 10),
        _interval(D10, "2025-03-11 00:00", 1, 2, 3)],  # 23:00 UTC on the 10th: its local date is the 11th
    tables.silver_daily: [
        {"queue": "Support", "date": D9, "offered": 75.0, "offered_outside_hours": 0.0, "is_open": True,
         "is_holiday": False},
        {"queue": "Support", "date": D10, "offered": 105.0, "offered_outside_hours": 0.0, "is_open": True,
         "is_holiday": False}],
    # the calendar: 03-10 closed (silver, which says open, wins), 03-11 closed
    tables.gold_dim_queue_date: [{"queue": "Support", "date": d, "is_open": False, "is_holiday": False,
                                  "source": "calendar"} for d in (D10, D11)],
    tables.silver_interval: [_silver_interval("2025-03-10 09:00", 9), _silver_interval("2025-03-10 09:30", 12)],
    tables.gold_service_delivered: [_service("2025-03-10 09:00", 10, 9, 8, 1, 90.0),
                                    _service("2025-03-10 09:30", 10, 10, 7, 0, 200.0)],
    tables.pipeline_runs: [
        {"run_id": "a", "step": "4_evaluate", "as_of": pd.Timestamp("2025-03-20"),
         "started_at": pd.Timestamp("2025-03-20 01:00"), "status": "success"},
        {"run_id": "b", "step": "4_evaluate", "as_of": pd.Timestamp("2025-03-25"),  # failed: not the newest night
         "started_at": pd.Timestamp("2025-03-25 01:00"), "status": "failed"}],
    tables.gold_capacity_plan: [  # week of 03-17: planned on 03-03 and 03-10, and a newer what-if scenario
        _plan("2025-03-03", "2025-03-17", "published", 10.0), _plan("2025-03-10", "2025-03-17", "published", 12.0),
        _plan("2025-03-12", "2025-03-17", "hire_more", 99.0), _plan("2025-03-03", "2025-03-10", "published", 8.0)],
    tables.gold_alerts: [_alert("2025-03-20", "night"), _alert("2025-03-07", "thirteen_days"),
                         _alert("2025-03-06", "fourteen_days")],
}


@pytest.fixture
def engine(database_url: str):
    engine = db.make_engine(database_url)
    db.ensure_schema(engine)
    with engine.begin() as conn:
        for table, rows in FIXTURE.items():
            db.insert_frame(conn, table, pd.DataFrame(rows))
    yield engine
    engine.dispose()


def _rows(engine, sql: str) -> list[tuple]:
    """Rows with dates as ISO text and numbers as float (SQLite returns dates as TEXT, PostgreSQL as date)."""
    def plain(v):  # noqa: ANN001, ANN202
        if isinstance(v, datetime):
            return v.isoformat(sep=" ")[:16]
        if isinstance(v, date):
            return v.isoformat()
        if isinstance(v, str) and len(v) >= 10 and v[4] == "-" and v[7] == "-":
            return v[:16] if len(v) > 10 else v
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
    with engine.connect() as conn:
        return [tuple(plain(v) for v in row) for row in conn.execute(text(sql)).all()]


def test_every_view_exists_after_ensure_schema(engine) -> None:
    assert {v.name for v in views.VIEWS} <= set(inspect(engine).get_view_names())


def test_the_latest_daily_forecast_is_the_newest_origin_of_each_date(engine) -> None:
    got = _rows(engine, "SELECT date, forecast_origin, p50, volume_p50, method FROM v_forecast_daily_latest "
                        "ORDER BY date")
    assert got == [("2025-03-09", "2025-03-09", 60.0, 60.0, "seasonal_naive"),
                   ("2025-03-10", "2025-03-10", 95.0, 95.0, "ensemble"),
                   ("2025-03-11", "2025-03-10", 120.0, 120.0, "ensemble")]


def test_the_latest_interval_forecast_has_its_local_date_and_the_days_method(engine) -> None:
    got = _rows(engine, "SELECT interval_start, date, forecast_origin, p50, method FROM v_forecast_interval_latest "
                        "ORDER BY interval_start_utc")
    assert got == [("2025-03-10 09:00", "2025-03-10", "2025-03-10", 7.0, "ensemble"),
                   ("2025-03-10 09:30", "2025-03-10", "2025-03-10", 8.0, "ensemble"),
                   # local 00:00 on the 11th is 23:00 UTC on the 10th: the 11th's row, its method from the daily
                   # row of origin 03-10 and date 03-11
                   ("2025-03-11 00:00", "2025-03-11", "2025-03-10", 2.0, "ensemble")]


def test_forecast_vs_actual_daily_gives_error_and_in_band_and_no_actual_for_the_future(engine) -> None:
    got = _rows(engine, "SELECT date, forecast_origin, p50, actual, error, abs_error, in_band "
                        "FROM v_forecast_vs_actual_daily WHERE queue = 'Support' ORDER BY date")
    assert got == [("2025-03-09", "2025-03-09", 60.0, 75.0, -15.0, 15.0, 0.0),   # 75 above p90 70
                   ("2025-03-10", "2025-03-10", 95.0, 105.0, -10.0, 10.0, 1.0),  # 70 <= 105 <= 110
                   ("2025-03-11", "2025-03-10", 120.0, None, None, None, None)]
    # open: silver's flag where silver has the day, the calendar's (gold_dim_queue_date) for the forecast days
    is_open = [bool(v) for (v,) in _rows(engine, "SELECT is_open FROM v_forecast_vs_actual_daily ORDER BY date")]
    assert is_open == [True, True, False]


def test_forecast_vs_actual_interval_counts_the_band_edge_as_in_band(engine) -> None:
    got = _rows(engine, "SELECT interval_start, p50, actual, error, abs_error, in_band "
                        "FROM v_forecast_vs_actual_interval ORDER BY interval_start_utc")
    assert got == [("2025-03-10 09:00", 7.0, 9.0, -2.0, 2.0, 1.0),   # actual 9 = p90 9
                   ("2025-03-10 09:30", 8.0, 12.0, -4.0, 4.0, 0.0),  # 12 above p90 10
                   ("2025-03-11 00:00", 2.0, None, None, None, None)]


def test_service_vs_target_sums_the_day_before_dividing(engine) -> None:
    got = _rows(engine, "SELECT queue, date, offered, answered_in_target, service_level, target_service_level, "
                        "asa_seconds, abandon_rate, met_target FROM v_service_vs_target_daily")
    # 15 of 20 in target = 0.75 (the mean of 0.8 and 0.7 by chance too); ASA (90 + 200) / 19 answered
    assert got == [pytest.approx(("Support", "2025-03-10", 20.0, 15.0, 0.75, 0.8, 290 / 19, 0.05, 0.0))]
    per_interval = _rows(engine, "SELECT service_level, service_level_gap, met_target "
                                 "FROM v_service_vs_target_interval ORDER BY interval_start_utc")
    assert per_interval == [pytest.approx((0.8, 0.0, 1.0)), pytest.approx((0.7, -0.1, 0.0))]


def test_recent_alerts_are_the_14_days_before_the_newest_successful_run(engine) -> None:
    got = _rows(engine, "SELECT alert_rule, days_ago FROM v_alerts_recent ORDER BY days_ago")
    assert got == [("night", 0.0), ("thirteen_days", 13.0)]


def test_the_latest_capacity_plan_is_the_newest_published_origin_of_each_week(engine) -> None:
    got = _rows(engine, "SELECT week_start, plan_origin, scenario, fte_required_p50 FROM v_capacity_plan_latest "
                        "ORDER BY week_start")
    assert got == [("2025-03-10", "2025-03-03", "published", 8.0), ("2025-03-17", "2025-03-10", "published", 12.0)]


def test_the_latest_staffing_views_read_the_newest_origin(engine) -> None:
    row = {**R, "queue": "Support", "date": D11, "volume_p50": 1.0, "staff_hours_p10": 1.0, "staff_hours_p50": 2.0,
           "staff_hours_p90": 3.0, "peak_staff_p10": 1, "peak_staff_p50": 2, "peak_staff_p90": 3}
    with engine.begin() as conn:
        db.insert_frame(conn, tables.gold_staffing_daily, pd.DataFrame([{**row, "forecast_origin": D9},
                                                                        {**row, "forecast_origin": D10,
                                                                         "staff_hours_p50": 5.0}]))
    assert _rows(engine, "SELECT forecast_origin, staff_hours_p50 FROM v_staffing_daily_latest") == \
        [("2025-03-10", 5.0)]


def test_a_view_is_recreated_only_when_its_sql_changed(tmp_path, caplog) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'wfm.db'}")
    db.ensure_schema(engine)
    with engine.begin() as conn:  # as a version whose table had fewer columns left it
        conn.execute(text("DROP VIEW v_forecast_daily_latest"))
        conn.execute(text("CREATE VIEW v_forecast_daily_latest AS SELECT queue, date FROM gold_forecast_daily"))
        conn.execute(text("UPDATE schema_views SET sql_sha256 = 'old' WHERE view_name = 'v_forecast_daily_latest'"))
    with caplog.at_level(logging.INFO, logger="common.schema"):
        db.ensure_schema(engine)
    assert "created view(s) v_forecast_daily_latest\n" in caplog.text + "\n"
    assert "intraday_profile" in {c["name"] for c in inspect(engine).get_columns("v_forecast_daily_latest")}
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="common.schema"):
        db.ensure_schema(engine)
    assert "created view" not in caplog.text


# A newer version that declares one more column in gold_forecast_daily (a subprocess: the declaration is made before
# the views are built from it, as at a real import).
_NEWER_VERSION = r"""
import sys
sys.path.insert(0, sys.argv[1])
from sqlalchemy import Column, Text, inspect
from common import tables
tables.gold_forecast_daily.append_column(Column("note_of_a_newer_version", Text, comment="a newer version's column"))
from common import db
engine = db.make_engine(sys.argv[2])
db.ensure_schema(engine)
print(" ".join(c["name"] for c in inspect(engine).get_columns("v_forecast_daily_latest")))
"""


def test_a_column_a_newer_version_declares_appears_in_the_view(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'wfm.db'}"
    db.ensure_schema(create_engine(url))  # made by this version: views without the column
    done = subprocess.run([sys.executable, "-c", _NEWER_VERSION, str(REPO), url], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "note_of_a_newer_version" in done.stdout.split()  # ALTER TABLE ADD COLUMN, then the view recreated


def test_a_view_that_cannot_be_created_is_a_warning_not_a_failed_step(tmp_path, caplog) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'wfm.db'}")
    db.ensure_schema(engine)
    with engine.begin() as conn:  # a table where a view should be: CREATE VIEW fails
        conn.execute(text("DROP VIEW v_alerts_recent"))
        conn.execute(text("CREATE TABLE v_alerts_recent (x INTEGER)"))
    with caplog.at_level(logging.WARNING, logger="common.schema"):
        db.ensure_schema(engine)
    assert "views could not be created" in caplog.text
    assert "v_forecast_daily_latest" in inspect(engine).get_view_names()


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect(), mssql.dialect()], ids=lambda d: d.name)
def test_every_view_compiles_for_every_backend(dialect) -> None:
    for view in views.VIEWS:
        sql = str(CreateView(view.name, view.query).compile(dialect=dialect))
        assert sql.startswith(f"CREATE VIEW {view.name} AS SELECT"), sql[:80]
        assert " LIMIT " not in sql and "ORDER BY" not in sql  # neither is allowed in a SQL Server view
    interval = str(CreateView("v", views.forecast_interval_latest()).compile(dialect=dialect))
    # The local date of a datetime: SQLite's CAST(... AS DATE) would give the year as a number.
    assert ("date(gold_forecast_interval.interval_start)" if dialect.name == "sqlite"
            else "CAST(gold_forecast_interval.interval_start AS DATE)") in interval
    alerts = str(CreateView("v", views.alerts_recent()).compile(dialect=dialect))
    assert {"sqlite": "julianday(", "postgresql": "(SELECT max", "mssql": "DATEDIFF(day, "}[dialect.name] in alerts


def test_views_have_unique_column_names_and_their_key_among_them() -> None:
    for view in views.VIEWS:
        names = [c.key for c in view.query.selected_columns]
        assert len(names) == len(set(names)), view.name
        assert set(view.key) <= set(names), view.name
