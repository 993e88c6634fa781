"""The intraday reforecast's wiring (3_5_reforecast_intraday.py): what it reads, the projection, staffing, alerts.

Reads the nightly forecast of today (gold_forecast_interval of the newest origin that forecast today), today's
rows in bronze (after loading the new export rows through step 0's path), and recent silver_interval history (the
replay that calibrates the update, and the fallback of a day the nightly run did not forecast). Today's intervals
so far are built in memory with silver's own code (`silver.compute_chunk`, `aggregate_intervals` /
`intervals_from_report`); nothing is written to silver or to training data, so the night never sees a partial day.
Writes gold_forecast_intraday (every issue kept) and the `intraday_deviation` alerts of today in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from common import db, reforecast, silver, tables
from common.aggregate import (
    aggregate_intervals,
    apply_queue_aliases,
    clip_aht,
    intervals_from_report,
)
from common.alerts import Alert, alerts_frame
from common.calendar import interval_grid, localize
from common.cdr import contacts_from_legs
from common.config_schema import Config
from common.errors import ConfigError
from common.intraday import aht_forecast, intraday_profile, minute_of_day, split_daily
from common.opening_hours import parse_opening_hours
from common.forecast_run import staffing_options
from common.staffing import staffing_table

log = logging.getLogger(__name__)

RULE = "intraday_deviation"
NO_NIGHTLY, REFORECAST, TOMORROW = "reforecast_no_nightly", "reforecast", "tomorrow_adjusted"
MEAN_WEEKS = 4  # the fallback day total and the replay's stand-in for the nightly: the same weekday's mean
CHECKPOINTS = list(range(60, 1440, 60))  # the replay reforecasts each past day at every full hour


def parse_at(value: str | None, tz: str, day: date | None = None) -> pd.Timestamp:
    """--at as a naive local time: 'HH:MM' (on `day`, default today), 'YYYY-MM-DD HH:MM' or ISO; None = now (to
    the minute; on `day` when given)."""
    now = datetime.now(ZoneInfo(tz)).replace(tzinfo=None, second=0, microsecond=0)
    if value is None:
        return pd.Timestamp(datetime.combine(day, now.time()) if day else now)
    try:
        if len(value) <= 5:
            return pd.Timestamp(datetime.combine(day or now.date(), dtime.fromisoformat(value)))
        return pd.Timestamp(datetime.fromisoformat(value)).floor("min")
    except ValueError:
        raise ConfigError(f"--at {value!r} is not a local time; use HH:MM or 'YYYY-MM-DD HH:MM', e.g. 10:30") from None


def at_utc(at: pd.Timestamp, tz: str) -> pd.Timestamp:
    """The naive UTC instant of a local wall-clock time (calendar.localize: a repeated hour takes the first)."""
    return localize(pd.Series([at]), tz).iloc[0]


# --- reads -----------------------------------------------------------------------------------------------------

def read_nightly(conn: Connection, day: date) -> tuple[date | None, pd.DataFrame]:
    """(origin, gold_forecast_interval rows of `day` and the day after) of the newest origin <= `day` that forecast
    `day`; (None, empty) when no nightly run did."""
    t = tables.gold_forecast_interval
    start, end = pd.Timestamp(day), pd.Timestamp(day) + pd.Timedelta(days=2)
    origin = conn.execute(select(func.max(t.c.forecast_origin)).where(
        (t.c.forecast_origin <= day) & (t.c.interval_start >= start)
        & (t.c.interval_start < start + pd.Timedelta(days=1)))).scalar()
    if origin is None:
        return None, pd.DataFrame(columns=["queue", "interval_start", "interval_start_utc", "p10", "p50", "p90",
                                           "aht_seconds"])
    rows = db.read_table(conn, t, where=(t.c.forecast_origin == origin) & (t.c.interval_start >= start)
                         & (t.c.interval_start < end),
                         columns=["queue", "interval_start", "interval_start_utc", "p10", "p50", "p90", "aht_seconds"])
    return pd.Timestamp(origin).date(), rows


def read_patience(conn: Connection, origin: date | None) -> pd.DataFrame | None:
    """gold_queue_patience rows of the nightly `origin` (None when no night ran): the patience step 3 staffed with."""
    if origin is None:
        return None
    t = tables.gold_queue_patience
    return db.read_table(conn, t, where=t.c.forecast_origin == origin, columns=["queue", "patience_seconds"])


def read_history(conn: Connection, start: date, day: date) -> pd.DataFrame:
    """silver_interval of start .. day-1: one row per queue per interval (profile, replay, fallback, AHT)."""
    t = tables.silver_interval
    return db.read_table(conn, t, where=(t.c.date >= start) & (t.c.date < day),
                         columns=["queue", "date", "interval_start", "interval_start_utc", "offered", "handled",
                                  "aht_seconds", "is_open"])


def observed_today(conn: Connection, cfg: Config, day: date, now_utc: pd.Timestamp, grid_of) -> pd.DataFrame:
    """Today's intervals from bronze, built as step 1 builds silver (aliases, contacts and redials, the grid) from
    the rows that started by `now_utc` (a replay of a past --at sees what had arrived by then); the interval in
    progress is partial. `grid_of(queues)` gives today's interval grid. silver_interval columns."""
    if cfg.source.kind == "daily":
        raise ConfigError("source.kind is daily: there are no intervals of today to reforecast from; "
                          "3_5_reforecast_intraday.py needs source.kind cdr or interval")
    cdr = cfg.source.kind == "cdr"
    pad = timedelta(days=1) if cdr else timedelta(0)
    plan = silver.BuildPlan([day], day - pad, day + pad, {}, pd.DataFrame())
    rows = silver.read_bronze(conn, cfg, plan, silver.LEG_COLUMNS if cdr else silver.REPORT_COLUMNS)
    rows = apply_queue_aliases(rows, cfg.rules.queue_aliases)
    rows = rows.loc[rows["start_time_utc" if cdr else "interval_start_utc"] <= now_utc].reset_index(drop=True)
    if cdr:
        closed = silver.closed_dates_for(cfg, day - pad, day + pad)
        calls, _ = contacts_from_legs(rows, silver.contact_rules(cfg, closed))
        calls = calls.loc[calls["date"] == pd.Timestamp(day)].reset_index(drop=True)
        intervals = aggregate_intervals(calls, grid_of(sorted(set(calls["queue"].astype("str")))))
    else:
        grid = grid_of(sorted(set(rows["queue"].astype("str"))))
        intervals = intervals_from_report(rows, grid, cfg.rules.interval_minutes)
    v = cfg.validation
    return clip_aht(intervals, v.aht_min_seconds, v.aht_max_seconds)[0]


# --- process ---------------------------------------------------------------------------------------------------

def day_means(history: pd.DataFrame, days: pd.DatetimeIndex, weeks: int = MEAN_WEEKS) -> pd.DataFrame:
    """The same-weekday mean day total of the `weeks` weeks before each of `days` (open days with calls), and its
    min and max as a band: one row per queue per day with such weeks: queue, date, p10, p50, p90."""
    open_rows = history.loc[history["is_open"].astype(bool)]
    totals = open_rows.groupby(["queue", "date"], as_index=False)["offered"].sum()
    totals = totals.loc[totals["offered"] > 0]
    rows = []
    for d in days:
        past = totals.loc[(totals["date"] < d) & (totals["date"] >= d - pd.Timedelta(days=7 * weeks))
                          & (totals["date"].dt.day_of_week == d.day_of_week)]
        for queue, g in past.groupby("queue"):
            rows.append((str(queue), d, g["offered"].min(), g["offered"].mean(), g["offered"].max()))
    return pd.DataFrame(rows, columns=["queue", "date", "p10", "p50", "p90"])


def replay_by_week(actual: pd.DataFrame, profile_of: Callable[[date], pd.DataFrame], nightly: pd.DataFrame,
                   minutes: int) -> pd.DataFrame:
    """reforecast.replay_points of each replayed day against `profile_of(its week's Monday)`: the shares a nightly
    run that week split by, which knew nothing of the day (today's profile has seen the replayed days, so their
    ratios came out too tight for the band)."""
    mondays = actual["date"] - pd.to_timedelta(actual["date"].dt.day_of_week, unit="D")
    parts = [reforecast.replay_points(chunk, profile_of(monday.date()), nightly, CHECKPOINTS, minutes)
             for monday, chunk in actual.groupby(mondays)]
    return pd.concat(parts, ignore_index=True) if parts else reforecast.replay_points(actual.iloc[0:0], pd.DataFrame(
        columns=["queue", "weekday", "minute", "share"]), nightly, CHECKPOINTS, minutes)


def calibration_for(history: pd.DataFrame, profile: pd.DataFrame, day: date, cfg: Config,
                    closed: pd.DataFrame) -> reforecast.Calibration:
    """Replay the last intraday.calibration_weeks weeks at every full hour against the same-weekday mean day (the
    nightly forecast of a past day is not at hand for every day): k per queue on today's profile, the band's points
    on each week's own profile (`replay_by_week`)."""
    i = cfg.intraday
    if i.calibration_weeks == 0 or history.empty:
        return reforecast.calibrate(pd.DataFrame(), i.trust_k)
    since = pd.Timestamp(day) - pd.Timedelta(days=7 * i.calibration_weeks)
    h = history.loc[(history["date"] >= since) & history["is_open"].astype(bool)]
    days = pd.DatetimeIndex(sorted(h["date"].unique()))
    nightly = day_means(history, days)
    actual = pd.DataFrame({"queue": h["queue"].astype("str").to_numpy(), "date": h["date"].to_numpy(),
                           "minute": minute_of_day(h["interval_start"]),
                           "offered": h["offered"].to_numpy(dtype=float, na_value=0.0)})
    actual = actual.groupby(["queue", "date", "minute"], as_index=False)["offered"].sum()
    points = reforecast.replay_points(actual, profile, nightly, CHECKPOINTS, cfg.rules.interval_minutes)
    band = replay_by_week(actual, lambda monday: intraday_profile(history, monday, cfg.forecast.profile_weeks, closed),
                          nightly, cfg.rules.interval_minutes)
    return reforecast.calibrate(points, i.trust_k, band)


def fallback_plan(history: pd.DataFrame, grid: pd.DataFrame, day: date, cfg: Config,
                  profile: pd.DataFrame) -> pd.DataFrame:
    """A day no nightly run forecast: the same-weekday mean of the last 4 weeks split by the same-weekday profile of
    forecast.profile_weeks, AHT from history. Same columns as the nightly plan."""
    means = day_means(history, pd.DatetimeIndex([pd.Timestamp(day)]))
    g = grid.loc[grid["queue"].isin(means["queue"])]
    if g.empty:
        return pd.DataFrame(columns=[*grid.columns, "p10", "p50", "p90", "aht_seconds"])
    split = split_daily(means, profile, g)
    aht = aht_forecast(history, g, day, cfg.forecast.aht_weeks, cfg.forecast.default_aht_seconds)
    return split.drop(columns="share").merge(aht.loc[:, ["queue", "interval_start_utc", "aht_seconds"]],
                                             on=["queue", "interval_start_utc"], how="left")


def staff(intervals: pd.DataFrame, cfg: Config, patience: pd.DataFrame | None = None) -> pd.DataFrame:
    """Staffing of the rows exactly as step 3 staffs them (`staffing_table` with the same model, targets and the
    nightly's queue patience, so a reforecast's agents differ from the night's only by the volume): the rows with
    agents/staff columns."""
    if intervals.empty:
        return intervals.assign(agents_p50=pd.Series(dtype="int64"), staff_p10=pd.Series(dtype="int64"),
                                staff_p50=pd.Series(dtype="int64"), staff_p90=pd.Series(dtype="int64"))
    s = cfg.staffing
    frame = intervals.rename(columns={c: f"volume_{c}" for c in reforecast.QCOLS})
    out = staffing_table(frame, cfg.rules.interval_minutes, s.service_level, s.answer_seconds, s.max_occupancy,
                         s.shrinkage, s.asa_target_seconds, **staffing_options(cfg, patience))
    return out.rename(columns={f"volume_{c}": c for c in reforecast.QCOLS})


def deviation_alerts(summary: pd.DataFrame, new: pd.DataFrame, old: pd.DataFrame, limit: float,
                     minutes: int) -> list[Alert]:
    """One warning per queue whose projected day is more than `limit` off the nightly p50, with what it means for
    staff: the largest change in staff (p50) over today's remaining intervals and the hours it spans."""
    alerts = []
    for row in summary.itertuples(index=False):
        if not row.nightly_day_p50 > 0:
            continue
        dev = row.projected_day_p50 / row.nightly_day_p50 - 1.0
        if abs(dev) <= limit:
            continue
        q_new = new.loc[new["queue"] == row.queue].sort_values("interval_start_utc")
        q_old = old.loc[old["queue"] == row.queue].sort_values("interval_start_utc")
        diff = q_new["staff_p50"].to_numpy(dtype=float) - q_old["staff_p50"].to_numpy(dtype=float)
        sign = 1 if dev > 0 else -1
        staff_words = "staffing unchanged for the rest of the day"
        if len(diff) and (sign * diff).max() > 0:
            peak = int((sign * diff).max())
            at_peak = sign * diff >= peak
            begin = end = int(np.argmax(at_peak))  # the first run of intervals at the peak
            while end + 1 < len(diff) and at_peak[end + 1]:
                end += 1
            starts = q_new["interval_start"].to_numpy()
            first, last = pd.Timestamp(starts[begin]), pd.Timestamp(starts[end]) + pd.Timedelta(minutes=minutes)
            staff_words = (f"{peak} {'more' if sign > 0 else 'fewer'} agents needed "
                           f"{first:%H:%M}-{last:%H:%M}")
        message = (f"{row.queue}: {dev:+.0%} on the nightly forecast; {staff_words} (projected "
                   f"{row.projected_day_p50:.0f} calls today vs {row.nightly_day_p50:.0f}; "
                   f"{row.share_so_far:.0%} of the day seen; intraday.alert_deviation {limit:g})")
        alerts.append(Alert(severity="warning", rule=RULE, queue=row.queue, metric="projected_day_vs_nightly",
                            value=float(dev), threshold=float(limit), message=message))
    return alerts


def build(cfg: Config, at: pd.Timestamp, nightly: pd.DataFrame, history: pd.DataFrame,
          observed: pd.DataFrame, grid: pd.DataFrame,
          patience: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame, list[Alert]]:
    """(gold_forecast_intraday rows without run_id, the per-queue summary, alerts) of the reforecast at `at`.

    `nightly`: read_nightly rows (today and tomorrow); `grid`: today's and tomorrow's interval grid of every queue;
    `patience`: the nightly origin's gold_queue_patience rows (staffing as step 3 did).
    """
    minutes, tz = cfg.rules.interval_minutes, cfg.timezone
    day = at.date()
    nightly = nightly.astype({"queue": "str", "interval_start": "datetime64[ns]",  # typed even when empty
                              "interval_start_utc": "datetime64[ns]",
                              **{c: float for c in [*reforecast.QCOLS, "aht_seconds"]}})
    today, tomorrow = pd.Timestamp(day), pd.Timestamp(day) + pd.Timedelta(days=1)
    now_utc = at_utc(at, tz)
    closed = silver.closed_dates_for(cfg, day, day)
    profile = intraday_profile(history, day, cfg.forecast.profile_weeks, closed)
    g_today = grid.loc[grid["date"] == today]
    keys = ["queue", "interval_start_utc"]
    plan = g_today.merge(nightly.drop(columns="interval_start"), on=keys, how="inner")
    missing = sorted(set(g_today["queue"]) - set(plan["queue"]))
    if missing:
        log.warning("reforecast: no nightly forecast of %s for %s: the same-weekday mean of the last %d weeks split "
                    "by the same-weekday profile instead", ", ".join(missing), day, MEAN_WEEKS)
        extra = fallback_plan(history, g_today.loc[g_today["queue"].isin(missing)], day, cfg, profile)
        plan = pd.concat([plan.assign(method=REFORECAST), extra.assign(method=NO_NIGHTLY)], ignore_index=True)
    else:
        plan = plan.assign(method=REFORECAST)
    plan = plan.loc[:, [*grid.columns, "p10", "p50", "p90", "aht_seconds", "method"]]
    calibration = calibration_for(history, profile, day, cfg, closed)
    seen_utc = reforecast.data_reaches(observed, g_today["interval_start_utc"].min(), now_utc, minutes)
    if seen_utc <= now_utc - pd.Timedelta(minutes=minutes):
        log.warning("reforecast: today's export reaches only %s UTC (at %s UTC): the intervals after it are not seen "
                    "yet and count as unknown, not zero", seen_utc, now_utc)
    rest, summary = reforecast.reforecast_day(plan, observed, seen_utc, minutes, calibration)
    # intervals already over at `at` (but after the export's end) stay in the projection, not in the rows
    rest = rest.loc[reforecast.interval_states(rest["interval_start_utc"], now_utc, minutes) != "done"]
    parts = [rest]
    if cfg.intraday.tomorrow_after and at.time() >= dtime.fromisoformat(cfg.intraday.tomorrow_after):
        g_next = grid.loc[grid["date"] == tomorrow]
        nxt = g_next.merge(nightly.drop(columns="interval_start"), on=keys, how="inner")
        nxt = nxt.loc[:, [*grid.columns, "p10", "p50", "p90", "aht_seconds"]]
        parts.append(reforecast.adjust_tomorrow(nxt, summary, cfg.intraday.tomorrow_shrink).assign(method=TOMORROW))
    out = pd.concat(parts, ignore_index=True)
    staffed = staff(out, cfg, patience)
    old = staff(rest.assign(**{c: plan.set_index(keys).loc[pd.MultiIndex.from_frame(rest[keys]), c].to_numpy()
                               for c in reforecast.QCOLS}), cfg, patience)
    alerts = deviation_alerts(summary, staffed.loc[staffed["date"] == today], old, cfg.intraday.alert_deviation,
                              minutes)
    nightly_days = nightly.assign(date=nightly["interval_start"].dt.normalize()).groupby(
        ["queue", "date"], as_index=False)["p50"].sum().rename(columns={"p50": "nightly_day_p50"})
    rows = staffed.merge(summary.loc[:, ["queue", "projected_day_p50", "observed_so_far", "share_so_far"]], on="queue",
                         how="left")
    rows = rows.merge(nightly_days, on=["queue", "date"], how="left")
    is_today = rows["date"] == today
    rows.loc[~is_today, ["projected_day_p50", "observed_so_far", "share_so_far"]] = np.nan
    # today's nightly day of a queue the night did not forecast: the fallback's day total
    fallback_day = summary.set_index("queue")["nightly_day_p50"]
    rows["nightly_day_p50"] = rows["nightly_day_p50"].fillna(rows["queue"].map(fallback_day).where(is_today))
    rows = rows.assign(issued_at=at, issued_at_utc=now_utc, forecast_date=rows["date"])
    columns = [c.name for c in tables.gold_forecast_intraday.columns if c.name != "run_id"]
    return rows.loc[:, columns].reset_index(drop=True), summary, alerts


def today_grid(cfg: Config, day: date, queues: list[str]) -> pd.DataFrame:
    """The interval grid of `day` and the day after for `queues` (opening hours, holidays): calendar.interval_grid."""
    hours = parse_opening_hours(cfg.rules.opening_hours.model_dump())
    closed = silver.closed_dates_for(cfg, day, day + timedelta(days=1))
    return interval_grid(queues, day, day + timedelta(days=1), cfg.rules.interval_minutes, cfg.timezone, hours, closed)


# --- writes ----------------------------------------------------------------------------------------------------

def save(conn: Connection, rows: pd.DataFrame, alerts: list[Alert], at_utc: pd.Timestamp, day: date,
         run_id: str) -> int:
    """Replace this issue's rows (a re-run of the same --at gives the same rows) and today's intraday alerts (the
    newest issue's stand); other issues and the nightly alerts stay. The caller's transaction."""
    t = tables.gold_forecast_intraday
    conn.execute(delete(t).where(t.c.issued_at_utc == at_utc.to_pydatetime()))
    written = db.insert_frame(conn, t, rows.assign(run_id=run_id))
    a = tables.gold_alerts
    conn.execute(delete(a).where((a.c.as_of == day) & (a.c.alert_rule == RULE)))
    if alerts:
        written += db.insert_frame(conn, a, alerts_frame(alerts).assign(
            run_id=run_id, as_of=pd.Timestamp(day), created_at=db.utc_now()))
    return written
