"""Step 4's reads and writes: stored forecasts and actuals in, accuracy, summary and alert rows out.

The I/O half of `4_evaluate.py`; what is scored and how lives in `evaluate_step` (orchestration), `evaluation`
(scoring) and `alerts` (rules). Writes replace rows, so re-running an as-of never duplicates them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import Table, delete, false, func, select
from sqlalchemy.engine import Connection

from common import db, evaluation, model_choice, registry, silver, tables
from common.config_schema import Config

ACC = tables.gold_forecast_accuracy
SUMMARY = tables.gold_forecast_accuracy_summary


@dataclass(frozen=True)
class NightInputs:
    """What one night's scoring reads: the origins to (re-)score and their forecast points, the actuals, the
    newest forecast, and the leaking forecasts left out."""

    stored: list[date]          # every forecast origin before the as-of in gold_forecast_daily
    origins: list[date]         # the origins scored tonight (their accuracy rows are replaced)
    forecasts: pd.DataFrame     # gold_forecast_daily rows of `origins`, dated before the as-of, leaks removed
    skipped: pd.DataFrame       # the rows removed: their model had seen the days they forecast
    leaks: pd.DataFrame         # (forecast_origin, model_version) pairs of those rows
    daily: pd.DataFrame         # silver_daily: one row per queue per date (offered, is_open)
    intervals: pd.DataFrame     # open silver_interval rows (drift)
    latest: pd.DataFrame        # gold_forecast_daily rows of the newest origin on or before the as-of
    newest: pd.Timestamp | None  # the newest contact start loaded (freshness)


def read_night(conn: Connection, cfg: Config, as_of: date, *, rescore_from: date, daily_from: date, drift_from: date,
               full: bool) -> NightInputs:
    """The inputs of a night: origins from `rescore_from` on are re-scored (every one with `full`); silver_daily
    is read from `daily_from` (or earlier, as far back as the naive benchmark of the oldest origin needs), open
    silver_interval rows from `drift_from`."""
    stored = _origins(conn, tables.gold_forecast_daily, as_of)
    scored = _origins(conn, ACC, as_of, evaluation.NIGHTLY_METHODS)
    origins = evaluation.origins_to_score(stored, scored, rescore_from, full)
    leaks, purge = _leaking_forecasts(conn, cfg, as_of)
    origins = sorted(set(origins) | set(purge))  # leaking rows scored by an older version go with the re-score
    forecasts, skipped = evaluation.split_leaking(_read_forecasts(conn, origins, as_of), leaks)
    if origins:  # the naive benchmark of the oldest origin reads a year and a week before it
        daily_from = min(daily_from, origins[0] - timedelta(days=evaluation.NAIVE_HISTORY_DAYS))
    return NightInputs(stored=stored, origins=origins, forecasts=forecasts, skipped=skipped, leaks=leaks,
                       daily=_read_daily(conn, daily_from, as_of),
                       intervals=_read_open_intervals(conn, drift_from, as_of),
                       latest=_latest_forecast(conn, as_of), newest=silver.newest_contact(conn, cfg, as_of))


def replace_night(conn: Connection, as_of: date, origins: list[date], accuracy: pd.DataFrame, summary: pd.DataFrame,
                  alert_rows: pd.DataFrame, run_id: str) -> int:
    """Replace the scored origins' accuracy rows and this as-of's summary and alerts; return the rows written."""
    for chunk in _chunks(origins):
        conn.execute(delete(ACC).where(ACC.c.forecast_origin.in_(chunk) & ACC.c.method.in_(evaluation.NIGHTLY_METHODS)))
    written = db.insert_frame(conn, ACC, accuracy.assign(run_id=run_id))
    conn.execute(delete(SUMMARY).where((SUMMARY.c.as_of == as_of)
                                       & SUMMARY.c.method.in_([evaluation.FORECAST, evaluation.NAIVE_BENCHMARK])))
    written += db.insert_frame(conn, SUMMARY, summary.assign(run_id=run_id))
    # the intraday reforecast's alerts of the day (3_5_reforecast_intraday.py) are its own to replace
    conn.execute(delete(tables.gold_alerts).where((tables.gold_alerts.c.as_of == as_of)
                                                  & (tables.gold_alerts.c.alert_rule != "intraday_deviation")))
    written += db.insert_frame(conn, tables.gold_alerts, alert_rows.assign(
        run_id=run_id, as_of=pd.Timestamp(as_of), created_at=db.utc_now()))
    return written


def replace_backtest(conn: Connection, as_of: date, accuracy: pd.DataFrame, summary: pd.DataFrame,
                     run_id: str) -> int:
    """Replace the previous backtest's accuracy rows and this as-of's backtest summary; return the rows written."""
    conn.execute(delete(ACC).where(ACC.c.method.in_(evaluation.BACKTEST_METHODS)))
    written = db.insert_frame(conn, ACC, accuracy.assign(run_id=run_id))
    conn.execute(delete(SUMMARY).where((SUMMARY.c.as_of == as_of) & SUMMARY.c.method.in_(evaluation.BACKTEST_METHODS)))
    return written + db.insert_frame(conn, SUMMARY, summary.assign(run_id=run_id))


def _origins(conn: Connection, table: Table, as_of: date, methods: tuple[str, ...] | None = None) -> list[date]:
    """Distinct forecast origins before `as_of` in `table` (optionally only rows of `methods`)."""
    stmt = select(table.c.forecast_origin).where(table.c.forecast_origin < as_of).distinct()
    if methods is not None:
        stmt = stmt.where(table.c.method.in_(methods))
    frame = db.read_frame(conn, stmt, table)
    return sorted(frame["forecast_origin"].dt.date) if len(frame) else []


def _leaking_forecasts(conn: Connection, cfg: Config, as_of: date) -> tuple[pd.DataFrame, list[date]]:
    """Stored (origin, model version) pairs whose model saw the origin's target days (evaluation.leaking_forecasts),
    and the origins whose gold_forecast_accuracy rows still hold one (scored by an older version: re-scored now)."""
    used = _model_origins(conn, tables.gold_forecast_daily, as_of)
    versions = pd.DataFrame({"version": used["model_version"].unique()}).merge(
        registry.read_registry(conn).loc[:, ["version", "artifact_path"]], on="version", how="left")
    leaks = evaluation.leaking_forecasts(used, model_choice.training_windows(cfg, versions))
    in_accuracy = _model_origins(conn, ACC, as_of, evaluation.STORED_METHODS).merge(
        leaks, on=["forecast_origin", "model_version"])
    return leaks, sorted(in_accuracy["forecast_origin"].dt.date.unique())


def _model_origins(conn: Connection, table: Table, as_of: date,
                   methods: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Distinct forecast_origin, model_version before `as_of` in `table` (rows with a model version)."""
    stmt = (select(table.c.forecast_origin, table.c.model_version).distinct()
            .where((table.c.forecast_origin < as_of) & table.c.model_version.is_not(None)))
    if methods is not None:
        stmt = stmt.where(table.c.method.in_(methods))
    return db.read_frame(conn, stmt, table)


def _read_forecasts(conn: Connection, origins: list[date], as_of: date) -> pd.DataFrame:
    """gold_forecast_daily rows of `origins` dated before `as_of`: one row per origin per queue per date."""
    t = tables.gold_forecast_daily
    if not origins:
        return db.read_table(conn, t, where=false())
    frame = db.read_table(conn, t, where=(t.c.forecast_origin >= origins[0]) & (t.c.forecast_origin < as_of)
                          & (t.c.date < as_of))
    return frame.loc[frame["forecast_origin"].isin(pd.to_datetime(origins))].reset_index(drop=True)


def _read_daily(conn: Connection, start: date, as_of: date) -> pd.DataFrame:
    t = tables.silver_daily
    return db.read_table(conn, t, where=(t.c.date >= start) & (t.c.date < as_of),
                         columns=["queue", "date", "offered", "is_open"])


def _read_open_intervals(conn: Connection, start: date, as_of: date) -> pd.DataFrame:
    t = tables.silver_interval
    return db.read_table(conn, t, where=(t.c.date >= start) & (t.c.date < as_of) & t.c.is_open.is_(True),
                         columns=["queue", "date", "offered", "is_open"])


def _latest_forecast(conn: Connection, as_of: date) -> pd.DataFrame:
    """gold_forecast_daily rows of the newest origin on or before `as_of` (empty when there is none)."""
    t = tables.gold_forecast_daily
    newest = conn.execute(select(func.max(t.c.forecast_origin)).where(t.c.forecast_origin <= as_of)).scalar()
    return db.read_table(conn, t, where=false() if newest is None else t.c.forecast_origin == newest)


def _chunks(items: list, size: int = 500) -> Iterator[list]:
    # An IN list per chunk stays under the backends' bound-parameter limits (SQL Server: 2100).
    for i in range(0, len(items), size):
        yield items[i:i + size]
