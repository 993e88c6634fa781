"""What every numbered script shares: flags, logging with the run id, run bookkeeping, error -> exit code.

A step is a function `body(ctx) -> StepResult`. `run_step` parses the common
flags, loads the config, records the run in `pipeline_runs`, and turns a
`PipelineError` into one line on stderr and its exit code (2 for bad input or
config, 1 otherwise). Any other exception is a bug and keeps its traceback.

A `running` row in `pipeline_runs` whose process is gone (killed with -9, the machine
stopped) is marked `failed` ("interrupted") by the next run of the same step; its
writes were never committed. A database that cannot be reached or written is a
one-line error (exit 1) with the password masked. Everything a step creates is owner-only (umask 077, or
WFM_UMASK=027 for group read).

Test hook (crash-safety tests only): with env `WFM_TEST_PAUSE_BEFORE_COMMIT=<file>`,
each commit of the step's body first creates <file> and sleeps
(`WFM_TEST_PAUSE_SECONDS`, default 60), so a test can SIGKILL the step inside its
write transaction.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, event, func, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from common import __version__, db, prom_metrics, tables
from common.config import load_config
from common.config_schema import Config
from common.errors import ConfigError, PipelineError
from common.redact import has_unencoded_at, redact

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


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (a caller that captures stderr, like pytest, swaps it)."""

    @property
    def stream(self):  # noqa: ANN201 - a text stream
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # noqa: ANN001 - StreamHandler.__init__ assigns it
        pass


# Characters that end or rewrite a log line: C0 controls, DEL, C1 controls (NEL) and the Unicode line separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_control(text: str) -> str:
    """`text` with control characters written as escapes (`\\n`, `\\x1b`): a value from data (a queue name with a
    newline) cannot start a forged log line or move a terminal's cursor."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                                                        else f"\\u{ord(m.group()):04x}"), text)


class OneLineFormatter(logging.Formatter):
    """One record is one line: control characters in the message are escaped (a traceback, from exc_info, still
    follows on its own lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        copy = logging.makeLogRecord(record.__dict__)  # other handlers (a test's capture) see the record unchanged
        copy.message = escape_control(record.message)
        return super().formatMessage(copy)


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once: time, level, run id, module, message on stderr, one line per record."""
    root = logging.getLogger()
    if not any(getattr(h, "_wfm", False) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s [%(run_id)s] %(name)s: %(message)s"))
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


def whole_number(minimum: int) -> Callable[[str], int]:
    """argparse type for a count of at least `minimum` (--workers 0, --origins 1, ...)."""
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = minimum - 1
        if number < minimum:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number >= {minimum}")
        return number
    return parse


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
    parser.add_argument("--version", action="version", version=f"%(prog)s (wfm-forecast {__version__})")
    return parser


def today_in(tz: str) -> date:
    """Today's date in the center's time zone (a 01:00 run in Stockholm is not 'yesterday' in UTC)."""
    return datetime.now(ZoneInfo(tz)).date()


# What a step creates (the SQLite file with caller numbers, output/<as-of>/ charts and report.eml, models/) is the
# owner's only: files 0600, folders 0700, whatever the login's umask (022 would make them world-readable). Env
# WFM_UMASK=027 lets the owner's group read them too (e.g. a Power BI service account); never anyone else.
UMASK_ENV = "WFM_UMASK"
ALLOWED_UMASKS = {"077": 0o077, "027": 0o027, "007": 0o007}


def step_umask() -> int:
    """The umask a step runs under: 077 unless WFM_UMASK names one of ALLOWED_UMASKS."""
    value = os.environ.get(UMASK_ENV, "077").strip()
    if value not in ALLOWED_UMASKS:
        raise ConfigError(f"{UMASK_ENV}={value!r}: use 077 (owner only, the default) or 027 (owner and group); "
                          "files with caller numbers are never world-readable")
    return ALLOWED_UMASKS[value]


def run_step(step: str, parser: argparse.ArgumentParser, body: Callable[[StepContext], StepResult],
             argv: list[str] | None = None) -> int:
    """Parse flags, run `body` with run bookkeeping, and return the process exit code; then, success or not, write
    the step's Prometheus metrics when metrics.textfile_dir is set (never changing the outcome)."""
    outcome = prom_metrics.StepOutcome(step)
    try:
        return _run_step(step, parser, body, argv, outcome)
    finally:
        prom_metrics.after_step(outcome)


def _run_step(step: str, parser: argparse.ArgumentParser, body: Callable[[StepContext], StepResult],
              argv: list[str] | None, outcome: prom_metrics.StepOutcome) -> int:
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    run_id = uuid.uuid4().hex[:12]
    _run_filter.run_id = outcome.run_id = run_id
    engine = None
    url = None
    recorded = False  # a pipeline_runs row exists for this run
    started = time.perf_counter()
    previous_term = _exit_on_sigterm()
    previous_umask = os.umask(0o077)
    try:
        os.umask(step_umask())
        cfg = load_config(args.config, args.overrides)
        as_of = outcome.as_of = args.as_of or today_in(cfg.timezone)
        outcome.cfg = cfg
        url = cfg.database_url
        try:
            engine = outcome.engine = db.make_engine(url)
            db.ensure_schema(engine)
            check_as_of_not_runaway(engine, as_of, today_in(cfg.timezone), cfg.timezone)
            mark_interrupted_runs(engine, step, run_id)
            overrides = recorded_overrides(args.overrides, url)
            db.start_run(engine, run_id, step, as_of, json.dumps(overrides) if overrides else None)
            _note_process(engine, run_id)
        except DBAPIError as exc:
            raise PipelineError(f"cannot use the database {db.safe_url(url)}: {describe_db_error(exc, url)}") from None
        recorded = True
        log.info("%s started: as_of=%s database=%s wfm-forecast %s", step, as_of, db.safe_url(engine), __version__)
        pause = _pause_before_commit_hook(engine)
        try:
            result = body(StepContext(args=args, cfg=cfg, engine=engine, run_id=run_id, as_of=as_of))
        finally:
            if pause is not None:
                event.remove(engine, "commit", pause)
    except PipelineError as exc:
        message = _redact(str(exc), url)
        if recorded:
            _finish_quietly(engine, run_id, "failed", None, message)
        print(f"{step}: error: {message}", file=sys.stderr)
        return exc.exit_code
    except (OperationalError, InterfaceError) as exc:
        # The database failed under the step (gone, locked, disk full): the transaction was rolled back.
        # Other database errors (integrity, SQL) are bugs and keep their traceback.
        message = f"database error, nothing of this run was committed: {describe_db_error(exc, url)}"
        log.debug("database error (the traceback, for --log-level DEBUG)", exc_info=True)
        if recorded:
            _finish_quietly(engine, run_id, "failed", None, message)
        print(f"{step}: error: {message}", file=sys.stderr)
        return 1
    except BaseException as exc:
        if recorded:
            _finish_quietly(engine, run_id, "failed", None, _redact(f"{type(exc).__name__}: {exc}", url))
        raise
    finally:
        _restore_sigterm(previous_term)
        os.umask(previous_umask)
    db.finish_run(engine, run_id, result.status, result.rows_written, result.message)
    outcome.status, outcome.rows_written = result.status, result.rows_written
    log.info("%s %s in %.1fs: %s", step, result.status, time.perf_counter() - started, result.message)
    return 0


# --- a runaway as-of ----------------------------------------------------------------------------------------

# An as-of beyond both the clock and the data by more than this is a typo (2099 for 2025): refused, because step 1
# would build decades of empty days and step 3 publish forecasts of 0 calls. A backfill (a past as-of) always runs.
AS_OF_MAX_DAYS_AHEAD = 7


def newest_loaded_day(engine: Engine) -> date | None:
    """The newest local start date in bronze (CDRs or interval reports), None for an empty database."""
    with engine.connect() as conn:
        days = [conn.execute(select(func.max(t.c.start_date))).scalar()
                for t in (tables.bronze_cdr, tables.bronze_interval)]
    days = [d if isinstance(d, date) else date.fromisoformat(str(d)[:10]) for d in days if d is not None]
    return max(days, default=None)


def check_as_of_not_runaway(engine: Engine, as_of: date, today: date, tz: str) -> None:
    """Raise ConfigError when `as_of` is more than AS_OF_MAX_DAYS_AHEAD days after both `today` and the newest
    loaded day (an empty database: after `today` alone)."""
    limit = today + timedelta(days=AS_OF_MAX_DAYS_AHEAD)
    if as_of <= limit:
        return
    newest = newest_loaded_day(engine)
    if newest is not None and as_of <= newest + timedelta(days=AS_OF_MAX_DAYS_AHEAD):
        return
    data = f"the newest loaded data is {newest}" if newest else "no data is loaded yet"
    raise ConfigError(f"--as-of {as_of} is {(as_of - today).days} days after today ({today} in {tz}) and {data}; "
                      f"an as-of more than {AS_OF_MAX_DAYS_AHEAD} days ahead of both is refused as a typo: check "
                      f"the date (a backfill to a past date always runs)")


# --- crashes and kills -------------------------------------------------------------------------------------

_RUNNING = re.compile(r"^running: pid (\d+) on (\S+)$")
STALE_RUN_HOURS = 24  # a `running` row without a checkable process (older versions, another host) is stale after this


def _note_process(engine: Engine, run_id: str) -> None:
    """Record which process runs this step, so a later run can tell a killed run from a live one."""
    with engine.begin() as conn:
        conn.execute(update(tables.pipeline_runs).where(tables.pipeline_runs.c.run_id == run_id).values(
            message=f"running: pid {os.getpid()} on {socket.gethostname()}"))


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows: rely on the age rule there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:  # Linux: a zombie (dead, not yet reaped by its parent) is not running anything
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def mark_interrupted_runs(engine: Engine, step: str, run_id: str) -> int:
    """Mark `running` rows of `step` whose process is gone as `failed` ("interrupted"); return how many.

    A row is stale when its process (pid on this host, from its message) no longer exists, or, when that
    cannot be checked, when it started more than STALE_RUN_HOURS ago. A live run of the same step is left alone.
    """
    t = tables.pipeline_runs
    host = socket.gethostname()
    with engine.begin() as conn:
        rows = conn.execute(select(t.c.run_id, t.c.started_at, t.c.message).where(
            (t.c.step == step) & (t.c.status == "running"))).all()
        stale = []
        for other, started_at, message in rows:
            m = _RUNNING.match(message or "")
            if m and m.group(2) == host and os.name != "nt":
                gone = not _pid_alive(int(m.group(1)))
            else:
                gone = started_at is not None and started_at < db.utc_now() - timedelta(hours=STALE_RUN_HOURS)
            if gone:
                stale.append(other)
                who = f"pid {m.group(1)} on {m.group(2)}" if m else "its process"
                conn.execute(update(t).where(t.c.run_id == other).values(
                    status="failed", finished_at=db.utc_now(),
                    message=f"interrupted: {who} ended without recording an outcome (killed, or the machine "
                            f"stopped); nothing it wrote was committed. Found by run {run_id}"))
    for other in stale:
        log.warning("pipeline_runs: run %s of %s was interrupted (its process is gone); marked failed", other, step)
    return len(stale)


def _exit_on_sigterm():
    """SIGTERM (a scheduler's stop, `kill`) becomes SystemExit, so the run is recorded as failed and the
    open transaction rolled back, instead of the process vanishing. Only possible in the main thread."""
    def handler(signum, frame):  # noqa: ANN001 - signal handler signature
        raise SystemExit(128 + signum)

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. a test runner's worker thread)
        return None


def _restore_sigterm(previous) -> None:  # noqa: ANN001 - whatever signal.signal returned
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


PAUSE_ENV = "WFM_TEST_PAUSE_BEFORE_COMMIT"


def _pause_before_commit_hook(engine: Engine):
    """The crash-safety test hook (see the module docstring); None unless its env var is set."""
    marker = os.environ.get(PAUSE_ENV)
    if not marker:
        return None
    seconds = float(os.environ.get("WFM_TEST_PAUSE_SECONDS", "60"))

    def pause(conn) -> None:  # noqa: ANN001 - SQLAlchemy event signature
        Path(marker).write_text(str(os.getpid()))
        time.sleep(seconds)

    event.listen(engine, "commit", pause)
    return pause


# --- overrides ----------------------------------------------------------------------------------------------

# --set keys that say where the data, models and files are, not what is computed: they never make a run a what-if
# (a nightly run pointed at its database with --set database.url=... keeps publishing).
WHERE_KEYS = ("database.", "source.", "report.", "training.model_dir")


def what_if_overrides(overrides: list[str] | None) -> list[str]:
    """The --set items that change what is computed (all but WHERE_KEYS): with any, steps 2 and 3 run as a what-if
    unless --publish is given."""
    def where(item: str) -> bool:
        key = item.split("=", 1)[0].strip()
        return any(key.startswith(k) if k.endswith(".") else key == k for k in WHERE_KEYS)
    return [item for item in overrides or [] if not where(item)]


# --- secrets ------------------------------------------------------------------------------------------------

def recorded_overrides(overrides: list[str] | None, url: str | None) -> list[str]:
    """The --set KEY=VALUE items as pipeline_runs and a what-if folder record them: the database password masked."""
    return [_redact(item, url) for item in overrides or []]


def _redact(text: str, url: str | None) -> str:
    """`text` without the database password (driver messages may echo connection strings, or the tail of a
    password with a raw `@` as part of the host name)."""
    return redact(text, url)


def describe_db_error(exc: DBAPIError, url: str | None) -> str:
    """The driver's first line, password masked; with a raw `@` in the URL's password, the fix too."""
    first = (str(exc.orig) if exc.orig is not None else str(exc)).strip().splitlines()
    said = _redact(first[0] if first else type(exc).__name__, url)
    if has_unencoded_at(url):
        said += (" (the database URL has more than one '@': a password containing '@' must be URL-encoded, "
                 "'@' as %40, e.g. pass%40word)")
    return said


def _finish_quietly(engine: Engine, run_id: str, status: str, rows: int | None, message: str) -> None:
    try:
        db.finish_run(engine, run_id, status, rows, message)
    except Exception:  # the database itself may be what failed; the original error matters more
        log.exception("could not record the failed run in pipeline_runs")
