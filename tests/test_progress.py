"""Progress in a log: steady lines with counts, rows and rate when nobody watches a terminal."""

from __future__ import annotations

import logging

from common.bronze import rejects_by_file
from common.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _meter(caplog, total: int | None) -> tuple[Progress, Clock]:
    caplog.set_level(logging.INFO, logger="common.progress")
    clock = Clock()
    return Progress("bronze: loading", total=total, unit="files", tty=False, clock=clock), clock


def test_a_slow_loop_logs_every_ten_seconds_with_rows_rate_and_time_left(caplog) -> None:
    meter, clock = _meter(caplog, total=1000)
    for _ in range(25):  # 25 files of 1,000 rows, one every 1 s: 10% never reached, so time alone decides
        clock.now += 1.0
        meter.advance(1, rows=1000)
    assert [r.getMessage() for r in caplog.records] == [
        "bronze: loading: 10 of 1,000 (1%) files, 10,000 rows (1,000 rows/s), 10s, about 990s left",
        "bronze: loading: 20 of 1,000 (2%) files, 20,000 rows (1,000 rows/s), 20s, about 980s left",
    ]


def test_each_further_tenth_logs_once_two_seconds_have_passed(caplog) -> None:
    meter, clock = _meter(caplog, total=10)
    for _ in range(10):  # one file per 3 s: every file is a further 10%, each 3 s >= 2 s after the last line
        clock.now += 3.0
        meter.advance(1)
    # the last file (100%) is left to the caller's summary line
    assert len(caplog.records) == 9
    assert caplog.records[0].getMessage() == "bronze: loading: 1 of 10 (10%) files, 3s, about 27s left"


def test_a_quick_loop_stays_quiet(caplog) -> None:
    meter, clock = _meter(caplog, total=730)
    for _ in range(730):  # 730 files hashed in 1.5 s
        clock.now += 0.002
        meter.advance(1)
    assert caplog.records == []


def test_rejects_summary_names_the_worst_files_first_and_counts_the_rest() -> None:
    per_source = [("a.csv", 10, 9, 1), ("b.csv", 10, 10, 0), ("c.csv", 10, 5, 5), ("d.csv", 9, 8, 1)]
    assert rejects_by_file(per_source, shown=2) == " (rejects in c.csv 5, a.csv 1 and 1 more files; per file at " \
                                                   "--log-level DEBUG)"
    assert rejects_by_file([("b.csv", 10, 10, 0)]) == ""
