"""Prometheus text-format metrics after every step, for node_exporter's textfile collector (`metrics.textfile_dir`).

(`common/metrics.py` is the forecast-error arithmetic; this module reports on the running pipeline.)

`common.cli.run_step` fills a `StepOutcome` as the step runs and calls `after_step` when it ends, success or not.
Two kinds of file, each written whole (a temporary file in the same folder, then `os.replace`: the collector never
reads half a file; the temporary name does not end in `.prom`, so it is never read), mode 0644 so node_exporter,
running as another user, can read them (they hold queue names and accuracy, no personal data):

`wfm_forecast_<step>.prom`, one per step, so steps never overwrite each other's:
    wfm_step_status{step,status}                  1 for the last run's status (success | skipped | failed), else 0
    wfm_step_duration_seconds{step}               wall time of the last run
    wfm_step_rows_written{step}                   rows it wrote (0 after a failure: nothing was committed)
    wfm_step_last_run_timestamp_seconds{step}     when it ended (Unix time)
    wfm_step_last_success_timestamp_seconds{step} the newest success or skip in pipeline_runs (kept after a failure)
    wfm_step_run_info{step,run_id,as_of,version}  1

`wfm_forecast_state.prom`: what the database holds after the newest step (each step rewrites it). Its series carry
no `step` label, and no series is in two files (node_exporter rejects a scrape with duplicate series):
    wfm_state_as_of_timestamp_seconds             the as-of of the run that wrote it (local midnight, Unix time)
    wfm_data_newest_day_timestamp_seconds         the newest day in silver_daily (local midnight, Unix time)
    wfm_data_age_seconds                          the as-of minus that day (86400 on a healthy night: actuals to
                                                  yesterday; seconds, Prometheus' base unit)
    wfm_forecast_wmape{scope,queue}               published forecast over evaluation.window_days, from the newest
    wfm_forecast_bias{scope,queue}                gold_forecast_accuracy_summary at or before the as-of (method
    wfm_forecast_wmape_naive{scope,queue}         `forecast`); scope `overall` (queue "") or `queue`. Ratios:
    wfm_forecast_scored_points{scope,queue}       0.08 is 8%; bias (p50 - actual) / actual; points: open days
                                                  scored (origin x queue x date)
    wfm_forecast_accuracy_as_of_timestamp_seconds the summary's as-of
    wfm_alerts_open{severity}                     gold_alerts of the newest as-of at or before the run's as-of that
    wfm_alerts_as_of_timestamp_seconds            step 4 judged or that has alerts; that as-of

Writing metrics never changes a step's outcome: a failure is one warning line. prometheus_client is imported only
when metrics are written (it costs ~0.1 s, and `--help` must stay quick).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from datetime import time as day_start
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from common import __version__, tables
from common.files import atomic_write

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from sqlalchemy import Engine

    from common.config_schema import Config

log = logging.getLogger(__name__)

STATUSES = ("success", "skipped", "failed")
SEVERITIES = ("warning", "critical")
SUMMARY_METHOD = "forecast"  # common.evaluation.FORECAST (not imported: it brings numpy and pandas)
EVALUATE_STEP = "4_evaluate"  # the step that raises the nightly alerts (common.report_step.EVALUATE_STEP)
STATE_FILE = "wfm_forecast_state.prom"
FILE_MODE = 0o644


def step_file(step: str) -> str:
    """The file name of `step`'s metrics."""
    return f"wfm_forecast_{step}.prom"


@dataclass
class StepOutcome:
    """What `run_step` learns about a run as it goes (None: not reached); `after_step` reports it."""

    step: str
    started: float = field(default_factory=time.perf_counter)
    cfg: Config | None = None
    engine: Engine | None = None
    run_id: str | None = None
    as_of: date | None = None
    status: str = "failed"        # until the step returns a result
    rows_written: int = 0


@dataclass(frozen=True)
class DatabaseState:
    """The database's answers for the state file."""

    newest_day: date | None
    accuracy_as_of: date | None
    accuracy: list[tuple[str, str, float | None, float | None, float | None, int]]  # scope, queue, wmape, bias,
    #                                                                                   wmape_naive, n_days
    alerts_as_of: date | None
    alerts: dict[str, int]


# --- reading the database ----------------------------------------------------------------------------------

def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value.date() if isinstance(value, datetime) else value
    return date.fromisoformat(str(value)[:10])


def last_success(conn: Connection, step: str) -> datetime | None:
    """When `step` last ended in success or skipped (naive UTC, from pipeline_runs)."""
    t = tables.pipeline_runs
    value = conn.execute(select(func.max(t.c.finished_at)).where(
        (t.c.step == step) & t.c.status.in_(("success", "skipped")))).scalar()
    return None if value is None else value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def read_state(conn: Connection, as_of: date) -> DatabaseState:
    """Silver's newest day, the newest accuracy summary and the newest alerts, each at or before `as_of`."""
    newest = _as_date(conn.execute(select(func.max(tables.silver_daily.c.date))).scalar())
    s = tables.gold_forecast_accuracy_summary
    mine = (s.c.method == SUMMARY_METHOD) & s.c.scope.in_(("overall", "queue"))
    summary_as_of = _as_date(conn.execute(select(func.max(s.c.as_of)).where(mine & (s.c.as_of <= as_of))).scalar())
    rows = [] if summary_as_of is None else conn.execute(
        select(s.c.scope, s.c.scope_value, s.c.wmape, s.c.bias, s.c.wmape_naive, s.c.n_days)
        .where(mine & (s.c.as_of == summary_as_of)).order_by(s.c.scope, s.c.scope_value)).all()
    # The alerts of the newest night step 4 judged (a quiet night has no rows, and its count is 0, not the last
    # night that had alerts), or of a newer as-of that has alerts (the intraday step's).
    a, r = tables.gold_alerts, tables.pipeline_runs
    judged = conn.execute(select(func.max(r.c.as_of)).where(
        (r.c.step == EVALUATE_STEP) & (r.c.status == "success") & (r.c.as_of <= as_of))).scalar()
    raised = conn.execute(select(func.max(a.c.as_of)).where(a.c.as_of <= as_of)).scalar()
    alerts_as_of = max((d for d in (_as_date(judged), _as_date(raised)) if d is not None), default=None)
    counts = {} if alerts_as_of is None else dict(conn.execute(
        select(a.c.severity, func.count()).where(a.c.as_of == alerts_as_of).group_by(a.c.severity)).all())
    return DatabaseState(newest, summary_as_of,
                         [(scope, "" if scope == "overall" else value, wmape, bias, naive, int(n))
                          for scope, value, wmape, bias, naive, n in rows],
                         alerts_as_of, {**dict.fromkeys(SEVERITIES, 0), **counts})


# --- the metrics (pure on their inputs) ----------------------------------------------------------------------

def _midnight(day: date, tz: str) -> float:
    return datetime.combine(day, day_start(), ZoneInfo(tz)).timestamp()


def _utc(moment: datetime) -> float:
    return moment.replace(tzinfo=timezone.utc).timestamp()


def step_registry(outcome: StepOutcome, duration: float, finished_at: float,
                  last_ok: datetime | None) -> CollectorRegistry:
    """The step file's metrics; `last_ok` is naive UTC."""
    from prometheus_client import CollectorRegistry, Gauge, Info

    registry, step = CollectorRegistry(), outcome.step
    status = Gauge("wfm_step_status", "1 for the status of the step's last run (success, skipped, failed), else 0",
                   ["step", "status"], registry=registry)
    for name in STATUSES:
        status.labels(step, name).set(1 if outcome.status == name else 0)
    Gauge("wfm_step_duration_seconds", "wall time of the step's last run", ["step"],
          registry=registry).labels(step).set(duration)
    Gauge("wfm_step_rows_written", "rows the step's last run wrote (0 after a failure: nothing was committed)",
          ["step"], registry=registry).labels(step).set(outcome.rows_written)
    Gauge("wfm_step_last_run_timestamp_seconds", "when the step's last run ended (Unix time)", ["step"],
          registry=registry).labels(step).set(finished_at)
    if last_ok is not None:
        Gauge("wfm_step_last_success_timestamp_seconds", "when the step last ended in success or skipped (Unix time)",
              ["step"], registry=registry).labels(step).set(_utc(last_ok))
    Info("wfm_step_run", "the step's last run", ["step"], registry=registry).labels(step).info(
        {"run_id": outcome.run_id or "", "as_of": outcome.as_of.isoformat() if outcome.as_of else "",
         "version": __version__})
    return registry


def _set(gauge: Any, value: float | None, *labels: str) -> None:
    if value is not None and not math.isnan(value):
        (gauge.labels(*labels) if labels else gauge).set(value)


def state_registry(state: DatabaseState, as_of: date, tz: str) -> CollectorRegistry:
    """The state file's metrics; dates as local midnight in `tz` (Unix time)."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    Gauge("wfm_state_as_of_timestamp_seconds", "as-of of the run that wrote this file (local midnight, Unix time)",
          registry=registry).set(_midnight(as_of, tz))
    if state.newest_day is not None:
        Gauge("wfm_data_newest_day_timestamp_seconds", "newest day in silver_daily (local midnight, Unix time)",
              registry=registry).set(_midnight(state.newest_day, tz))
        Gauge("wfm_data_age_seconds", "as-of minus the newest day in silver_daily (86400: actuals up to the day "
              "before)", registry=registry).set((as_of - state.newest_day).days * 86400)
    if state.accuracy_as_of is not None:
        Gauge("wfm_forecast_accuracy_as_of_timestamp_seconds", "as-of of the accuracy summary below (local midnight)",
              registry=registry).set(_midnight(state.accuracy_as_of, tz))
        labels = ["scope", "queue"]
        wmape = Gauge("wfm_forecast_wmape", "published forecast's wMAPE over the evaluation window (0.08 = 8%)",
                      labels, registry=registry)
        bias = Gauge("wfm_forecast_bias", "published forecast's bias, sum(p50 - actual) / sum(actual)", labels,
                     registry=registry)
        naive = Gauge("wfm_forecast_wmape_naive", "seasonal naive's wMAPE on the same points", labels,
                      registry=registry)
        days = Gauge("wfm_forecast_scored_points", "open forecast days scored in the window (origin x queue x date)",
                     labels,
                     registry=registry)
        for scope, queue, w, b, n, d in state.accuracy:
            _set(wmape, w, scope, queue)
            _set(bias, b, scope, queue)
            _set(naive, n, scope, queue)
            days.labels(scope, queue).set(d)
    if state.alerts_as_of is not None:
        Gauge("wfm_alerts_as_of_timestamp_seconds", "as-of of the alerts counted below (local midnight, Unix time)",
              registry=registry).set(_midnight(state.alerts_as_of, tz))
        alerts = Gauge("wfm_alerts_open", "alerts raised for that as-of, by severity", ["severity"], registry=registry)
        for severity, count in state.alerts.items():
            alerts.labels(severity).set(count)
    return registry


# --- writing -----------------------------------------------------------------------------------------------

def render(registry: CollectorRegistry) -> str:
    """`registry` in Prometheus' text format (what node_exporter's textfile collector reads)."""
    from prometheus_client import generate_latest

    return generate_latest(registry).decode("utf-8")


def write_registry(path: Path, registry: CollectorRegistry) -> Path:
    """`registry` in the text format at `path`, whole or not at all, readable by node_exporter (0644)."""
    data = render(registry).encode("utf-8")

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)
        tmp.chmod(FILE_MODE)

    return atomic_write(path, write)


def after_step(outcome: StepOutcome) -> None:
    """Write the step's file and the state file when metrics.textfile_dir is set; never raises."""
    cfg = outcome.cfg
    if cfg is None or not cfg.metrics.textfile_dir:
        return
    duration, finished = time.perf_counter() - outcome.started, time.time()
    folder = cfg.path(cfg.metrics.textfile_dir)
    last_ok = state = None
    try:
        if outcome.engine is not None and outcome.as_of is not None:
            with outcome.engine.connect() as conn:
                last_ok, state = last_success(conn, outcome.step), read_state(conn, outcome.as_of)
    except Exception as exc:  # noqa: BLE001 - the database may be what failed the step
        log.warning("metrics: could not read the database (%s); %s not updated, the step's outcome stands",
                    type(exc).__name__, folder / STATE_FILE)
    try:
        if not folder.is_dir():
            folder.mkdir(parents=True)
            folder.chmod(0o755)  # node_exporter runs as another user (the step's umask would make it 0700)
        write_registry(folder / step_file(outcome.step), step_registry(outcome, duration, finished, last_ok))
        if state is not None:
            write_registry(folder / STATE_FILE, state_registry(state, outcome.as_of, cfg.timezone))
    except Exception as exc:  # noqa: BLE001 - metrics never fail a step
        log.warning("metrics: could not write to metrics.textfile_dir %s (%s: %s); the step's outcome stands",
                    folder, type(exc).__name__, exc)
        return
    log.debug("metrics: %s and %s written to %s", step_file(outcome.step), STATE_FILE, folder)
