"""The demo data set, a living contact centre: `python -m common.demo` writes the generated ACD exports for the
history before an as-of into the configured inbox (used by `run_daily.sh --demo`). A later as-of adds only the new
days' files: each file depends on its own day only (`demo_model` seeds per day, `write_demo_inbox` picks broken
rows per day), so the files already there keep their bytes and step 0 finds them loaded.

The call-generation model is `common.demo_model`, the writers are `common.demo_files`; their public names are
re-exported here so `from common.demo import demo_legs, write_demo_csvs` keeps working.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from common.demo_files import write_demo_csvs, write_demo_inbox, write_demo_sqlite_source
from common.demo_model import DEMO_QUEUES, EXPORT_COLUMNS, WEEKDAY_HOURS, DemoQueue, demo_legs, demo_opening_hours
from common.errors import ConfigError, DataError

_DAY = timedelta(days=1)

__all__ = ["DEMO_QUEUES", "EXPORT_COLUMNS", "WEEKDAY_HOURS", "DemoQueue", "demo_legs", "demo_opening_hours",
           "write_demo_csvs", "write_demo_inbox", "write_demo_sqlite_source", "fill_demo_inbox", "main"]

log = logging.getLogger(__name__)

_EXPORT_NAME = re.compile(r"acd_export_(\d{4}-\d{2}-\d{2})\.csv")


def export_days(inbox: Path) -> list[date]:
    """Dates of the demo export files (`acd_export_YYYY-MM-DD.csv`) in the inbox, sorted."""
    inbox = Path(inbox)
    if not inbox.is_dir():
        return []
    found = (_EXPORT_NAME.fullmatch(p.name) for p in inbox.iterdir())
    return sorted(date.fromisoformat(m.group(1)) for m in found if m)


def fill_demo_inbox(inbox: Path, as_of: date, days: int, seed: int = 42, country: str = "SE",
                    scale: float = 1.0) -> tuple[int, int]:
    """Make the inbox hold the demo exports of the `days` days before `as_of`, writing only the days without a
    file: a later night adds its new days, and a file already there is never rewritten (not even one an older
    version of the demo wrote, which step 0 has loaded). The calls are generated from the day before the first
    missing one, whose calls may run past midnight. Returns (files in the window, files written)."""
    if days < 1:
        raise ConfigError(f"days == {days}, must be >= 1")
    last = as_of - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    present = set(export_days(inbox))
    missing = [first + timedelta(days=d) for d in range(days) if first + timedelta(days=d) not in present]
    if not missing:
        log.info("demo: the inbox already holds all %d days %s..%s; nothing to write", days, first, last)
        return days, 0
    legs = demo_legs(missing[0] - timedelta(days=1), last, seed=seed, country=country, scale=scale, per_day=True)
    written = 0
    for run_first, run_last in _runs(missing):
        in_run = (legs["StartTime"] >= pd.Timestamp(run_first)) & (legs["StartTime"] < pd.Timestamp(run_last + _DAY))
        written += write_demo_inbox(legs[in_run], inbox, run_first, run_last, seed=seed)[1]
    return days, written


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as (first, last) runs of consecutive days."""
    runs: list[list[date]] = []
    for day in days:
        if runs and day == runs[-1][1] + _DAY:
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return [(a, b) for a, b in runs]


def main(argv: list[str] | None = None) -> int:
    """`python -m common.demo`: write the demo export files into the configured inbox (used by run_daily.sh --demo)."""
    import argparse

    from common.cli import parse_as_of, setup_logging, today_in
    from common.config import load_config
    from common.errors import PipelineError

    parser = argparse.ArgumentParser(prog="python -m common.demo", description=main.__doc__)
    parser.add_argument("--config", default=None, help="config whose source.csv_glob folder is the inbox")
    parser.add_argument("--as-of", type=parse_as_of, default=None, dest="as_of",
                        help="data ends the day before this date (default: today in the configured timezone)")
    parser.add_argument("--days", type=int, default=730, help="days of history (default 730)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every queue's volume")
    parser.add_argument("--sqlite-source", default=None,
                        help="also write the whole history to this SQLite file (SQL source mode)")
    parser.add_argument("--replay-start", action="store_true",
                        help="the first night of a replay (run_daily.sh --demo-nights): refuse when the inbox "
                             "already holds exports of the as-of or later, which step 0 would load too early")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        cfg = load_config(args.config)
        if not cfg.source.csv_glob:
            raise ConfigError("source.csv_glob: the demo writes CSV files; set it (e.g. data/inbox/*.csv)")
        as_of = args.as_of or today_in(cfg.timezone)
        inbox = cfg.path(cfg.source.csv_glob).parent
        later = [d for d in export_days(inbox) if d >= as_of]
        if args.replay_start and later:
            raise DataError(f"{inbox} already holds demo exports from {later[0]} to {later[-1]}, on or after the "
                            f"replay's first night {as_of}: step 0 would load them that night. Replay into a fresh "
                            f"data folder (move {inbox.parent} away) or end the replay after {later[-1]}")
        country = cfg.rules.holidays.country or "SE"
        started = time.perf_counter()
        files, written = fill_demo_inbox(inbox, as_of, args.days, seed=args.seed, country=country, scale=args.scale)
        if args.sqlite_source:
            end = as_of - timedelta(days=1)
            legs = demo_legs(end - timedelta(days=args.days - 1), end, seed=args.seed, country=country,
                             scale=args.scale, per_day=True)
            write_demo_sqlite_source(legs, Path(args.sqlite_source))
    except PipelineError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    log.info("demo: %d days before %s under %s: %d file(s) written, %d already there (%.1fs)", files, as_of, inbox,
             written, files - written, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
