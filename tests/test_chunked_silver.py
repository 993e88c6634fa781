"""Step 1 in chunks (and with a worker process) builds exactly the silver tables of a one-shot build."""

from __future__ import annotations

import importlib
import shutil
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from common import db, tables
from common.config import load_config
from common.silver import chunk_dates
from tests.conftest import CDR_HEADER, write_config, write_csv

load_bronze = importlib.import_module("0_load_bronze")
build_silver = importlib.import_module("1_build_silver")

HEADER = CDR_HEADER

# Mon 2025-03-10 .. Thu 2025-03-13. A redial chain and a transfer chain cross midnight, so a chunk of one
# day only gets them right by reading its neighbour days too.
LEGS = HEADER + """\
    N3,,Billing,2025-03-10 09:30:00,,,ANSWERED,5,100,C5,+465,,voice
    R1,,Support,2025-03-10 23:55:00,,2025-03-10 23:56:00,ABANDONED,60,0,C1,+461,,voice
    R2,,Support,2025-03-11 00:02:00,,,ANSWERED,10,100,C1,+461,,voice
    T1,,Billing,2025-03-11 23:59:00,,,ANSWERED,5,120,C2,+462,,voice
    T2,T1,Support,2025-03-12 00:01:00,,,ANSWERED,0,60,C2,+462,,voice
    N1,,Support,2025-03-12 09:00:00,,,ANSWERED,5,200,C3,+463,,voice
    N2,,Support,2025-03-13 10:00:00,,,ANSWERED,5,300,C4,+464,,voice
    """
SILVER = {tables.silver_calls: ["contact_id"], tables.silver_interval: ["queue", "interval_start_utc"],
          tables.silver_daily: ["queue", "date"], tables.silver_day_state: ["date"]}


def _tables(config: Path) -> dict[str, pd.DataFrame]:
    with db.make_engine(load_config(config).database_url).connect() as conn:
        out = {t.name: db.read_table(conn, t).drop(columns=["run_id"], errors="ignore").sort_values(key)
               .reset_index(drop=True) for t, key in SILVER.items()}
        checks = db.read_table(conn, tables.data_quality_checks)
    out["checks"] = checks[["check_name", "severity", "passed", "detail", "queue"]].sort_values(
        ["check_name", "queue", "detail"]).reset_index(drop=True)
    return out


def test_chunks_are_runs_of_consecutive_days_at_most_chunk_days_long() -> None:
    days = pd.to_datetime(["2025-03-01", "2025-03-02", "2025-03-03", "2025-03-05", "2025-03-06"]).date.tolist()
    # 01..03 is a run of three cut after two days; the gap before 05 starts a new chunk.
    assert chunk_dates(days, 2) == [days[0:2], days[2:3], days[3:5]]
    assert chunk_dates(days, 31) == [days[0:3], days[3:5]]


def test_one_day_chunks_built_by_a_worker_equal_a_one_shot_build(tmp_path: Path) -> None:
    one_shot = write_config(tmp_path)
    write_csv(tmp_path / "inbox" / "legs.csv", LEGS)
    args = ["--config", str(one_shot), "--as-of", "2025-03-14"]
    assert load_bronze.main(args) == 0
    chunked_dir = tmp_path / "chunked"
    chunked_dir.mkdir()
    chunked = write_config(chunked_dir)
    shutil.copytree(tmp_path / "data", chunked_dir / "data")  # the same bronze, rows and ids alike

    assert build_silver.main([*args, "--chunk-days", "31", "--workers", "0"]) == 0
    assert build_silver.main(["--config", str(chunked), "--as-of", "2025-03-14", "--chunk-days", "1",
                              "--workers", "1"]) == 0
    expected, got = _tables(one_shot), _tables(chunked)
    for name in expected:
        pd.testing.assert_frame_equal(got[name], expected[name], obj=name)

    calls = got["silver_calls"].set_index("contact_id")
    # R2 (00:02) redials 6 min after R1 abandoned (23:56): one contact of 03-10 with 2 attempts, answered.
    # T2 is T1's transfer leg after midnight: one Billing contact of 03-11 with 2 legs, 120 + 60 = 180 s.
    assert sorted(calls.index) == ["N1", "N2", "N3", "R1", "T1"]
    assert (calls.loc["R1", "attempts"], calls.loc["R1", "outcome"]) == (2, "answered")
    assert calls.loc["R1", "date"] == pd.Timestamp("2025-03-10")
    assert (calls.loc["T1", "legs"], calls.loc["T1", "handle_seconds"], calls.loc["T1", "queue"]) == (2, 180.0, "Billing")
    assert calls.loc["T1", "date"] == pd.Timestamp("2025-03-11")


def test_a_failed_critical_check_in_a_chunked_build_writes_no_chunk(tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path)
    write_csv(tmp_path / "inbox" / "legs.csv", LEGS)
    # Newest contact 03-13 10:00; the last open interval before 04-30 ends on 04-29: far more than 36 h.
    assert load_bronze.main(["--config", str(config), "--as-of", "2025-04-30"]) == 0
    assert build_silver.main(["--config", str(config), "--as-of", "2025-04-30", "--chunk-days", "7",
                              "--workers", "0"]) == 2
    assert "recency" in capsys.readouterr().err
    got = _tables(config)
    assert got["silver_calls"].empty and got["silver_daily"].empty and got["silver_day_state"].empty
    assert not got["checks"].loc[got["checks"]["check_name"] == "recency", "passed"].any()


@pytest.mark.parametrize("value", ["0", "x"])
def test_chunk_days_below_one_is_a_usage_error(config_path: Path, value: str) -> None:
    with pytest.raises(SystemExit) as exc:
        build_silver.main(["--config", str(config_path), "--chunk-days", value])
    assert exc.value.code == 2


def test_chunks_end_before_they_hold_more_than_chunk_rows_bronze_rows() -> None:
    days = [date(2025, 3, 1) + timedelta(days=k) for k in range(6)]
    rows = dict(zip(days, [100, 100, 250, 50, 400, 10]))
    # 100+100 fit in 250 (+250 would not); 250 alone; 50 (+400 would not); 400 (+10 would not); 10.
    assert chunk_dates(days, 31, rows, 250) == [days[0:2], days[2:3], days[3:4], days[4:5], days[5:6]]
    # A day busier than the limit is a chunk on its own; without counts only chunk_days applies.
    assert chunk_dates(days, 31, rows, 50) == [[d] for d in days]
    assert chunk_dates(days, 4, None, 50) == [days[0:4], days[4:6]]
