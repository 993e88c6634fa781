"""Step 3's orchestration: which model, which queues get it, the fallback, the guards, the intraday split, the staffing.

`build_forecast` is what `3_forecast.py` does between reading silver and writing gold: pure on its inputs (frames, the
config, the model), so a backfill, a what-if or a test runs the same code as the nightly run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import delete
from sqlalchemy.engine import Connection, Engine

from common import day_shape, db, ensemble, guards, intraday, model_choice, profiles, silver, tables, validation
from common.calendar import interval_grid
from common.config_schema import Config
from common.errors import ConfigError, ModelError, PipelineError
from common.forecast_frame import ENSEMBLE, LIGHTGBM, MODEL_METHODS
from common.forecaster import QuantileForecaster
from common.opening_hours import parse_opening_hours
from common.patience import patience_map
from common.staffing import daily_staffing_summary, staffing_table

log = logging.getLogger(__name__)

QUANTILES = [0.1, 0.5, 0.9]
QCOLS = ["p10", "p50", "p90"]


@dataclass(frozen=True)
class ForecastRun:
    """What one origin publishes (gold frames, one row per queue per date / interval) and every check's result."""

    forecast: pd.DataFrame          # gold_forecast_daily rows
    intervals: pd.DataFrame         # gold_forecast_interval rows
    staffing: pd.DataFrame          # gold_staffing_interval rows
    staff_daily: pd.DataFrame       # gold_staffing_daily rows
    checks: list[validation.CheckResult]
    queues: list[str]
    members: pd.DataFrame | None = None  # gold_forecast_members rows: each ensemble member's p50 and weight


def check_config(cfg: Config) -> None:
    """ConfigError for settings step 3 cannot honour (it writes p10/p50/p90 per queue)."""
    f = cfg.forecast
    if sorted(f.quantiles) != QUANTILES:
        raise ConfigError(f"forecast.quantiles == {f.quantiles}: step 3 writes p10/p50/p90 columns, so it must be "
                          f"{QUANTILES}")
    if cfg.series.by != "queue":
        raise ConfigError(f"series.by == {cfg.series.by!r} is not supported yet by 3_forecast.py; use series.by: queue")


def choose_model(engine: Engine, cfg: Config,
                 as_of: date) -> tuple[str | None, QuantileForecaster | None, str | None]:
    """(version, model, None) of the model trained before `as_of` (production for the nightly run;
    model_choice.load_for says which for a backfill), or (None, None, why) when there is none: then every queue
    gets the fallback, and the night still succeeds."""
    try:
        version, model, why = model_choice.load_for(engine, cfg, as_of)
    except ModelError as exc:
        log.warning("forecast: no usable model for as-of %s, every queue gets seasonal naive: %s", as_of, exc)
        return None, None, str(exc)
    log.info("forecast: model %s for as-of %s: %s", version, as_of, why)
    return version, model, None


def build_forecast(cfg: Config, as_of: date, daily: pd.DataFrame, history_int: pd.DataFrame,
                   exogenous: pd.DataFrame | None, model: QuantileForecaster | None, version: str | None,
                   problem: str | None, vendor: pd.DataFrame | None = None,
                   patience: pd.DataFrame | None = None) -> ForecastRun:
    """The forecast of every queue of `daily` (silver_daily before `as_of`) for as_of .. as_of + horizon - 1.

    `history_int`: silver_interval rows of the weeks before `as_of` (profile, AHT, shape history); `model` the
    production model (None: `problem` says why, every queue gets the fallback); `vendor` the vendor's forecasts
    (forecast.vendor_table) issued before `as_of`, an ensemble member.
    """
    f = cfg.forecast
    end = as_of + timedelta(days=f.horizon_days - 1)
    t0 = time.perf_counter()
    queues = sorted(daily["queue"].unique())
    first = daily["date"].min().date()
    closed = silver.closed_dates_for(cfg, first, as_of + timedelta(days=366))
    hours = parse_opening_hours(cfg.rules.opening_hours.model_dump())
    calendar = guards.day_calendar(queues, first, end, hours, closed)
    origin = pd.Timestamp(as_of)
    history = guards.complete_history(daily, calendar.loc[calendar["date"] < origin])
    future = calendar.loc[calendar["date"] >= origin].reset_index(drop=True)
    checks = guards.check_history_recency(daily, as_of)
    reasons, model_checks = guards.model_eligibility(history, model.categories_ if model else None,
                                                     cfg.training.min_history_days, problem)
    eligible = [q for q in queues if q not in reasons]
    model_daily, member_rows = _empty_daily(), None
    if eligible:
        from lightgbm.basic import LightGBMError  # on use: a step's --help must not wait for LightGBM to load

        try:
            model_daily = _model_forecast(model, history, future, closed, exogenous, eligible, vendor)
            model_daily, member_rows = model_daily.loc[:, _empty_daily().columns], members_frame(model, model_daily)
        except (PipelineError, LightGBMError) as exc:
            log.warning("forecast: model %s failed, every queue falls back: %s", version, exc)
            reasons, model_checks = guards.model_eligibility(history, None, cfg.training.min_history_days,
                                                             f"model forecast failed ({version}): {exc}")
            eligible = []
    checks += model_checks
    fallback, notes = guards.fallback_forecast(history, future, QUANTILES)
    log.info("forecast: %d queues x %d days: %d by model, %d need the fallback before any check (%.1fs)",
             len(queues), f.horizon_days, len(eligible), len(queues) - len(eligible), time.perf_counter() - t0)

    t0 = time.perf_counter()
    minutes = cfg.rules.interval_minutes
    grid = interval_grid(queues, as_of, end, minutes, cfg.timezone, hours, closed)
    day_open = future.loc[:, ["queue", "date", "is_open"]]
    profile, choice = profiles.choose_profiles(history_int, as_of, closed, hours, _open_weekdays(day_open),
                                               profile_settings(cfg))
    shape = day_shape.parse_default_shape(cfg.intraday.default_shape, hours, minutes)
    profile, choice, days_only = day_shape.without_interval_history(profile, choice, history_int, shape, hours,
                                                                    minutes)
    checks += guards.profile_results(choice)
    limits = guards.GuardLimits(f.guards.max_total_deviation, f.guards.total_weeks)
    model_int = intraday.split_daily(model_daily, profile, grid)
    guard_checks = guards.check_forecast(model_daily.merge(day_open, on=["queue", "date"]), model_int, history,
                                         closed, as_of, limits, guards.LIGHTGBM)
    reasons |= guards.failed_reasons(guard_checks)
    for queue, note in notes.items():
        reasons[queue] = f"{reasons.get(queue, 'no model forecast')}; {note}"
    fallback = fallback.loc[fallback["queue"].isin(list(reasons))]
    fallback_int = intraday.split_daily(fallback, profile, grid)
    unchecked = [q for q in reasons if q not in eligible]  # their fallback is what gets published: check it too
    guard_checks += guards.check_forecast(
        fallback.loc[fallback["queue"].isin(unchecked)].merge(day_open, on=["queue", "date"]),
        fallback_int.loc[fallback_int["queue"].isin(unchecked)], history, closed, as_of, limits,
        guards.SEASONAL_NAIVE)
    checks += guard_checks
    forecast = _with_profile(guards.apply_fallback(model_daily, fallback, reasons, version), choice)
    if member_rows is not None:  # the published rows of an ensemble say so; the fallback's have no members
        forecast = forecast.assign(method=forecast["method"].replace(LIGHTGBM, ENSEMBLE))
        member_rows = member_rows.loc[~member_rows["queue"].isin(list(reasons))].reset_index(drop=True)
    interval_fc = pd.concat([model_int.loc[~model_int["queue"].isin(list(reasons))], fallback_int], ignore_index=True)
    interval_fc = interval_fc.loc[~interval_fc["queue"].isin(days_only)]  # no intervals, so no staffing either
    for queue in days_only:
        log.warning("forecast: %s", day_shape.days_only_sentence(queue))
    _log_checks(checks)
    log.info("forecast: %d daily rows (%d queues by the model, %d seasonal naive), %d interval rows (%.1fs)",
             len(forecast), forecast.loc[forecast["method"].isin(MODEL_METHODS), "queue"].nunique(),
             forecast.loc[forecast["method"] == guards.SEASONAL_NAIVE, "queue"].nunique(), len(interval_fc),
             time.perf_counter() - t0)

    t0 = time.perf_counter()
    aht = intraday.aht_forecast(history_int, grid, as_of, f.aht_weeks, f.default_aht_seconds)
    interval_fc = interval_fc.merge(aht.loc[:, ["queue", "interval_start_utc", "aht_seconds"]],
                                    on=["queue", "interval_start_utc"], how="left")
    staffing_in = interval_fc.rename(columns={q: f"volume_{q}" for q in QCOLS})
    s = cfg.staffing
    staffing = staffing_table(staffing_in, minutes, s.service_level, s.answer_seconds, s.max_occupancy, s.shrinkage,
                              s.asa_target_seconds, **staffing_options(cfg, patience))
    staff_daily = daily_staffing_summary(staffing, minutes, s.paid_hours_per_fte)
    log.info("forecast: staffing for %d intervals, %d queue-days (%.1fs)", len(staffing), len(staff_daily),
             time.perf_counter() - t0)

    return ForecastRun(forecast, interval_fc, staffing, staff_daily, checks, queues, member_rows)


def staffing_options(cfg: Config, patience: pd.DataFrame | None) -> dict:
    """staffing_table's keyword arguments from `staffing.*` and the queues' patience (gold_queue_patience rows)."""
    s = cfg.staffing
    return {"max_abandon_rate": s.max_abandon_rate, "model": s.model, "patience_seconds": patience_map(patience),
            "queue_targets": {q: t.model_dump(exclude_none=True) for q, t in s.queues.items()}}


def run_message(run: ForecastRun, as_of: date, version: str | None, horizon_days: int) -> str:
    """The run's one line for pipeline_runs: queues by method, intervals staffed, staff-hours, checks failed."""
    n_fallback = run.forecast.loc[run.forecast["method"] == guards.SEASONAL_NAIVE, "queue"].nunique()
    n_queues = len(run.queues)
    method = LIGHTGBM if run.members is None else ENSEMBLE
    return (f"origin {as_of}: {n_queues} queues x {horizon_days} days, {n_queues - n_fallback} {method} "
            f"({version or 'no model'}), {n_fallback} seasonal naive; {len(run.intervals)} intervals staffed, "
            f"{run.staff_daily['staff_hours_p50'].sum():.0f} staff-hours (p50); "
            f"{sum(not c.passed for c in run.checks)} of {len(run.checks)} checks failed")


def profile_settings(cfg: Config) -> profiles.ProfileSettings:
    """The intraday profile choice's windows and limits from `forecast.*`."""
    f, g = cfg.forecast, cfg.forecast.guards
    return profiles.ProfileSettings(weeks=f.profile_weeks, shape_weeks=g.shape_weeks, long_weeks=f.profile_long_weeks,
                                    holdout_weeks=f.profile_holdout_weeks, min_days=g.min_profile_days,
                                    max_interval_ratio=g.max_interval_ratio,
                                    min_shape_correlation=g.min_shape_correlation)


def history_weeks(cfg: Config) -> int:
    """Weeks of silver_interval history step 3 reads: every profile candidate's window, the AHT's and the shape's."""
    f = cfg.forecast
    return max(f.profile_weeks, f.profile_long_weeks, f.aht_weeks, f.guards.shape_weeks) + f.profile_holdout_weeks


def _open_weekdays(day_open: pd.DataFrame) -> pd.DataFrame:
    """queue, weekday of the forecast's open days (the profiles to choose)."""
    o = day_open.loc[day_open["is_open"].astype(bool)]
    return pd.DataFrame({"queue": o["queue"].astype("str"), "weekday": o["date"].dt.day_of_week.astype("int64")})


def _with_profile(forecast: pd.DataFrame, choice: pd.DataFrame) -> pd.DataFrame:
    """gold_forecast_daily rows with the profile each open day was split by, and why (closed days: none)."""
    wd = forecast["date"].dt.day_of_week.astype("int64").rename("weekday")
    keyed = forecast.assign(weekday=wd).merge(choice.loc[:, ["queue", "weekday", "profile", "reason"]],
                                              on=["queue", "weekday"], how="left")
    return keyed.rename(columns={"profile": "intraday_profile", "reason": "intraday_profile_reason"}).drop(
        columns="weekday").astype({"intraday_profile": "object", "intraday_profile_reason": "object"})


def _model_forecast(model: QuantileForecaster, history: pd.DataFrame, future: pd.DataFrame, closed: pd.DataFrame,
                    exogenous: pd.DataFrame | None, queues: list[str], vendor: pd.DataFrame | None) -> pd.DataFrame:
    """The model's recursive forecast of `queues`: one row per queue per future date (with `member_*` columns when
    the model is an ensemble)."""
    def as_series(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.loc[frame["queue"].isin(queues)].rename(columns={"queue": "series", "offered": "y"})

    fc = model.forecast(as_series(history), as_series(future), closed, exogenous=exogenous, vendor=vendor)
    members = [ensemble.member_column(m) for m in ensemble.member_names(fc)]
    return fc.rename(columns={"series": "queue"}).loc[:, ["queue", "date", "horizon_day", *QCOLS, *members]]


def members_frame(model: QuantileForecaster, forecast: pd.DataFrame) -> pd.DataFrame | None:
    """gold_forecast_members rows: one per queue per date per member with a weight: its p50 and the queue's weight
    (weights sum to 1 per queue and date; a member without a value that day gives its weight to the others).
    None when the model is not an ensemble."""
    weights = (model.adjustments_ or {}).get("ensemble")
    if not weights:
        return None
    parts = []
    for queue, rows in forecast.groupby("queue", sort=True):
        w = ensemble.weights_for(weights, str(queue))
        for member, weight in w.items():
            col = ensemble.member_column(member)
            values = rows[col] if col in rows.columns else pd.Series(float("nan"), index=rows.index)
            parts.append(pd.DataFrame({"queue": queue, "date": rows["date"], "member": member,
                                       "p50": values.to_numpy(dtype=float), "weight": float(weight)}))
    out = pd.concat(parts, ignore_index=True)
    # the weight a member had on each day: renormalised over the members with a value (ensemble.combine)
    present = out["p50"].notna()
    total = out["weight"].where(present, 0.0).groupby([out["queue"], out["date"]]).transform("sum")
    out = out.assign(weight=(out["weight"].where(present, 0.0) / total.where(total > 0)).fillna(0.0))
    return out.sort_values(["queue", "date", "member"], kind="stable").reset_index(drop=True)


def empty_members() -> pd.DataFrame:
    return pd.DataFrame({"queue": pd.Series(dtype="str"), "date": pd.Series(dtype="datetime64[ns]"),
                         "member": pd.Series(dtype="str"), "p50": pd.Series(dtype=float),
                         "weight": pd.Series(dtype=float)})


def _empty_daily() -> pd.DataFrame:
    return pd.DataFrame({"queue": pd.Series(dtype="str"), "date": pd.Series(dtype="datetime64[ns]"),
                         "horizon_day": pd.Series(dtype="int64"), **{q: pd.Series(dtype=float) for q in QCOLS}})


def _log_checks(checks: list[validation.CheckResult]) -> None:
    """One line per queue with every check's verdict, and a warning with the detail of each failure."""
    by_queue: dict[str, list[str]] = {}
    for c in checks:
        value = "" if c.value is None else f" {c.value:.3g}"
        by_queue.setdefault(c.queue or "-", []).append(f"{c.check_name} {'ok' if c.passed else 'FAILED'}{value}")
        if not c.passed:
            log.warning("check %s [%s]: %s", c.check_name, c.queue, c.detail)
    for queue, parts in sorted(by_queue.items()):
        log.info("checks %s: %s", queue, ", ".join(parts))


def log_planner_lines(staffing: pd.DataFrame, staff_daily: pd.DataFrame) -> None:
    """Per queue, its first forecast day with volume: the staffing range at the peak and the day's staff-hours."""
    busy = staff_daily.loc[staff_daily["volume_p50"] > 0].sort_values(["queue", "date"]).groupby("queue").head(1)
    for row in busy.itertuples(index=False):
        day = staffing.loc[(staffing["queue"] == row.queue) & (staffing["interval_start"].dt.normalize() == row.date)]
        peak = day.loc[day["staff_p50"].idxmax()]
        log.info("%s %s: %d-%d staff at %s peak (p10-p90), %.0f staff-hours (p50), %.0f contacts (p50)",
                 row.queue, f"{row.date:%Y-%m-%d}", peak["staff_p10"], peak["staff_p90"],
                 f"{peak['interval_start']:%H:%M}", row.staff_hours_p50, row.volume_p50)


# --- step 3's reads and writes -------------------------------------------------------------------------------

def read_daily(conn: Connection, as_of: date) -> pd.DataFrame:
    """silver_daily before `as_of`, only what forecasting needs: one row per queue per date."""
    t = tables.silver_daily
    frame = db.read_table(conn, t, where=t.c.date < as_of,
                          columns=["queue", "date", "offered", "is_open", "is_holiday"])
    return frame.sort_values(["queue", "date"], kind="stable").reset_index(drop=True)


def read_intervals(conn: Connection, start: date, as_of: date) -> pd.DataFrame:
    """silver_interval of dates start .. as_of-1 (profile, AHT and shape history): one row per queue per interval."""
    t = tables.silver_interval
    return db.read_table(conn, t, where=(t.c.date >= start) & (t.c.date < as_of),
                         columns=["queue", "date", "interval_start", "interval_start_utc", "offered", "handled",
                                  "aht_seconds", "is_open"])


def gold_frames(run: ForecastRun, queue_patience: pd.DataFrame, run_id: str, as_of: date) -> dict:
    """{gold table: its rows of this origin}: what step 3 writes (or a what-if writes to files)."""
    stamp = {"run_id": run_id, "forecast_origin": pd.Timestamp(as_of)}
    members = run.members if run.members is not None else empty_members()
    return {tables.gold_forecast_daily: run.forecast.assign(**stamp),
            tables.gold_forecast_interval: run.intervals.assign(**stamp),
            tables.gold_staffing_interval: run.staffing.assign(**stamp),
            tables.gold_staffing_daily: run.staff_daily.assign(**stamp),
            tables.gold_forecast_members: members.assign(**stamp),
            tables.gold_queue_patience: queue_patience.assign(**stamp)}


def replace_origin(conn: Connection, as_of: date, frames: dict) -> int:
    """Replace the gold rows of origin `as_of` with `frames` ({table: rows}); other origins stay. Rows written."""
    written = 0
    for table, frame in frames.items():
        conn.execute(delete(table).where(table.c.forecast_origin == as_of))
        written += db.insert_frame(conn, table, frame)
    return written
