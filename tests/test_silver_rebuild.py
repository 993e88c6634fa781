"""Step 1's incremental rebuild reaches every day whose contacts change: a re-export that moves a call, a new grid."""

from __future__ import annotations

import importlib
from pathlib import Path

import pandas as pd
import pytest

from common import db, tables
from common.config import load_config
from tests.conftest import CDR_HEADER, write_config, write_csv

load_bronze = importlib.import_module("0_load_bronze")
build_silver = importlib.import_module("1_build_silver")

SILVER = (tables.silver_calls, tables.silver_interval, tables.silver_daily)
KEYS = {"silver_calls": ["contact_id"], "silver_interval": ["queue", "interval_start_utc"],
        "silver_daily": ["queue", "date"]}


def _day(day: str, tag: str, extra: str = "") -> str:
    """60 answered Support calls, 08:00, 08:05, ... 12:55, each from its own customer (no redials)."""
    rows = [f"{tag}{k},,Support,{day} {8 + k // 12:02d}:{k % 12 * 5:02d}:00,,,ANSWERED,5,100,{tag}C{k},+46{tag}{k},,voice"
            for k in range(60)]
    return CDR_HEADER + "\n".join(rows) + "\n" + extra


# X1 comes on top of the first day's 60 calls: 241 contacts in all.
X1_ON_10 = "X1,,Support,2025-03-10 09:03:00,,,ANSWERED,5,100,CX,+46999,,voice\n"
X1_ON_12 = "X1,,Support,2025-03-12 09:03:00,,,ANSWERED,5,100,CX,+46999,,voice\n"


def _run(config: Path, as_of: str, *extra: str) -> int:
    args = ["--config", str(config), "--as-of", as_of]
    rc = load_bronze.main(args)
    return rc if rc else build_silver.main([*args, *extra])


def _silver(config: Path) -> dict[str, pd.DataFrame]:
    """Every silver table, sorted by its key (rows' order on disk is not part of the result)."""
    with db.make_engine(load_config(config).database_url).connect() as conn:
        return {t.name: db.read_table(conn, t).sort_values(KEYS[t.name]).reset_index(drop=True) for t in SILVER}


@pytest.fixture
def moved_call(tmp_path: Path, database_url: str) -> Path:
    """Four daily files (Mon 2025-03-10 .. Thu 03-13) built for as-of 03-14, then the first file re-exported
    (same name) with X1 moved two days later, to 2025-03-12 09:03. On each backend (the look-ups are SQL joins)."""
    config = write_config(tmp_path, database__url=database_url)
    inbox = tmp_path / "inbox"
    for n, day in enumerate(["2025-03-10", "2025-03-11", "2025-03-12", "2025-03-13"], start=1):
        write_csv(inbox / f"day{n}.csv", _day(day, chr(ord("A") + n - 1), X1_ON_10 if n == 1 else ""))
    assert _run(config, "2025-03-14") == 0
    assert _silver(config)["silver_daily"]["offered"].sum() == 241
    write_csv(inbox / "day1.csv", _day("2025-03-10", "A", X1_ON_12))
    return config


def test_a_call_moved_two_days_by_a_re_export_is_counted_once_by_the_nightly_run(moved_call: Path) -> None:
    assert _run(moved_call, "2025-03-14") == 0
    silver = _silver(moved_call)
    calls = silver["silver_calls"]
    assert calls["contact_id"].tolist().count("X1") == 1
    assert calls.loc[calls["contact_id"] == "X1", "start_time"].tolist() == [pd.Timestamp("2025-03-12 09:03")]
    daily = silver["silver_daily"].set_index(silver["silver_daily"]["date"].dt.strftime("%m-%d"))["offered"]
    # Mon lost X1 (60), Wed gained it (61): 241 in all, as before the re-export.
    assert daily.to_dict() == {"03-10": 60.0, "03-11": 60.0, "03-12": 61.0, "03-13": 60.0}


@pytest.mark.parametrize("chunk_days", ["31", "1"])
def test_full_rebuild_after_a_moved_call_gives_the_nightly_tables(moved_call: Path, chunk_days: str) -> None:
    assert _run(moved_call, "2025-03-14") == 0
    nightly = _silver(moved_call)
    # One day per chunk: X1's old export (Mon) is read without its newer one (Wed), which must still win.
    assert _run(moved_call, "2025-03-14", "--full", "--chunk-days", chunk_days) == 0
    full = _silver(moved_call)
    assert full["silver_calls"]["contact_id"].tolist().count("X1") == 1
    for name, frame in full.items():
        pd.testing.assert_frame_equal(frame, nightly[name])


def test_a_new_interval_length_rebuilds_every_day_on_the_new_grid(tmp_path: Path, database_url: str, caplog) -> None:
    config = write_config(tmp_path, database__url=database_url)
    for n, day in enumerate(["2025-03-10", "2025-03-11"], start=1):
        write_csv(tmp_path / "inbox" / f"day{n}.csv", _day(day, chr(ord("A") + n - 1)))
    assert _run(config, "2025-03-12") == 0
    write_config(tmp_path, database__url=database_url, rules__interval_minutes=15)
    write_csv(tmp_path / "inbox" / "day3.csv", _day("2025-03-12", "C"))
    assert _run(config, "2025-03-13") == 0
    intervals = _silver(config)["silver_interval"]
    # One queue, three whole days on the 15-minute grid: 96 each, none left at the old 48.
    assert intervals.groupby(intervals["date"].dt.strftime("%m-%d")).size().to_dict() == {
        "03-10": 96, "03-11": 96, "03-12": 96}
    assert intervals["offered"].sum() == 180
    assert "built with 30-minute intervals, rules.interval_minutes is now 15: rebuilding every day" in caplog.text
