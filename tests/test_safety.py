"""Runaway and crash paths (issue 14): an as-of typo far in the future, forged log lines, unsafe file modes,
two loads at once. Each test reproduces what a hostile or unlucky user did."""

from __future__ import annotations

import importlib
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from common import db, tables
from common.cli import check_as_of_not_runaway
from common.config import load_config
from common.errors import ConfigError
from tests.conftest import CDR_HEADER, write_config, write_csv

STEPS = ["0_load_bronze", "1_build_silver", "1_5_segment_customers", "2_train", "3_forecast", "4_evaluate",
         "5_report"]

DAY = CDR_HEADER + """\
    A1,,Support,2025-03-10 09:00:00,,,ANSWERED,20,300,C1,+461,,voice
    A2,,Support,2025-03-10 10:00:00,,,ANSWERED,10,200,C2,+462,,voice
    """


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = write_config(tmp_path)
    write_csv(tmp_path / "inbox" / "day.csv", DAY)
    return path


def _count(config: Path, table) -> int:
    with db.make_engine(load_config(config).database_url).connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


# --- 9: an as-of typo ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("step", STEPS)
def test_an_as_of_decades_ahead_is_refused_in_one_line_by_every_step(step: str, config: Path, capsys) -> None:
    assert importlib.import_module(step).main(["--config", str(config), "--as-of", "2099-01-01"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"{step}: error: --as-of 2099-01-01 is ") and "refused as a typo" in last
    assert _count(config, tables.bronze_cdr) == 0 and _count(config, tables.silver_daily) == 0


def test_a_backfill_to_a_past_as_of_still_runs(config: Path) -> None:
    args = ["--config", str(config), "--as-of", "2025-03-11"]
    assert importlib.import_module("0_load_bronze").main(args) == 0
    assert importlib.import_module("1_build_silver").main(args) == 0
    assert _count(config, tables.silver_daily) > 0


def test_an_as_of_ahead_of_the_clock_runs_while_the_data_reaches_it(config: Path) -> None:
    # A machine whose clock is behind (today = 2025-01-01) with data loaded up to 2025-03-10: an as-of within
    # 7 days after the newest data runs, one 8 days after it and after the clock is refused.
    assert importlib.import_module("0_load_bronze").main(["--config", str(config), "--as-of", "2025-03-11"]) == 0
    engine = db.make_engine(load_config(config).database_url)
    check_as_of_not_runaway(engine, date(2025, 3, 17), date(2025, 1, 1), "Europe/Stockholm")
    check_as_of_not_runaway(engine, date(2025, 1, 8), date(2025, 1, 1), "Europe/Stockholm")
    with pytest.raises(ConfigError, match=r"--as-of 2025-03-18 is 76 days after today \(2025-01-01 in "
                                          r"Europe/Stockholm\) and the newest loaded data is 2025-03-10"):
        check_as_of_not_runaway(engine, date(2025, 3, 18), date(2025, 1, 1), "Europe/Stockholm")


# --- 14: forged log lines -----------------------------------------------------------------------------------

FORGED = "2025-03-11 02:00:00,000 ERROR [000000000000] forged: all queues deleted"


def test_a_logged_value_with_a_newline_stays_on_its_record_line(capsys) -> None:
    import logging

    from common.cli import setup_logging

    setup_logging("INFO")
    logging.getLogger("wfm.test").warning("queue %s has no data", f"Support\n{FORGED}\r\x1b[2K")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(f"queue Support\\n{FORGED}\\r\\x1b[2K has no data")


def test_a_queue_name_with_a_newline_cannot_forge_a_line_in_a_steps_log(tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path)
    write_csv(tmp_path / "inbox" / "day.csv", CDR_HEADER + "A1,,Support,2025-03-10 09:00:00,,,ANSWERED,20,300,C1,+461,,voice")
    with (tmp_path / "inbox" / "day.csv").open("a", encoding="utf-8") as f:
        f.write(f'A2,,"Sales\n{FORGED}",2025-03-10 09:00:00,,,ANSWERED,20,300,C1,+461,,voice\n')
    args = ["--config", str(config), "--as-of", "2025-03-11"]
    importlib.import_module("0_load_bronze").main(args)
    importlib.import_module("1_build_silver").main(args)
    importlib.import_module("2_train").main(args)  # logs "train: queue <name> left out" (one day of history)
    err = capsys.readouterr().err
    assert "forged: all queues deleted" in err  # the queue name was logged ...
    assert not [line for line in err.splitlines() if line.startswith(FORGED[:19])]  # ... never as a line of its own


# --- 15: owner-only files -----------------------------------------------------------------------------------

def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.fixture
def umask_022():
    """The usual login umask (files 0644, folders 0755), restored afterwards."""
    import os

    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_the_database_file_and_its_folder_are_created_owner_only(config: Path, umask_022) -> None:
    args = ["--config", str(config), "--as-of", "2025-03-11"]
    assert importlib.import_module("0_load_bronze").main(args) == 0
    data = config.parent / "data"
    assert _mode(data) == 0o700
    assert {p.name: _mode(p) for p in data.iterdir()} == {p.name: 0o600 for p in data.iterdir()}  # wfm.db, -wal, -shm
    assert "wfm.db" in {p.name for p in data.iterdir()}


def test_the_report_files_and_their_folder_are_created_owner_only(tmp_path: Path, umask_022) -> None:
    from tests.test_report_step import AS_OF, _run, _seed

    config = write_config(tmp_path)
    _seed(config)
    assert _run(config, "--no-email") == 0
    out = tmp_path / "output" / AS_OF.isoformat()
    assert _mode(tmp_path / "output") == 0o700 and _mode(out) == 0o700
    assert {p.name: _mode(p) for p in out.iterdir()} == {
        "accuracy.png": 0o600, "forecast.png": 0o600, "past.png": 0o600, "staffing.png": 0o600, "totals.png": 0o600,
        "report.eml": 0o600}


def test_wfm_umask_027_lets_the_group_read_and_nothing_else_is_accepted(config: Path, umask_022, monkeypatch,
                                                                        capsys) -> None:
    args = ["--config", str(config), "--as-of", "2025-03-11"]
    monkeypatch.setenv("WFM_UMASK", "022")
    assert importlib.import_module("0_load_bronze").main(args) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("0_load_bronze: error: WFM_UMASK='022': use 077")
    monkeypatch.setenv("WFM_UMASK", "027")
    assert importlib.import_module("0_load_bronze").main(args) == 0
    assert _mode(config.parent / "data") == 0o750 and _mode(config.parent / "data" / "wfm.db") == 0o640


def test_a_failure_alert_is_written_owner_only(tmp_path: Path, umask_022) -> None:
    from common import mail

    config = write_config(tmp_path)
    mail.main(["--config", str(config), "--failure", "--subject", "step 0 failed"])
    (eml,) = (tmp_path / "output" / "failures").glob("*.eml")
    assert _mode(eml) == 0o600 and _mode(eml.parent) == 0o700


# --- 12: two loads at once ----------------------------------------------------------------------------------

_SECOND_LOAD = """
import sys
sys.path.insert(0, sys.argv[1])
from common import db
from common.bronze import load_sources
from common.config import load_config
cfg = load_config(sys.argv[2])
engine = db.make_engine(cfg.database_url)
with engine.connect() as conn:  # connected (as a step is by the time its body runs), then wait for the go
    conn.exec_driver_sql("SELECT 1")
print("ready", flush=True)
sys.stdin.readline()
with engine.begin() as conn:
    print(load_sources(conn, cfg, "second").sources_skipped)
"""


def test_a_second_load_while_the_first_is_writing_waits_and_logs_no_file_twice(config: Path) -> None:
    # The first run has read the inbox and written its rows, not yet committed, when a second process starts its
    # load: the second must wait for the first and then find the file loaded, not log it again.
    import subprocess
    import sys
    import time

    from common.bronze import load_sources
    from tests.conftest import REPO

    cfg = load_config(config)
    engine = db.make_engine(cfg.database_url)
    db.ensure_schema(engine)
    second = subprocess.Popen([sys.executable, "-c", _SECOND_LOAD, str(REPO), str(config)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert second.stdout.readline().strip() == "ready", second.stderr.read()[-2000:]
    with engine.begin() as conn:
        load_sources(conn, cfg, "first")
        second.stdin.write("go\n")
        second.stdin.flush()
        time.sleep(2)  # the second process is at its load now, while this transaction is still open
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err[-2000:]
    assert out.strip() == "1"  # the second run skipped the file as already loaded
    with engine.connect() as conn:
        logged = conn.execute(select(tables.bronze_load_log.c.run_id)).scalars().all()
    assert logged == ["first"] and _count(config, tables.bronze_cdr) == 2


_RIVAL_SCHEMA = """
import sys
sys.path.insert(0, sys.argv[1])
from common import db
db.ensure_schema(db.make_engine(sys.argv[2]))
"""


def test_tables_created_by_another_process_at_the_same_moment_are_taken_as_they_are(tmp_path: Path) -> None:
    # Two runs on a fresh database: another process creates the tables between this one's "does it exist?" and
    # its CREATE TABLE (made deterministic: it runs right before this process's first CREATE TABLE).
    import subprocess
    import sys

    from sqlalchemy import event, inspect

    from tests.conftest import REPO

    url = f"sqlite:///{tmp_path / 'wfm.db'}"
    engine = db.make_engine(url)
    rival = []

    @event.listens_for(engine, "before_cursor_execute")
    def create_in_another_process(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith("CREATE TABLE") and not rival:
            rival.append(subprocess.run([sys.executable, "-c", _RIVAL_SCHEMA, str(REPO), url], capture_output=True,
                                        text=True, timeout=120))

    db.ensure_schema(engine)
    assert rival and rival[0].returncode == 0, rival[0].stderr[-2000:] if rival else "no CREATE TABLE seen"
    assert set(inspect(engine).get_table_names()) >= {t.name for t in tables.metadata.sorted_tables}
