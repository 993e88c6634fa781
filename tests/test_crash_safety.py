"""Crash safety: a step killed inside its write transaction leaves the previous good state; a re-run gives
the tables a clean run gives; a killed run's `running` row is marked interrupted; a killed run_daily.sh does
not block the next night.

Steps run as real processes and are SIGKILLed at the worst moment: all their rows written, the commit not
yet made. They get there through the test hook of `common.cli` (env WFM_TEST_PAUSE_BEFORE_COMMIT: the step
creates the marker file and sleeps just before committing), so the kill lands inside the transaction every
time instead of by luck of timing.
"""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from common import db, tables
from common.config import load_config
from common.demo import demo_legs, write_demo_csvs
from tests.conftest import REPO, write_config

load_bronze = importlib.import_module("0_load_bronze")
build_silver = importlib.import_module("1_build_silver")

FIRST, LAST = date(2025, 3, 3), date(2025, 3, 14)  # Mon .. Fri of the next week
# Identities and clocks differ between any two runs by design (a reject's row_hash covers its file path).
VOLATILE = {"id", "load_id", "run_id", "loaded_at", "checked_at", "bronze_max_load_id"}


@pytest.fixture(scope="module")
def legs() -> pd.DataFrame:
    # About 6,000 legs over two weeks: enough rows that the writes take a moment.
    return demo_legs(FIRST, LAST, seed=7, scale=0.4)


def _project(tmp_path: Path, legs: pd.DataFrame, last: date = LAST) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = write_config(tmp_path)
    write_demo_csvs(legs[legs["StartTime"] < pd.Timestamp(last) + pd.Timedelta(days=1)], tmp_path / "inbox")
    return config


def _start_paused(script: str, config: Path, as_of: str, marker: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "WFM_TEST_PAUSE_BEFORE_COMMIT": str(marker), "WFM_TEST_PAUSE_SECONDS": "60"}
    return subprocess.Popen([sys.executable, str(REPO / script), "--config", str(config), "--as-of", as_of,
                             "--workers", "0", *extra], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(marker: Path, proc: subprocess.Popen | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the step ended before reaching its commit:\n{proc.stderr.read()[-3000:]}")
        assert time.monotonic() < deadline, "the step never reached its commit"
        time.sleep(0.05)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _db_path(config: Path) -> str:
    return load_config(config).database_url.removeprefix("sqlite:///")


def _content(config: Path, table) -> pd.DataFrame:
    """A table's rows without the columns that differ between any two runs, in a stable order."""
    with db.make_engine(load_config(config).database_url).connect() as conn:
        frame = db.read_table(conn, table)
    frame = frame.drop(columns=[c for c in frame.columns if c in VOLATILE
                                or (c == "row_hash" and table is tables.bronze_rejects)])
    if "source_name" in frame.columns:  # each project lives in its own folder
        frame = frame.assign(source_name=frame["source_name"].map(lambda p: Path(p).name))
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def _runs(config: Path) -> pd.DataFrame:
    with db.make_engine(load_config(config).database_url).connect() as conn:
        return db.read_table(conn, tables.pipeline_runs).sort_values("started_at").reset_index(drop=True)


def _integrity_ok(config: Path) -> None:
    with sqlite3.connect(_db_path(config)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_load_killed_inside_its_transaction_leaves_nothing_and_a_rerun_equals_a_clean_run(tmp_path, legs) -> None:
    crashed = _project(tmp_path / "crashed", legs)
    marker = tmp_path / "in_commit"
    proc = _start_paused("0_load_bronze.py", crashed, "2025-03-15", marker)
    _wait_for(marker, proc)
    _kill(proc)

    _integrity_ok(crashed)
    for table in (tables.bronze_cdr, tables.bronze_rejects, tables.bronze_load_log):
        assert _content(crashed, table).empty, f"{table.name} has rows of a load that never committed"
    runs = _runs(crashed)
    assert runs["status"].tolist() == ["running"]  # what the kill left behind

    assert load_bronze.main(["--config", str(crashed), "--as-of", "2025-03-15", "--workers", "0"]) == 0
    runs = _runs(crashed)
    assert runs["status"].tolist() == ["failed", "success"]
    assert runs["message"].iloc[0].startswith(f"interrupted: pid {proc.pid} on ")
    _integrity_ok(crashed)

    clean = _project(tmp_path / "clean", legs)
    assert load_bronze.main(["--config", str(clean), "--as-of", "2025-03-15", "--workers", "0"]) == 0
    for table in (tables.bronze_cdr, tables.bronze_rejects, tables.bronze_load_log):
        pd.testing.assert_frame_equal(_content(crashed, table), _content(clean, table))
    assert len(_content(crashed, tables.bronze_cdr)) > 3000


def test_silver_rebuild_killed_inside_its_transaction_keeps_the_previous_silver(tmp_path, legs) -> None:
    silver_tables = (tables.silver_calls, tables.silver_interval, tables.silver_daily, tables.silver_day_state)
    crashed = _project(tmp_path / "crashed", legs, last=date(2025, 3, 11))
    args = ["--config", str(crashed), "--workers", "0"]
    assert load_bronze.main([*args, "--as-of", "2025-03-12"]) == 0
    assert build_silver.main([*args, "--as-of", "2025-03-12"]) == 0
    before = {t.name: _content(crashed, t) for t in silver_tables}
    write_demo_csvs(legs, tmp_path / "crashed" / "inbox")  # the rest of the week arrives
    assert load_bronze.main([*args, "--as-of", "2025-03-15"]) == 0

    marker = tmp_path / "in_commit"
    proc = _start_paused("1_build_silver.py", crashed, "2025-03-15", marker)
    _wait_for(marker, proc)
    _kill(proc)
    _integrity_ok(crashed)
    for t in silver_tables:
        pd.testing.assert_frame_equal(_content(crashed, t), before[t.name])

    assert build_silver.main([*args, "--as-of", "2025-03-15"]) == 0
    statuses = _runs(crashed).query("step == '1_build_silver'")["status"].tolist()
    assert statuses == ["success", "failed", "success"]

    clean = _project(tmp_path / "clean", legs)
    clean_args = ["--config", str(clean), "--workers", "0", "--as-of", "2025-03-15"]
    assert load_bronze.main(clean_args) == 0 and build_silver.main(clean_args) == 0
    for t in silver_tables:
        pd.testing.assert_frame_equal(_content(crashed, t), _content(clean, t))
    daily = _content(crashed, tables.silver_daily)
    assert not daily.duplicated(["queue", "date"]).any() and daily["offered"].sum() > 2000


def test_sigterm_inside_the_transaction_rolls_back_and_records_the_run_as_failed(tmp_path, legs) -> None:
    config = _project(tmp_path, legs)
    marker = tmp_path / "in_commit"
    proc = _start_paused("0_load_bronze.py", config, "2025-03-15", marker)
    _wait_for(marker, proc)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert _content(config, tables.bronze_cdr).empty
    runs = _runs(config)
    assert runs["status"].tolist() == ["failed"] and runs["message"].iloc[0] == "SystemExit: 143"


def test_a_live_run_of_the_same_step_is_not_marked_interrupted(tmp_path, legs) -> None:
    config = _project(tmp_path, legs)
    marker = tmp_path / "in_commit"
    proc = _start_paused("0_load_bronze.py", config, "2025-03-15", marker)
    try:
        _wait_for(marker, proc)
        from common.cli import mark_interrupted_runs

        engine = db.make_engine(load_config(config).database_url)
        assert mark_interrupted_runs(engine, "0_load_bronze", "test") == 0
        assert _runs(config)["status"].tolist() == ["running"]
    finally:
        _kill(proc)
    assert mark_interrupted_runs(engine, "0_load_bronze", "test") == 1


# --- run_daily.sh and its lock -------------------------------------------------------------------------------

@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's code sharing this checkout's .venv, with an empty inbox."""
    root = tmp_path / "project"
    root.mkdir()
    for item in REPO.iterdir():
        if item.name in ("common",) or item.suffix in (".py", ".sh", ".yaml", ".txt"):
            if item.is_dir():
                shutil.copytree(item, root / item.name, ignore=shutil.ignore_patterns("__pycache__"))
            elif item.name != "conftest.py":
                shutil.copy2(item, root / item.name)
    (root / ".venv").symlink_to(REPO / ".venv")
    (root / "data" / "inbox").mkdir(parents=True)
    return root


def _run_daily(project: Path, *args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(["bash", "run_daily.sh", *args], cwd=project, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _next_night(project: Path) -> tuple[int, str]:
    """A run that needs the lock and ends at once: step 5 alone (exit 2, no forecast in this empty project)."""
    done = _run_daily(project, "--as-of", "2025-03-05", "--from", "5")
    out, err = done.communicate(timeout=120)
    return done.returncode, out + err


def _night_paused_in_commit(project: Path, legs) -> tuple[subprocess.Popen, Path]:
    """run_daily.sh for 2025-03-05 in its own session, held inside step 0's write transaction; (process, marker)."""
    write_demo_csvs(legs[legs["StartTime"] < pd.Timestamp("2025-03-05")], project / "data" / "inbox")
    marker = project / "in_commit"
    night = _run_daily(project, "--as-of", "2025-03-05", env={"WFM_TEST_PAUSE_BEFORE_COMMIT": str(marker)},
                       start_new_session=True)
    _wait_for(marker, night)
    return night, marker


def test_a_killed_nightly_run_does_not_block_the_next_one(project: Path, legs) -> None:
    night, _ = _night_paused_in_commit(project, legs)
    # cron's timeout, systemd or an operator stopping the job kills the script and everything it started.
    os.killpg(night.pid, signal.SIGKILL)
    night.wait(timeout=30)

    # The kernel releases the flock once every killed holder (the script, its steps, its log tees) has exited;
    # on a loaded machine that can take a moment after SIGKILL, so allow a few seconds before judging.
    deadline = time.monotonic() + 30
    while True:
        code, output = _next_night(project)
        if code != 3 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert code == 2 and "step 5: 5_report.py" in output and "another run is in progress" not in output
    config = project / "config.yaml"
    assert load_bronze.main(["--config", str(config), "--as-of", "2025-03-05", "--workers", "0"]) == 0
    runs = _runs(config).query("step == '0_load_bronze'")
    assert runs["status"].tolist() == ["failed", "success"]
    assert runs["message"].iloc[0].startswith("interrupted")


def test_a_step_still_running_after_its_script_was_killed_keeps_the_lock_until_it_ends(project: Path, legs) -> None:
    night, marker = _night_paused_in_commit(project, legs)
    step_pid = int(marker.read_text())
    night.send_signal(signal.SIGKILL)  # only the script: its step, an orphan now, is still inside its write
    night.wait(timeout=30)
    try:
        code, output = _next_night(project)
        assert code == 3 and "another run is in progress" in output  # two writers at once would be worse
    finally:
        os.kill(step_pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:  # the lock goes once the last process holding it (the step, its log tee) is gone
        code, output = _next_night(project)
        if code != 3 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert code == 2 and "step 5: 5_report.py" in output
