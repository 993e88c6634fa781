"""The REST API's selects on each backend (a SQLite file, a PostgreSQL server): the latest origin per queue and local
date, read-only engines, and a database an older version made (rows as tests/api_server.py seeds them)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError

from common import api_models, db, tables
from common import api_queries as q
from tests.api_server import seed

PAGE = q.Page(limit=100)


def _rows(url: str, table, **filters) -> list[dict]:
    engine = db.make_read_only_engine(url)
    try:
        with engine.connect() as conn:
            rows, _ = q.fetch_page(conn, q.select_forecast_rows(table, q.ForecastFilter(**filters), PAGE), PAGE, table,
                                   q.ColumnCache())
        return rows
    finally:
        engine.dispose()


def test_latest_interval_rows_come_from_the_newest_origin_of_their_local_date(database_url: str) -> None:
    seed(database_url, datetime(2026, 1, 6, 6, 0))
    rows = _rows(database_url, tables.gold_forecast_interval, queue="Billing")
    # PostgreSQL: CAST(interval_start AS DATE); SQLite: date(interval_start) on its timestamp text.
    assert [(r["forecast_origin"], r["interval_start"], r["p50"]) for r in rows] == [
        (date(2026, 1, 5), datetime(2026, 1, 6, 8, 0), 12.0), (date(2026, 1, 5), datetime(2026, 7, 1, 8, 0), 7.0)]
    rows = _rows(database_url, tables.gold_forecast_interval, queue="Billing", date_from=date(2026, 1, 6),
                 date_to=date(2026, 1, 6), origin=date(2026, 1, 4))
    assert [r["p50"] for r in rows] == [10.0, 11.0]


def test_latest_daily_rows_and_a_queue_that_is_sql_text(database_url: str) -> None:
    seed(database_url, datetime(2026, 1, 6, 6, 0))
    rows = _rows(database_url, tables.gold_forecast_daily, date_from=date(2026, 1, 6))
    assert [(r["date"], r["forecast_origin"], r["p50"]) for r in rows] == [
        (date(2026, 1, 6), date(2026, 1, 5), 120.0), (date(2026, 1, 7), date(2026, 1, 5), 130.0)]
    assert _rows(database_url, tables.gold_forecast_daily, queue="Billing' OR '1'='1") == []


def test_the_read_only_engine_refuses_writes(database_url: str) -> None:
    seed(database_url, datetime(2026, 1, 6, 6, 0))
    engine = db.make_read_only_engine(database_url)
    # SQLite: "attempt to write a readonly database"; PostgreSQL: "cannot execute INSERT in a read-only transaction".
    with engine.connect() as conn, pytest.raises(DBAPIError, match="read-?only"):
        conn.execute(insert(tables.gold_alerts).values(
            run_id="x", as_of=date(2026, 1, 6), created_at=datetime(2026, 1, 6), severity="warning",
            alert_rule="r", metric="m", message="written"))
    engine.dispose()


def test_a_database_without_a_newer_nullable_column_answers_null_for_it(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    seed(url, datetime(2026, 1, 6, 6, 0))
    engine = db.make_engine(url)
    with engine.begin() as conn:  # as a database from before 0.6 (no FTE columns, no views)
        for (view,) in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'view'")).all():
            conn.execute(text(f'DROP VIEW "{view}"'))
        for column in ("fte_p10", "fte_p50", "fte_p90"):
            conn.execute(text(f"ALTER TABLE gold_staffing_daily DROP COLUMN {column}"))
    engine.dispose()
    (row,) = _rows(url, tables.gold_staffing_daily)
    assert "fte_p50" not in row and row["staff_hours_p50"] == 36.0
    model = api_models.row_model("StaffingDaily", tables.gold_staffing_daily)
    assert model(**api_models.to_json_row(row)).fte_p50 is None


def test_local_iso_carries_the_offset_of_its_utc_twin() -> None:
    assert api_models.local_iso(datetime(2026, 3, 29, 3, 0), datetime(2026, 3, 29, 1, 0)) == "2026-03-29T03:00:00+02:00"
    assert api_models.local_iso(datetime(2026, 1, 5, 7, 0), datetime(2026, 1, 5, 12, 0)) == "2026-01-05T07:00:00-05:00"
    assert api_models.utc_iso(datetime(2026, 1, 5, 7, 0)) == "2026-01-05T07:00:00Z"


def test_the_api_serves_step_6s_plan_and_its_scenario_as_the_pipeline_wrote_them(tmp_path) -> None:
    from common import api
    from common.config import load_config
    from tests.api_server import get, serving
    from tests.test_capacity import run, setup_db

    path = setup_db(tmp_path)
    assert run(path) == 0 and run(path, "--scenario", "growth", "--set", "staffing.shrinkage=0.4") == 0
    engine = db.make_read_only_engine(load_config(path).database_url)
    with serving(api.create_app(engine, "Europe/Stockholm")) as url:
        status, plan = get(f"{url}/v1/capacity/plan?queue=%28centre%29", key=None)
        status_growth, growth = get(f"{url}/v1/capacity/plan?queue=%28centre%29&scenario=growth", key=None)
        status_list, listed = get(f"{url}/v1/scenarios", key=None)
    engine.dispose()
    assert (status, status_growth, status_list) == (200, 200, 200)
    assert [r["weeks_ahead"] for r in plan["items"]] == list(range(4, 27))  # one plan origin: every week of it
    assert {r["scenario"] for r in plan["items"]} == {"published"} and {r["scenario"] for r in growth["items"]} == {
        "growth"}
    # Shrinkage 40% instead of 30%: more FTE every week.
    assert all(g["fte_required_p50"] > p["fte_required_p50"] for g, p in zip(growth["items"], plan["items"]))
    assert [(r["scenario"], r["step"]) for r in listed["items"]] == [("growth", "6_capacity_plan")]
