"""silver_daily from a WFM tool's daily totals (`bronze_daily`): the queue-days the detailed source does not cover.

A daily total says how many calls a day had, never when in the day. So where intervals or CDRs exist they win (they
are more detailed): a queue's days from its first interval/CDR day on are built from those by the usual path; its
older days, and every day of a queue only the daily export knows, come from the daily rows. Those rows carry
`source_kind = 'daily'` in silver_daily and have no silver_interval rows. Opening hours and the holiday calendar say
which days are open, as on the interval path: a closed day's calls are `offered_outside_hours`, and an open day
the export lacks is stored as 0 calls and named by the `daily_completeness` check (as an interval report's missing
row is). Pure functions here; `silver_build` does the reading and writing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import numpy as np
import pandas as pd

from common.cdr import DAILY_COLUMNS, _holiday_names
from common.opening_hours import OpeningHours
from common.validation import WARNING, CheckResult

SOURCE_KIND = "daily"  # silver_daily.source_kind of the rows built here
_SHOWN_DAYS = 5


def newest_daily_rows(rows: pd.DataFrame, aliases: dict[str, str]) -> pd.DataFrame:
    """One row per queue per date of bronze_daily rows: the newest load's (a restated day wins; within a load, the
    last row). Old queue names are renamed (`rules.queue_aliases`) and the days two names then share are summed
    (unknown if a part is unknown; aht weighted by handled)."""
    cols = ["queue", "date", "offered", "handled", "abandoned", "aht_seconds"]
    if rows.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols}).astype({"queue": "str",
                                                                                   "date": "datetime64[ns]"})
    order = rows.sort_values(["queue", "date", "load_id", "source_row"], kind="stable")
    newest = order[~order.duplicated(["queue", "date"], keep="last")]
    renamed = newest.assign(queue=newest["queue"].replace(aliases).astype("str"),
                            date=pd.to_datetime(newest["date"]).astype("datetime64[ns]"))[cols]
    if not renamed.duplicated(["queue", "date"]).any():
        return renamed.reset_index(drop=True)
    groups = [renamed["queue"], renamed["date"]]
    weight = renamed["handled"].fillna(renamed["offered"])
    known = renamed["aht_seconds"].notna() & (weight > 0)
    out = pd.DataFrame({c: renamed[c].groupby(groups, sort=True).sum(min_count=1) if c == "offered" else
                        renamed[c].groupby(groups, sort=True).sum(skipna=False) for c in ("offered", "handled",
                                                                                          "abandoned")})
    num = (renamed["aht_seconds"] * weight).where(known, 0.0).groupby(groups, sort=True).sum()
    den = weight.where(known, 0.0).groupby(groups, sort=True).sum()
    out["aht_seconds"] = (num / den).where(den > 0)
    return out.reset_index(names=["queue", "date"])[cols]


def daily_from_history(rows: pd.DataFrame, hours: OpeningHours, closed_dates: pd.DataFrame | None,
                       detailed_from: dict[str, date], last_day: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """silver_daily rows from `newest_daily_rows` output, and the open days the export lacks.

    One row per queue per date (closed days too) from the queue's first daily date to `last_day` (the day before the
    as-of), stopping the day before the queue's first day in `detailed_from` (intervals/CDRs), and before the first
    open day after the queue's last row (not exported yet: unknown, not 0). Columns: DAILY_COLUMNS plus source_kind ('daily'). Missing days: (queue, date) of open days
    with no row, stored as 0 calls.
    """
    frames = []
    closed = set(pd.to_datetime(closed_dates["date"]).dt.normalize()) if closed_dates is not None and len(
        closed_dates) else set()
    for queue, group in rows.groupby("queue", sort=True):
        end = pd.Timestamp(last_day)
        if queue in detailed_from:
            end = min(end, pd.Timestamp(detailed_from[queue]) - pd.Timedelta(days=1))
        start = group["date"].min()
        if start > end:
            continue
        days = pd.DataFrame({"queue": str(queue), "date": pd.date_range(start, end, freq="D")})
        days = days.merge(group, on=["queue", "date"], how="left", indicator=True)
        # After the queue's last row only the closed days are known (0 calls); an open day not exported yet is
        # left out, so step 3's recency check sees it is missing instead of reading it as a day without calls.
        after = days["date"] > group["date"].max()
        open_after = after & np.array([hours.window(str(queue), d.day_of_week) is not None and d not in closed
                                       for d in days["date"]], dtype=bool)
        if open_after.any():
            days = days.loc[days["date"] < days.loc[open_after, "date"].min()]
        frames.append(days)
    if not frames:
        empty = pd.DataFrame({c: [] for c in [*DAILY_COLUMNS, "source_kind"]})
        return empty, pd.DataFrame({"queue": [], "date": []})
    days = pd.concat(frames, ignore_index=True)
    weekday = days["date"].dt.day_of_week.to_numpy()
    is_open = np.array([hours.window(q, int(w)) is not None for q, w in zip(days["queue"], weekday)], dtype=bool) \
        & ~days["date"].isin(closed).to_numpy()
    reported = (days["_merge"] == "both").to_numpy()
    offered = days["offered"].fillna(0.0).to_numpy(dtype="float64")
    no_calls = offered == 0
    # As on the interval path: a blank next to 0 calls is 0; a closed day's calls are outside hours, not demand.
    handled = days["handled"].astype("float64").mask(no_calls & days["handled"].isna(), 0.0).to_numpy()
    abandoned = days["abandoned"].astype("float64").mask(no_calls & days["abandoned"].isna(), 0.0).to_numpy()
    counted = is_open & reported
    names = _holiday_names(days["date"], closed_dates)
    out = pd.DataFrame({
        "queue": days["queue"].astype("str"),
        "date": days["date"],
        "offered": np.where(is_open, offered, 0.0),
        "handled": np.where(counted, handled, 0.0),
        "abandoned": np.where(counted, abandoned, 0.0),
        "short_abandoned": np.nan,
        "offered_outside_hours": np.where(is_open, 0.0, offered),
        "aht_seconds": np.where(counted, days["aht_seconds"].astype("float64").to_numpy(), np.nan),
        "is_open": is_open,
        "is_holiday": names.notna().to_numpy(),
        "holiday_name": names.to_numpy(),
        "source_kind": SOURCE_KIND,
    })
    missing = days.loc[is_open & ~reported, ["queue", "date"]].reset_index(drop=True)
    return out, missing


def check_daily_completeness(daily: pd.DataFrame, missing: pd.DataFrame,
                             ignore_dates: Iterable[date] = ()) -> list[CheckResult]:
    """Per queue built from daily totals: a warning naming the open days the export has no row for (stored as 0);
    `validation.ignore_dates` (known outages) are not named."""
    missing = missing[~missing["date"].isin(pd.to_datetime(list(ignore_dates)))]
    results = []
    for queue in sorted(daily["queue"].unique()):
        gaps = missing.loc[missing["queue"] == queue, "date"].sort_values()
        open_days = int(daily.loc[daily["queue"] == queue, "is_open"].sum())
        shown = ", ".join(f"{d:%Y-%m-%d}" for d in gaps.iloc[-_SHOWN_DAYS:])
        more = f" and {len(gaps) - _SHOWN_DAYS} earlier" if len(gaps) > _SHOWN_DAYS else ""
        detail = (f"{open_days} open days from the daily export, none missing" if gaps.empty else
                  f"{len(gaps)} of {open_days} open days have no row in the daily export ({shown}{more}); they are "
                  "stored as 0 calls: re-export those days, or list them under validation.ignore_dates / "
                  "rules.holidays.extra_closed_dates if the queue was closed")
        results.append(CheckResult("daily_completeness", WARNING, gaps.empty, detail, queue=str(queue),
                                   value=float(len(gaps)), threshold=0.0))
    return results
