"""The two other source paths, end to end through steps 0 and 1: a SQL source database and an interval report."""

from __future__ import annotations

import importlib
import sqlite3
from datetime import date
from pathlib import Path

import pandas as pd

from common import db, tables
from common.config import load_config
from common.demo import demo_legs, write_demo_sqlite_source
from tests.conftest import write_config, write_csv

load_bronze = importlib.import_module("0_load_bronze")
build_silver = importlib.import_module("1_build_silver")


def _table(config: Path, table) -> pd.DataFrame:
    engine = db.make_engine(load_config(config).database_url)
    with engine.connect() as conn:
        frame = db.read_table(conn, table)
    engine.dispose()
    return frame


def test_sql_source_loads_only_rows_newer_than_the_watermark(tmp_path: Path) -> None:
    source = tmp_path / "acd.db"
    legs = demo_legs(date(2025, 3, 3), date(2025, 3, 5), scale=0.05)  # Mon..Wed, a few hundred legs
    write_demo_sqlite_source(legs[legs["StartTime"] < "2025-03-05"], source)
    config = write_config(tmp_path, source__csv_glob=None, source__sql_url=f"sqlite:///{source}",
                          source__sql_query='SELECT * FROM acd_calls WHERE "StartTime" >= :watermark')
    args = ["--config", str(config), "--as-of", "2025-03-06"]
    assert load_bronze.main(args) == 0
    first = _table(config, tables.bronze_cdr)
    assert len(first) == (legs["StartTime"] < "2025-03-05").sum()

    write_demo_sqlite_source(legs, source)  # the ACD database now also holds Wednesday
    assert load_bronze.main(args) == 0
    log = _table(config, tables.bronze_load_log).sort_values("load_id")
    # The second query reads from the first load's newest start time on: Wednesday plus the rows at that very second.
    assert log["rows_read"].iloc[1] < len(legs) and log["rows_loaded"].iloc[1] == (legs["StartTime"] >= "2025-03-05").sum()
    assert log["watermark"].iloc[1] > log["watermark"].iloc[0]
    assert len(_table(config, tables.bronze_cdr)) == len(legs)
    assert build_silver.main(args) == 0
    daily = _table(config, tables.silver_daily)
    assert daily["date"].dt.strftime("%m-%d").unique().tolist() == ["03-03", "03-04", "03-05"]


def test_interval_report_of_five_minutes_becomes_thirty_minute_silver(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, source__kind="interval",
        source__columns={"queue": "queue", "interval_start": "interval_start", "offered": "offered",
                         "handled": "handled", "aht_seconds": "aht_seconds"},
        source__outcome_map={}, rules__holidays={"country": "US", "subdivision": None, "extra_closed_dates": []},
        timezone="America/New_York", validation__min_calls_per_open_interval=1000)
    # Monday 2003-03-03, 08:00-08:55 in 5-minute rows: 6 rows of 10 calls then 6 rows of 20 calls.
    rows = ["queue,interval_start,offered,handled,aht_seconds"]
    for i in range(12):
        minute = 5 * i
        n = 10 if i < 6 else 20
        rows.append(f"ALL,2003-03-03T08:{minute:02d}:00,{n},{n},{100 if i < 6 else 200}")
    write_csv(tmp_path / "inbox" / "report.csv", "\n".join(rows) + "\n")
    args = ["--config", str(config), "--as-of", "2003-03-04"]
    assert load_bronze.main(args) == 0
    assert build_silver.main(args) == 0
    intervals = _table(config, tables.silver_interval)
    busy = intervals[intervals["offered"] > 0]
    assert busy["interval_start"].dt.strftime("%H:%M").tolist() == ["08:00", "08:30"]
    assert busy["offered"].tolist() == [60.0, 120.0]
    assert busy["aht_seconds"].tolist() == [100.0, 200.0]
    daily = _table(config, tables.silver_daily)
    assert daily["offered"].tolist() == [180.0]
    assert daily["aht_seconds"].round(6).tolist() == [round((60 * 100 + 120 * 200) / 180, 6)]
    assert _table(config, tables.silver_calls).empty  # interval reports have no contacts
