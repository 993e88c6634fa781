"""Data checks WFM teams rely on, run on silver before it is written.

Each check returns `CheckResult`s; every result is stored in `data_quality_checks`.
A failed `critical` check stops step 1 (exit 2, nothing written to silver); a
failed `warning` is logged and the step goes on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

import pandas as pd

CRITICAL, WARNING, INFO = "critical", "warning", "info"


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict: which check, how bad a failure is, and a detail a person can act on."""

    check_name: str
    severity: str
    passed: bool
    detail: str
    queue: str | None = None
    value: float | None = None
    threshold: float | None = None


def results_frame(results: Iterable[CheckResult]) -> pd.DataFrame:
    """One row per check result, in the columns of data_quality_checks."""
    rows = [asdict(r) for r in results]
    return pd.DataFrame(rows, columns=["check_name", "severity", "passed", "detail", "queue", "value", "threshold"])


def failed_critical(results: Iterable[CheckResult]) -> list[CheckResult]:
    """The results that must stop the step."""
    return [r for r in results if r.severity == CRITICAL and not r.passed]


def check_silver_schema(intervals: pd.DataFrame, daily: pd.DataFrame) -> list[CheckResult]:
    """dbt-style table tests: required columns, unique keys, no nulls, offered >= handled + abandoned."""
    results = []
    need_i = {"queue", "interval_start_utc", "interval_start", "date", "offered", "is_open", "offered_outside_hours"}
    need_d = {"queue", "date", "offered", "is_open", "is_holiday", "offered_outside_hours"}
    for name, frame, need, key in (("silver_interval", intervals, need_i, ["queue", "interval_start_utc"]),
                                   ("silver_daily", daily, need_d, ["queue", "date"])):
        missing = sorted(need - set(frame.columns))
        if missing:
            results.append(CheckResult("schema", CRITICAL, False, f"{name} lacks columns {missing}"))
            continue
        dupes = int(frame.duplicated(subset=key).sum())
        nulls = int(frame[list(need)].isna().any(axis=1).sum())
        over = frame["offered"] + 1e-9 < frame.get("handled", 0).fillna(0) + frame.get("abandoned", 0).fillna(0)
        problems = [f"{dupes} duplicate {key} keys" if dupes else "",
                    f"{nulls} rows with nulls in required columns" if nulls else "",
                    f"{int(over.sum())} rows with offered < handled + abandoned ({_first_row(frame[over])})"
                    if over.any() else ""]
        problems = [p for p in problems if p]
        results.append(CheckResult("schema", CRITICAL, not problems,
                                   f"{name}: " + ("; ".join(problems) if problems else f"{len(frame)} rows, keys unique")))
    return results


def reconcile_offered(intervals: pd.DataFrame) -> tuple[pd.DataFrame, list[CheckResult]]:
    """`intervals` (silver_interval rows, grain unchanged) with offered raised to handled + abandoned where it
    was below, and one warning per queue naming those intervals.

    Interval reports have such rows: a call offered at 08:59 and answered at 09:01 is offered in one
    interval and handled in the next. Reconciling the row keeps the night going (dbt's test
    offered >= handled + abandoned then holds) and says where it happened; CDR-built intervals never need it.
    """
    handled = intervals["handled"].astype("float64").fillna(0.0) if "handled" in intervals else 0.0
    abandoned = intervals["abandoned"].astype("float64").fillna(0.0) if "abandoned" in intervals else 0.0
    reached = handled + abandoned
    over = (intervals["offered"].astype("float64") + 1e-9 < reached).to_numpy()
    if not over.any():
        return intervals, []
    results = []
    rows = intervals[over]
    for queue, group in rows.groupby("queue", sort=True):
        shown = "; ".join(f"{r.interval_start:%Y-%m-%d %H:%M}: offered {r.offered:g}, handled {r.handled:g}, "
                          f"abandoned {r.abandoned:g}" for r in group.head(5).itertuples())
        more = f"; and {len(group) - 5} more" if len(group) > 5 else ""
        results.append(CheckResult(
            "offered_reconciled", WARNING, False,
            f"queue {queue}: {len(group)} interval(s) with handled + abandoned above offered ({shown}{more}); "
            "offered raised to handled + abandoned (calls offered in an earlier interval and answered or "
            "abandoned in this one); if that is not how the export counts, check its Offered column",
            queue=str(queue), value=float(len(group)), threshold=0))
    return intervals.assign(offered=intervals["offered"].astype("float64").where(~over, reached)), results


def _first_row(rows: pd.DataFrame) -> str:
    """The first row of `rows` by its queue and time, as "first: queue Support, 2025-03-10 09:00"."""
    when = "interval_start" if "interval_start" in rows.columns else "date"
    first = rows.sort_values(["queue", when], kind="stable").iloc[0]
    return f"first: queue {first['queue']}, {pd.Timestamp(first[when]):%Y-%m-%d %H:%M}"


def check_recency(newest_contact: datetime | None, last_open_end: datetime | None, max_age_hours: float) -> CheckResult:
    """The newest contact must be close to the end of the last open interval before the run's date."""
    if newest_contact is None:
        return CheckResult("recency", CRITICAL, False, "no contacts loaded at all; run step 0 or check source settings")
    if last_open_end is None:
        return CheckResult("recency", CRITICAL, True, "no open interval in the last 14 days to judge recency against")
    age = max(0.0, (last_open_end - newest_contact).total_seconds() / 3600)
    ok = age <= max_age_hours
    detail = (f"newest contact {newest_contact:%Y-%m-%d %H:%M} is {age:.1f} h before the end of the last open interval "
              f"({last_open_end:%Y-%m-%d %H:%M})")
    if not ok:
        detail += f": more than {max_age_hours} h; did last night's export arrive? (validation.max_data_age_hours)"
    return CheckResult("recency", CRITICAL, ok, detail, value=round(age, 2), threshold=max_age_hours)


def check_volume_range(daily: pd.DataFrame, history_max: pd.Series, max_ratio: float) -> list[CheckResult]:
    """Warn for each queue whose day total exceeds `max_ratio` x its historical daily maximum."""
    results = []
    for queue, group in daily.groupby("queue"):
        hist = history_max.get(queue)
        if hist is None or pd.isna(hist) or hist <= 0:
            continue
        peak = group.loc[group["offered"].idxmax()]
        ratio = float(peak["offered"] / hist)
        ok = ratio <= max_ratio
        detail = (f"highest day {peak['date']:%Y-%m-%d}: {peak['offered']:.0f} offered = {ratio:.1f}x the historical max "
                  f"{hist:.0f}" + ("" if ok else "; check for a duplicated export or a real event"))
        results.append(CheckResult("volume_range", WARNING, ok, detail, queue=str(queue), value=round(ratio, 3),
                                   threshold=max_ratio))
    return results


def check_aht(intervals: pd.DataFrame, low: float, high: float) -> list[CheckResult]:
    """Warn per queue for interval AHT outside [low, high] (the step clips them)."""
    results = []
    has = intervals[intervals["aht_seconds"].notna()]
    for queue, group in has.groupby("queue"):
        out = int(((group["aht_seconds"] < low) | (group["aht_seconds"] > high)).sum())
        detail = f"{out} of {len(group)} intervals with AHT outside [{low:g}, {high:g}] s"
        detail += " (clipped in silver)" if out else ""
        results.append(CheckResult("aht_range", WARNING, out == 0, detail, queue=str(queue), value=out, threshold=0))
    return results


def check_holiday_horizon(closed_dates: pd.DataFrame, country: str | None, as_of: date, horizon_days: int) -> CheckResult:
    """Warn when the holiday calendar does not reach `horizon_days` ahead (forecasts would miss closures)."""
    until = as_of + timedelta(days=horizon_days)
    if not country:
        return CheckResult("holiday_horizon", WARNING, False,
                           "rules.holidays.country is not set: no public holidays are known; forecasts will expect calls on them")
    future = closed_dates[(closed_dates["date"].dt.date > as_of)]
    last = future["date"].max() if not future.empty else None
    ok = last is not None and (until - last.date()).days < 62  # holidays are sparse: no holiday in the last two months of the span is normal
    detail = (f"holiday calendar for {country} known until {last:%Y-%m-%d}" if last is not None
              else f"no holidays known for {country} after {as_of}")
    if not ok:
        detail += f"; it should reach {until} (validation.holiday_horizon_days)"
    return CheckResult("holiday_horizon", WARNING, ok, detail)
