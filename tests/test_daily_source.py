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
build_silver = importlib.import_module("1_build_silver")

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


# --- silver: daily history beside an interval report ------------------------------------------------------

INTERVAL_COLUMNS = {"queue": "Queue", "interval_start": "IntervalStart", "offered": "Offered", "handled": "Handled",
                    "abandoned": "Abandoned"}

# Mon 2025-03-03 .. Tue 2025-03-11. Support is open Sat 10-14 (the repository's config), Billing Mon-Fri.
# Support's Wednesday 03-05 is missing; its Sunday calls are outside hours; its 999s overlap the intervals.
HISTORY = """\
    Queue,Day,Offered,Handled,AHT
    Support,03/03/2025,100,90,300
    Support,04/03/2025,90,85,300
    Support,06/03/2025,80,80,300
    Support,07/03/2025,70,70,300
    Support,08/03/2025,10,10,300
    Support,09/03/2025,5,5,300
    Support,10/03/2025,999,999,300
    Support,11/03/2025,999,999,300
    Billing,03/03/2025,40,40,200
    Billing,04/03/2025,41,41,200
    Billing,05/03/2025,44,44,200
    Billing,06/03/2025,45,45,200
    Billing,07/03/2025,46,46,200
    Billing,10/03/2025,42,42,200
    Billing,11/03/2025,43,43,200
    """


def _interval_report(path: Path, days: list[str]) -> None:
    """Support: 4 calls in each half-hour 08:00..17:30 of each day (80 a day)."""
    lines = ["Queue,IntervalStart,Offered,Handled,Abandoned"]
    for day in days:
        lines += [f"Support,{t:%Y-%m-%d %H:%M},4,4,0" for t in pd.date_range(f"{day} 08:00", f"{day} 17:30",
                                                                              freq="30min")]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def both_config(tmp_path: Path, database_url: str, monkeypatch) -> Path:
    """Each backend in turn (SQLite, PostgreSQL): intervals for Support's last two days, daily totals before."""
    monkeypatch.setenv("WFM_DB_URL", database_url)
    path = write_config(tmp_path, source__kind="interval", source__columns=INTERVAL_COLUMNS,
                        daily_history=DAILY_SOURCE)
    (tmp_path / "daily").mkdir()
    write_csv(tmp_path / "daily" / "history.csv", HISTORY)
    _interval_report(tmp_path / "inbox" / "report.csv", ["2025-03-10", "2025-03-11"])
    return path


def _steps_0_1(config: Path, as_of: str = "2025-03-12") -> int:
    args = ["--config", str(config), "--as-of", as_of]
    return load_bronze.main(args) or build_silver.main(args)


def test_silver_daily_takes_interval_days_from_the_intervals_and_older_days_from_the_daily_rows(
        both_config: Path) -> None:
    assert _steps_0_1(both_config) == 0
    daily = _table(both_config, tables.silver_daily).sort_values(["queue", "date"])
    support = daily[daily["queue"] == "Support"]
    assert support["offered"].tolist() == [100, 90, 0, 80, 70, 10, 0, 80, 80]
    assert support["offered_outside_hours"].tolist() == [0, 0, 0, 0, 0, 0, 5, 0, 0]
    assert support["is_open"].tolist() == [True] * 6 + [False, True, True]
    assert support["source_kind"].fillna("detailed").tolist() == ["daily"] * 7 + ["detailed"] * 2
    billing = daily[daily["queue"] == "Billing"]
    assert billing["offered"].tolist() == [40, 41, 44, 45, 46, 0, 0, 42, 43]
    assert billing["is_open"].tolist() == [True] * 5 + [False, False, True, True]
    assert (billing["source_kind"] == "daily").all()
    intervals = _table(both_config, tables.silver_interval)
    assert set(intervals["queue"]) == {"Support"}  # a daily-only queue has no intervals
    assert sorted(intervals["date"].dt.strftime("%Y-%m-%d").unique()) == ["2025-03-10", "2025-03-11"]
    checks = _table(both_config, tables.data_quality_checks)
    failed = checks[~checks["passed"]]
    assert failed["check_name"].tolist() == ["daily_completeness"], failed[["check_name", "queue", "detail"]]
    assert failed["queue"].tolist() == ["Support"]
    assert "(2025-03-05)" in failed["detail"].iloc[0]
    loads = _table(both_config, tables.bronze_load_log)
    assert sorted(loads["source_kind"]) == ["daily", "interval"]


def test_a_restated_day_in_a_later_daily_export_wins_in_silver(both_config: Path) -> None:
    assert _steps_0_1(both_config) == 0
    write_csv(both_config.parent / "daily" / "restated.csv", "Queue,Day,Offered,Handled,AHT\nBilling,04/03/2025,50,50,200")
    assert _steps_0_1(both_config) == 0
    daily = _table(both_config, tables.silver_daily)
    billing = daily[daily["queue"] == "Billing"].set_index("date")["offered"]
    assert billing[pd.Timestamp("2025-03-04")] == 50
    assert len(billing) == 9  # replaced, not added


# --- the pure rules of common.daily_history ---------------------------------------------------------------

def _bronze_rows(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["queue", "date", "offered", "handled", "abandoned", "aht_seconds", "load_id",
                                       "source_row"]).astype({"date": "datetime64[ns]"})


def test_old_queue_names_are_summed_into_the_current_one_and_the_newest_load_of_a_day_wins() -> None:
    from common.daily_history import newest_daily_rows

    rows = _bronze_rows([("Kundservice", "2025-03-10", 10, 10, 0, 100, 1, 1),
                         ("Support", "2025-03-10", 30, 20, 10, 400, 1, 2),
                         ("Support", "2025-03-10", 40, 30, 10, 400, 2, 1),   # restated in load 2
                         ("Support", "2025-03-11", 5, None, None, None, 1, 3)])
    out = newest_daily_rows(rows, {"Kundservice": "Support"})
    assert out["offered"].tolist() == [50, 5]
    assert out["handled"].tolist()[0] == 40 and pd.isna(out["handled"].iloc[1])
    assert out["aht_seconds"].iloc[0] == pytest.approx((10 * 100 + 30 * 400) / 40)  # weighted by handled


def test_a_zero_day_stays_open_and_open_days_after_the_last_row_stay_unknown() -> None:
    from common.daily_history import daily_from_history
    from common.opening_hours import parse_opening_hours

    hours = parse_opening_hours({"default": {d: "08:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")}
                                 | {"sat": "closed", "sun": "closed"}})
    rows = _bronze_rows([("Ops", "2025-03-06", 12, 12, 0, 200, 1, 1),    # Thursday
                         ("Ops", "2025-03-07", 0, None, None, None, 1, 2)])  # Friday: open, no calls
    out, missing = daily_from_history(rows.drop(columns=["load_id", "source_row"]), hours, None, {},
                                      pd.Timestamp("2025-03-11").date())
    # Sat and Sun after the last row are closed (known: 0); Monday is open and not exported yet: left out
    assert out["date"].dt.strftime("%a").tolist() == ["Thu", "Fri", "Sat", "Sun"]
    assert out["offered"].tolist() == [12, 0, 0, 0] and out["is_open"].tolist() == [True, True, False, False]
    assert out["handled"].tolist() == [12, 0, 0, 0]  # a blank beside 0 calls is 0
    assert missing.empty


def test_daily_totals_loaded_as_an_interval_report_are_refused_with_a_pointer_to_source_kind_daily() -> None:
    from common.aggregate import intervals_from_report
    from common.errors import DataError

    report = pd.DataFrame({"queue": ["Support", "Support"], "interval_start": pd.to_datetime(["2025-03-10",
                                                                                              "2025-03-11"]),
                           "offered": [120.0, 100.0], "load_id": [1, 1]})
    report["interval_start_utc"] = report["interval_start"]
    with pytest.raises(DataError, match=r"report intervals are 1440 minutes long .* too coarse .* source\.kind: daily"):
        intervals_from_report(report, pd.DataFrame(), 30)
