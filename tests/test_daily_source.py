"""source.kind daily and daily_history: daily totals into bronze_daily, silver_daily, and the runs that follow."""

from __future__ import annotations

import importlib
from pathlib import Path

import pandas as pd
import pytest

from common import db, tables
from common.config import load_config
from common.errors import ConfigError
from tests.conftest import write_config, write_csv

load_bronze = importlib.import_module("0_load_bronze")

DAILY_SOURCE = {"kind": "daily", "csv_glob": "daily/*.csv",
                "columns": {"queue": "Queue", "date": {"column": "Day", "format": "%d/%m/%Y"}, "offered": "Offered",
                            "handled": "Handled", "aht_seconds": "AHT"}}

# Mon 2025-03-10 .. Wed 2025-03-12; rows 4-7 are bad, each for one reason.
DAILY = """\
    Queue,Day,Offered,Handled,AHT
    Support,10/03/2025,120,110,300
    Support,11/03/2025,100,95,310
    Billing,10/03/2025,40,38,200
    Billing,2025-03-11,41,39,200
    Billing,12/03/2025,,39,200
    Billing,12/03/2025,-3,0,200
    ,12/03/2025,10,9,200
    """


def _table(config: Path, table) -> pd.DataFrame:
    with db.make_engine(load_config(config).database_url).connect() as conn:
        return db.read_table(conn, table)


def _load(config: Path, as_of: str = "2025-03-13") -> int:
    return load_bronze.main(["--config", str(config), "--as-of", as_of])


@pytest.fixture
def daily_config(tmp_path: Path) -> Path:
    path = write_config(tmp_path, source=DAILY_SOURCE)
    (tmp_path / "daily").mkdir()
    write_csv(tmp_path / "daily" / "2025-03.csv", DAILY)
    return path


def test_a_daily_export_loads_to_bronze_daily_with_each_bad_row_rejected_for_its_reason(daily_config: Path) -> None:
    assert _load(daily_config) == 0
    rows = _table(daily_config, tables.bronze_daily).sort_values(["queue", "date"])
    assert rows[["queue", "date", "offered", "handled", "aht_seconds"]].astype(str).values.tolist() == [
        ["Billing", "2025-03-10", "40.0", "38.0", "200.0"],
        ["Support", "2025-03-10", "120.0", "110.0", "300.0"],
        ["Support", "2025-03-11", "100.0", "95.0", "310.0"],
    ]
    assert rows["abandoned"].isna().all()  # not in the export: unknown, not 0
    rejects = _table(daily_config, tables.bronze_rejects).sort_values("source_row")
    assert rejects["source_row"].tolist() == [4, 5, 6, 7]
    reasons = rejects["reason"].tolist()
    assert reasons[0].startswith("date: cannot parse '2025-03-11' (expected format %d/%m/%Y")
    assert reasons[1] == "offered: empty (source.columns.offered = 'Offered')"
    assert reasons[2] == "offered: -3 is negative"
    assert reasons[3] == "queue: empty (source.columns.queue = 'Queue')"
    log = _table(daily_config, tables.bronze_load_log)
    assert log["source_kind"].tolist() == ["daily"]


def test_reloading_a_daily_export_adds_nothing_and_a_restated_day_is_a_new_row(daily_config: Path) -> None:
    assert _load(daily_config) == 0
    assert _load(daily_config) == 0  # the same file: skipped by its content hash
    write_csv(daily_config.parent / "daily" / "2025-03-copy.csv", DAILY + "    Support,11/03/2025,104,99,310\n")
    assert _load(daily_config) == 0  # the same rows again add nothing; the restated Support day is one new row
    rows = _table(daily_config, tables.bronze_daily)
    assert len(rows) == 4
    support_11 = rows[(rows["queue"] == "Support") & (rows["date"] == "2025-03-11")]
    assert sorted(support_11["offered"]) == [100.0, 104.0]
    assert len(_table(daily_config, tables.bronze_rejects)) == 8  # a reject is kept per file: 4 in each


def test_a_daily_source_names_its_required_columns(tmp_path: Path) -> None:
    path = write_config(tmp_path, source={**DAILY_SOURCE, "columns": {"queue": "Queue", "offered": "Offered"}})
    with pytest.raises(ConfigError, match=r"source\.columns\.date.*required"):
        load_config(path)


def test_daily_history_must_be_of_kind_daily(tmp_path: Path) -> None:
    path = write_config(tmp_path, daily_history={**DAILY_SOURCE, "kind": "interval",
                                                 "columns": {"queue": "Queue", "interval_start": "Day",
                                                             "offered": "Offered"}})
    with pytest.raises(ConfigError, match="daily_history: kind is 'interval', must be daily"):
        load_config(path)
