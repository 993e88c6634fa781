"""What every numbered script shares: flags, logging with the run id, run bookkeeping, error -> exit code.

A step is a function `body(ctx) -> StepResult`. `run_step` parses the common
flags, loads the config, records the run in `pipeline_runs`, and turns a
`PipelineError` into one line on stderr and its exit code (2 for bad input or
config, 1 otherwise). Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from common import db
from common.config import Config, load_config
from common.errors import PipelineError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepContext:
    """What a step body gets: its parsed arguments, the config, the engine, and the run's identity."""

    args: argparse.Namespace
    cfg: Config
    engine: Engine
    run_id: str
    as_of: date


@dataclass(frozen=True)
class StepResult:
    """How a step ended: rows it wrote and a one-line message for pipeline_runs."""

    rows_written: int
    message: str
    status: str = "success"  # success | skipped


class _RunIdFilter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.run_id = "-"

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = self.run_id
        return True


_run_filter = _RunIdFilter()


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once: time, level, run id, module, message on stderr."""
    root = logging.getLogger()
    if not any(getattr(h, "_wfm", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(run_id)s] %(name)s: %(message)s"))
        handler.addFilter(_run_filter)
        handler._wfm = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("matplotlib", "PIL", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def parse_as_of(value: str) -> date:
    """argparse type for --as-of."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; use YYYY-MM-DD, e.g. 2025-03-10") from None


def step_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The flags every step accepts: --config, --as-of, --set, --log-level."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None,
                        help="config file (default: env WFM_CONFIG, else config.yaml)")
    parser.add_argument("--as-of", type=parse_as_of, default=None, dest="as_of",
                        help="the run's date YYYY-MM-DD: actuals up to the day before are known "
                             "(default: today in the configured timezone)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override one config key for this run, e.g. --set rules.interval_minutes=15 (repeatable)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def today_in(tz: str) -> date:
    """Today's date in the center's time zone (a 01:00 run in Stockholm is not 'yesterday' in UTC)."""
    return datetime.now(ZoneInfo(tz)).date()


def run_step(step: str, parser: argparse.ArgumentParser, body: Callable[[StepContext], StepResult],
             argv: list[str] | None = None) -> int:
    """Parse flags, run `body` with run bookkeeping, and return the process exit code."""
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    run_id = uuid.uuid4().hex[:12]
    _run_filter.run_id = run_id
    engine = None
    recorded = False  # a pipeline_runs row exists for this run
    started = time.perf_counter()
    try:
        cfg = load_config(args.config, args.overrides)
        as_of = args.as_of or today_in(cfg.timezone)
        engine = db.make_engine(cfg.database_url)
        db.ensure_schema(engine)
        db.start_run(engine, run_id, step, as_of)
        recorded = True
        log.info("%s started: as_of=%s database=%s", step, as_of, db.safe_url(engine))
        result = body(StepContext(args=args, cfg=cfg, engine=engine, run_id=run_id, as_of=as_of))
    except PipelineError as exc:
        message = str(exc)
        if recorded:
            _finish_quietly(engine, run_id, "failed", None, message)
        print(f"{step}: error: {message}", file=sys.stderr)
        return exc.exit_code
    except BaseException as exc:
        if recorded:
            _finish_quietly(engine, run_id, "failed", None, f"{type(exc).__name__}: {exc}")
        raise
    db.finish_run(engine, run_id, result.status, result.rows_written, result.message)
    log.info("%s %s in %.1fs: %s", step, result.status, time.perf_counter() - started, result.message)
    return 0


def _finish_quietly(engine: Engine, run_id: str, status: str, rows: int | None, message: str) -> None:
    try:
        db.finish_run(engine, run_id, status, rows, message)
    except Exception:  # the database itself may be what failed; the original error matters more
        log.exception("could not record the failed run in pipeline_runs")
