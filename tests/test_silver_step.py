"""Step 1 end to end on a hand-written export: exact silver rows, idempotent, incremental, checks that stop it."""

from __future__ import annotations

import importlib
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from common import db, tables
from common.config import load_config
from tests.conftest import CDR_HEADER, write_config, write_csv

load_bronze = importlib.import_module("0_load_bronze")
build_silver = importlib.import_module("1_build_silver")

HEADER = CDR_HEADER

# Monday 2025-03-10 (open 08-18) and Tuesday 2025-03-11 (closed by config).
DAY1 = HEADER + """\
    L1,,Support,2025-03-10 08:05:00,,,ANSWERED,20,300,C1,+461,,voice
    L2,,Support,2025-03-10 09:00:00,,,ABANDONED,40,0,C2,+462,,voice
    L3,,Support,2025-03-10 09:04:00,,,ANSWERED,10,200,C2,+462,,voice
    L4,,Billing,2025-03-10 10:00:00,,,ANSWERED,5,100,C3,+463,,voice
    L5,L4,Support,2025-03-10 10:02:00,,,ANSWERED,0,150,C3,+463,,voice
    L6,L5,Billing,2025-03-10 10:05:00,,,ANSWERED,0,50,C3,+463,,voice
    L7,,Support,2025-03-10 19:00:00,,,ANSWERED,5,100,C4,+464,,voice
    L8,,Support,2025-03-10 11:00:00,,,ABANDONED,2,0,C5,+465,,voice
    L9,,Billing,2025-03-10 12:10:00,,,ABANDONED,30,0,C6,+466,,voice
    L10,,Support,2025-03-11 09:00:00,,,ANSWERED,5,100,C7,+467,,voice
    """


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = write_config(tmp_path, rules__holidays={"country": "SE", "subdivision": None,
                                                    "extra_closed_dates": ["2025-03-11"]})
    write_csv(tmp_path / "inbox" / "day1.csv", DAY1)
    return path


def _run(config: Path, as_of: str, *extra: str) -> int:
    args = ["--config", str(config), "--as-of", as_of]
    rc = load_bronze.main(args)
    return rc if rc else build_silver.main([*args, *extra])


def _table(config: Path, table) -> pd.DataFrame:
    with db.make_engine(load_config(config).database_url).connect() as conn:
        return db.read_table(conn, table)


def test_silver_daily_matches_the_hand_computed_rows(config: Path) -> None:
    assert _run(config, "2025-03-12") == 0
    daily = _table(config, tables.silver_daily).sort_values(["queue", "date"]).reset_index(drop=True)
    # Support 03-10: L1 answered (300 s) + redial chain L2 (abandoned 09:00:40) -> L3 09:04 answered (200 s) = 2 offered,
    #   2 handled, AHT (300+200)/2 = 250; L5 is a transfer leg of Billing's L4; L8 waited 2 s = short abandon;
    #   L7 at 19:00 is outside hours. Support 03-11: closed by config, L10 counted outside hours only.
    # Billing 03-10: transfer chain L4->L5->L6 = one answered contact of 100+150+50 = 300 s; L9 abandoned.
    expect = pd.DataFrame({
        "queue": ["Billing", "Billing", "Support", "Support"],
        "date": pd.to_datetime(["2025-03-10", "2025-03-11"] * 2),
        "offered": [2.0, 0.0, 2.0, 0.0],
        "handled": [1.0, 0.0, 2.0, 0.0],
        "abandoned": [1.0, 0.0, 0.0, 0.0],
        "short_abandoned": [0.0, 0.0, 1.0, 0.0],
        "offered_outside_hours": [0.0, 0.0, 1.0, 1.0],
        "aht_seconds": [300.0, float("nan"), 250.0, float("nan")],
        "is_open": [True, False, True, False],
        "is_holiday": [False, True, False, True],
        "holiday_name": [None, "closed (config)", None, "closed (config)"],
    })
    pd.testing.assert_frame_equal(daily[expect.columns], expect, check_dtype=False)
    intervals = _table(config, tables.silver_interval)
    assert len(intervals) == 2 * 2 * 48  # complete calendar: 2 queues x 2 days x 48 half-hours
    support = intervals[(intervals["queue"] == "Support") & (intervals["offered"] > 0)]
    assert support["interval_start"].dt.strftime("%H:%M").tolist() == ["08:00", "09:00"]
    calls = _table(config, tables.silver_calls)
    # 10 legs - 2 transfer legs folded into L4 - 1 redial (L3) folded into L2 = 7 contacts.
    assert sorted(calls["contact_id"]) == ["L1", "L10", "L2", "L4", "L7", "L8", "L9"]
    assert calls.set_index("contact_id").loc["L2", "attempts"] == 2 and calls.set_index("contact_id").loc["L4", "legs"] == 3


def test_rerunning_gives_identical_tables_and_skips_unchanged_days(config: Path) -> None:
    assert _run(config, "2025-03-12") == 0
    first = {t.name: _table(config, t) for t in (tables.silver_calls, tables.silver_interval, tables.silver_daily)}
    assert _run(config, "2025-03-12") == 0
    runs = _table(config, tables.pipeline_runs)
    assert runs[runs["step"] == "1_build_silver"]["status"].tolist() == ["success", "skipped"]
    assert _run(config, "2025-03-12", "--full") == 0
    for t in (tables.silver_calls, tables.silver_interval, tables.silver_daily):
        pd.testing.assert_frame_equal(_table(config, t), first[t.name], check_like=True) if t is not tables.silver_calls \
            else pd.testing.assert_frame_equal(_table(config, t).sort_values("contact_id").reset_index(drop=True),
                                               first[t.name].sort_values("contact_id").reset_index(drop=True))


def test_a_new_day_rebuilds_only_that_day_and_its_neighbour(config: Path) -> None:
    assert _run(config, "2025-03-12") == 0
    write_csv(config.parent / "inbox" / "day3.csv", HEADER + "M1,,Support,2025-03-12 08:30:00,,,ANSWERED,5,100,C9,+469,,voice\n")
    assert _run(config, "2025-03-13") == 0
    state = _table(config, tables.silver_day_state).sort_values("date")
    run_of = dict(zip(state["date"].dt.strftime("%m-%d"), state["run_id"]))
    assert run_of["03-10"] != run_of["03-12"]  # Monday untouched
    assert run_of["03-11"] == run_of["03-12"]  # the neighbour is rebuilt (a redial may cross midnight)
    daily = _table(config, tables.silver_daily)
    assert daily.loc[(daily["queue"] == "Support") & (daily["date"] == "2025-03-12"), "offered"].tolist() == [1.0]
    assert len(daily) == 6


def test_stale_data_is_a_critical_failure_that_writes_nothing_to_silver(config: Path, capsys) -> None:
    assert _run(config, "2025-04-30") == 2
    assert "recency" in capsys.readouterr().err
    assert _table(config, tables.silver_daily).empty and _table(config, tables.silver_calls).empty
    checks = _table(config, tables.data_quality_checks)
    failed = checks[~checks["passed"]]
    assert "recency" in failed["check_name"].tolist()
    assert (failed.loc[failed["check_name"] == "recency", "severity"] == "critical").all()


def test_a_dst_fall_back_day_has_fifty_half_hours(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    write_csv(tmp_path / "inbox" / "oct.csv", HEADER + """\
        N1,,Support,2025-10-25 10:30:00,,,ANSWERED,5,100,C1,+461,,voice
        N2,,Support,2025-10-27 10:30:00,,,ANSWERED,5,100,C1,+461,,voice
        """)
    assert _run(config, "2025-10-28") == 0
    intervals = _table(config, tables.silver_interval)
    per_day = intervals.groupby(intervals["date"].dt.strftime("%m-%d")).size().to_dict()
    assert per_day == {"10-25": 48, "10-26": 50, "10-27": 48}
