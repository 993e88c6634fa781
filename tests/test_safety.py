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
