"""The demo data set: `python -m common.demo` writes the generated ACD exports into the configured inbox
(used by `run_daily.sh --demo`).

The call-generation model is `common.demo_model`, the writers are `common.demo_files`; their public names are
re-exported here so `from common.demo import demo_legs, write_demo_csvs` keeps working.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from common.demo_files import write_demo_csvs, write_demo_sqlite_source
from common.demo_model import DEMO_QUEUES, EXPORT_COLUMNS, WEEKDAY_HOURS, DemoQueue, demo_legs, demo_opening_hours
from common.errors import ConfigError

__all__ = ["DEMO_QUEUES", "EXPORT_COLUMNS", "WEEKDAY_HOURS", "DemoQueue", "demo_legs", "demo_opening_hours",
           "write_demo_csvs", "write_demo_sqlite_source", "main"]

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """`python -m common.demo`: write the demo export files into the configured inbox (used by run_daily.sh --demo)."""
    import argparse
    from datetime import timedelta

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
    parser.add_argument("--sqlite-source", default=None, help="also write the legs to this SQLite file (SQL source mode)")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        cfg = load_config(args.config)
        if not cfg.source.csv_glob:
            raise ConfigError("source.csv_glob: the demo writes CSV files; set it (e.g. data/inbox/*.csv)")
        as_of = args.as_of or today_in(cfg.timezone)
        end = as_of - timedelta(days=1)
        start = end - timedelta(days=args.days - 1)
        inbox = cfg.path(cfg.source.csv_glob).parent
        started = time.perf_counter()
        legs = demo_legs(start, end, seed=args.seed, country=cfg.rules.holidays.country or "SE", scale=args.scale)
        paths = write_demo_csvs(legs, inbox, seed=args.seed)
        if args.sqlite_source:
            write_demo_sqlite_source(legs, Path(args.sqlite_source))
    except PipelineError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    log.info("demo: %d legs %s..%s in %d files under %s (%.1fs)", len(legs), start, end, len(paths), inbox,
             time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
