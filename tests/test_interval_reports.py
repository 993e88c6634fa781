"""Interval-report sources end to end (steps 0 and 1) on hand-written reports: every reported call lands in
silver once, in its own interval, and what cannot be placed or looks wrong is named.

The config is the repository's (Stockholm, Mon-Fri 08:00-18:00) with `source.kind: interval`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pandas as pd

from common import db, tables
from common.config import load_config
from tests.conftest import write_config

load_bronze = importlib.import_module("0_load_bronze")
build_silver = importlib.import_module("1_build_silver")

COLUMNS = {"queue": "Queue", "interval_start": "IntervalStart", "offered": "Offered", "handled": "Handled",
           "abandoned": "Abandoned"}
ALWAYS = dict.fromkeys(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "00:00-24:00")


def report_config(tmp_path: Path, **sections) -> Path:
    return write_config(tmp_path, source__kind="interval", source__columns=COLUMNS, **sections)


def write_report(path: Path, rows: list[tuple]) -> None:
    """An interval report: one line per (queue, interval start, offered, handled, abandoned)."""
    lines = ["Queue,IntervalStart,Offered,Handled,Abandoned"] + [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def weekday_rows(queue: str, day: str, offered: int = 4) -> list[tuple]:
    """`offered` calls (all handled) in each half-hour 08:00 .. 17:30 of `day`."""
    starts = pd.date_range(f"{day} 08:00", f"{day} 17:30", freq="30min")
    return [(queue, f"{t:%Y-%m-%d %H:%M}", offered, offered, 0) for t in starts]


def _run(config: Path, as_of: str) -> int:
    args = ["--config", str(config), "--as-of", as_of]
    return load_bronze.main(args) or build_silver.main(args)


def _table(config: Path, table) -> pd.DataFrame:
    with db.make_engine(load_config(config).database_url).connect() as conn:
        return db.read_table(conn, table)


def _failed(config: Path, check: str) -> pd.DataFrame:
    checks = _table(config, tables.data_quality_checks)
    return checks[(checks["check_name"] == check) & ~checks["passed"]].reset_index(drop=True)


def _at(intervals: pd.DataFrame, queue: str, start: str) -> pd.Series:
    row = intervals[(intervals["queue"] == queue) & (intervals["interval_start"] == pd.Timestamp(start))]
    assert len(row) == 1, row
    return row.iloc[0]


# --- issue 14.6: handled + abandoned above offered ------------------------------------------------------

def test_an_interval_with_more_handled_than_offered_is_reconciled_and_named_not_a_halt(tmp_path: Path) -> None:
    config = report_config(tmp_path)
    rows = weekday_rows("Support", "2025-03-10")
    # 09:00: 5 offered but 6 handled and 1 abandoned (calls offered at 08:5x, answered at 09:0x): 7 reached the
    # queue's agents or gave up in it, so offered is raised to 7. The day: 19 x 4 + 7 = 83 offered.
    rows[2] = ("Support", "2025-03-10 09:00", 5, 6, 1)
    write_report(tmp_path / "inbox" / "report.csv", rows)

    assert _run(config, "2025-03-11") == 0
    intervals = _table(config, tables.silver_interval)
    at_nine = _at(intervals, "Support", "2025-03-10 09:00")
    assert (at_nine["offered"], at_nine["handled"], at_nine["abandoned"]) == (7, 6, 1)
    daily = _table(config, tables.silver_daily)
    assert daily.loc[daily["date"] == pd.Timestamp("2025-03-10"), "offered"].tolist() == [83]
    failed = _failed(config, "offered_reconciled")
    assert failed[["severity", "queue"]].values.tolist() == [["warning", "Support"]]
    assert "2025-03-10 09:00: offered 5, handled 6, abandoned 1" in failed["detail"].iloc[0]
    assert _failed(config, "schema").empty


# --- issue 14.2: the repeated hour of the autumn clock change ------------------------------------------

def fall_back_day(first: dict[str, int], second: dict[str, int], offered: int = 30) -> list[tuple]:
    """Ops' report of Sun 2025-10-26 in naive local time, in order: 50 half-hours, 02:00 and 02:30 twice (the
    summer-time ones `first`, then the winter-time ones `second`), `offered` calls in every other one."""
    rows = []
    for k in range(48):
        hhmm = f"{k // 2:02d}:{30 * (k % 2):02d}"
        rows.append(("Ops", f"2025-10-26 {hhmm}", first.get(hhmm, offered), first.get(hhmm, offered), 0))
        if hhmm == "02:30":
            rows += [("Ops", f"2025-10-26 {t}", n, n, 0) for t, n in second.items()]
    return rows


def test_the_repeated_fall_back_hour_of_an_interval_report_is_two_hours_of_calls(tmp_path: Path) -> None:
    config = report_config(tmp_path, rules__opening_hours={"default": ALWAYS, "queues": {}})
    # 02:00 CEST 11 calls, 02:30 CEST 12, then 02:00 CET 13 and 02:30 CET 12 (the same line as the first 02:30:
    # still another half-hour). The day: 46 x 30 + 11 + 12 + 13 + 12 = 1,428; today's code kept 1,405.
    rows = fall_back_day({"02:00": 11, "02:30": 12}, {"02:00": 13, "02:30": 12})
    assert len(rows) == 50
    write_report(tmp_path / "inbox" / "ops_20251026.csv", rows)

    assert _run(config, "2025-10-27") == 0
    intervals = _table(config, tables.silver_interval)
    night = intervals[intervals["interval_start"].dt.strftime("%H").isin(["02"])].sort_values("interval_start_utc")
    # 02:00 CEST = 00:00 UTC, 02:30 CEST = 00:30 UTC, 02:00 CET = 01:00 UTC, 02:30 CET = 01:30 UTC.
    assert night["interval_start_utc"].dt.strftime("%H:%M").tolist() == ["00:00", "00:30", "01:00", "01:30"]
    assert night["offered"].tolist() == [11, 12, 13, 12]
    assert len(intervals) == 50
    daily = _table(config, tables.silver_daily)
    assert daily["offered"].tolist() == [1428]
    assert _table(config, tables.bronze_rejects).empty


def test_a_third_row_in_the_repeated_hour_is_rejected_with_its_reason(tmp_path: Path) -> None:
    config = report_config(tmp_path, rules__opening_hours={"default": ALWAYS, "queues": {}})
    rows = fall_back_day({"02:00": 11}, {"02:00": 13, "02:30": 30})
    rows.insert(rows.index(("Ops", "2025-10-26 03:00", 30, 30, 0)), ("Ops", "2025-10-26 02:00", 7, 7, 0))
    write_report(tmp_path / "inbox" / "ops_20251026.csv", rows)

    assert _run(config, "2025-10-27") == 0
    rejects = _table(config, tables.bronze_rejects)
    assert rejects["raw"].tolist() == ["Ops,2025-10-26 02:00,7,7,0"]
    assert "the hour the clocks go back" in rejects["reason"].iloc[0]
    assert "UTC offset" in rejects["reason"].iloc[0]
    # The two placed rows count; the third is not guessed into either: 46 x 30 + 11 + 30 + 13 + 30 = 1,464.
    assert _table(config, tables.silver_daily)["offered"].tolist() == [1464]


def test_a_report_split_between_two_batches_still_places_its_second_fall_back_hour(tmp_path: Path) -> None:
    from common.readers import RawChunk
    from common.sources import parse_interval_chunks

    spec = load_config(report_config(tmp_path)).source
    header = ["Queue", "IntervalStart", "Offered", "Handled", "Abandoned"]
    first = RawChunk(pd.DataFrame([["Ops", "2025-10-26 02:00", "11", "11", "0"]], columns=header), 1)
    second = RawChunk(pd.DataFrame([["Ops", "2025-10-26 02:00", "13", "13", "0"]], columns=header), 2)
    repeats: dict = {}
    a, _ = parse_interval_chunks([(first, "big.csv")], spec, "Europe/Stockholm", repeats=repeats)
    b, _ = parse_interval_chunks([(second, "big.csv")], spec, "Europe/Stockholm", repeats=repeats)
    # The file's second 02:00 is 01:00 UTC although it came in the next batch; another file starts afresh.
    assert [f"{t:%H:%M}" for t in (*a["interval_start_utc"], *b["interval_start_utc"])] == ["00:00", "01:00"]
    c, _ = parse_interval_chunks([(second, "other.csv")], spec, "Europe/Stockholm", repeats=repeats)
    assert f"{c['interval_start_utc'].iloc[0]:%H:%M}" == "00:00"


# --- issue 14.4: interval reports not silently turned into numbers -------------------------------------

def test_a_gap_of_three_intervals_in_a_report_is_a_warning_naming_queue_day_and_intervals(tmp_path: Path) -> None:
    config = report_config(tmp_path)
    # Support, Mon 03-10 .. Thu 03-13: 10 calls every half-hour 08:00-17:30 (20 rows a day). Thursday's report
    # lacks 10:00, 10:30 and 11:00: 17 of 20 = 85% of its usual intervals, above the 80% a day needs, so the day
    # is complete by the rules; but a busy interval without a row is missing data (exp(-10) of being empty).
    rows = [r for d in ("2025-03-10", "2025-03-11", "2025-03-12", "2025-03-13") for r in weekday_rows("Support", d, 10)]
    rows = [r for r in rows if r[1] not in ("2025-03-13 10:00", "2025-03-13 10:30", "2025-03-13 11:00")]
    write_report(tmp_path / "inbox" / "support.csv", rows)

    assert _run(config, "2025-03-14") == 0
    failed = _failed(config, "completeness")
    assert failed[["severity", "queue"]].values.tolist() == [["warning", "Support"]]
    assert "no row for 3 interval(s) that normally carry calls: Thu 2025-03-13 10:00-11:30" in failed["detail"].iloc[0]


def test_two_rows_with_different_numbers_for_one_interval_keep_the_newest_and_are_named(tmp_path: Path) -> None:
    config = report_config(tmp_path)
    # The day's report has 4 calls at 09:00; a later export (the next file) restates 09:00 as 6; the same
    # file also holds 10:00 twice, 4 then 5 (the last row of a file wins). Day: 18 x 4 + 6 + 5 = 83.
    rows = weekday_rows("Support", "2025-03-10")
    rows.insert(5, ("Support", "2025-03-10 10:00", 5, 5, 0))
    write_report(tmp_path / "inbox" / "a_report.csv", rows)
    # The correction also repeats 11:00 unchanged (not restated); its two rows, two hours apart, say nothing
    # about the report's interval length (no alignment warning).
    write_report(tmp_path / "inbox" / "b_correction.csv", [("Support", "2025-03-10 09:00", 6, 6, 0),
                                                           ("Support", "2025-03-10 11:00", 4, 4, 0)])

    assert _run(config, "2025-03-11") == 0
    intervals = _table(config, tables.silver_interval)
    assert _at(intervals, "Support", "2025-03-10 09:00")["offered"] == 6
    assert _at(intervals, "Support", "2025-03-10 10:00")["offered"] == 5
    assert _table(config, tables.silver_daily)["offered"].tolist() == [83]
    failed = _failed(config, "report_restated")
    assert failed[["severity", "queue"]].values.tolist() == [["warning", "Support"]]
    detail = failed["detail"].iloc[0]
    assert "2025-03-10 09:00 offered 4, handled 4 -> offered 6, handled 6 (by a newer export)" in detail
    assert "2025-03-10 10:00 offered 4, handled 4 -> offered 5, handled 5 (twice in one file)" in detail
    assert "11:00" not in detail
    assert _failed(config, "report_alignment").empty


def test_thirty_minute_rows_starting_at_quarter_past_are_named_with_the_fix(tmp_path: Path) -> None:
    config = report_config(tmp_path)
    # A 30-minute report whose intervals run 08:15-08:45, ..., 17:15-17:45: each spans two grid half-hours.
    starts = pd.date_range("2025-03-10 08:15", "2025-03-10 17:15", freq="30min")
    # Sales' 15-minute rows (08:00, 08:15, ...) sum into half-hours exactly: nothing to say about them.
    quarters = pd.date_range("2025-03-10 08:00", "2025-03-10 17:45", freq="15min")
    write_report(tmp_path / "inbox" / "report.csv", [("Support", f"{t:%Y-%m-%d %H:%M}", 4, 4, 0) for t in starts]
                 + [("Sales", f"{t:%Y-%m-%d %H:%M}", 2, 2, 0) for t in quarters])

    assert _run(config, "2025-03-11") == 0
    failed = _failed(config, "report_alignment")
    assert failed[["severity", "queue"]].values.tolist() == [["warning", "Support"]]
    detail = failed["detail"].iloc[0]
    assert "19 report row(s) of 30 minutes start at :15, :45 (first 2025-03-10 08:15)" in detail
    assert "counted in the interval they start in (15 minutes early)" in detail
    assert "rules.interval_minutes to 60" in detail
    # Placed as before (the day's total is right): 08:15 in 08:00.
    intervals = _table(config, tables.silver_interval)
    assert _at(intervals, "Support", "2025-03-10 08:00")["offered"] == 4
    assert _at(intervals, "Sales", "2025-03-10 08:00")["offered"] == 4


def test_the_schema_check_names_the_queue_and_interval_of_a_row_with_offered_below_handled() -> None:
    from common.validation import check_silver_schema

    intervals = pd.DataFrame({"queue": ["Support", "Support"], "date": pd.to_datetime(["2025-03-10"] * 2),
                              "interval_start": pd.to_datetime(["2025-03-10 08:00", "2025-03-10 09:00"]),
                              "interval_start_utc": pd.to_datetime(["2025-03-10 07:00", "2025-03-10 08:00"]),
                              "offered": [4.0, 5.0], "handled": [4.0, 6.0], "abandoned": [0.0, 1.0],
                              "is_open": True, "offered_outside_hours": 0.0})
    detail = check_silver_schema(intervals, intervals.iloc[:0])[0].detail
    assert "1 rows with offered < handled + abandoned (first: queue Support, 2025-03-10 09:00)" in detail
