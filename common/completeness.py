"""Completeness: does each busy queue have data in the intervals that normally carry its calls?

An export can lack a day, a queue or a few hours. What *missing* means depends on the queue: a quiet night,
a short Saturday shift or a half-day without calls is normal; a Tuesday morning without a single call in a
busy queue is not. So each queue's day is judged on its own, against the queue's own history:

- The *comparable days* of a queue-day are its 8 nearest open days of the same weekday (earlier ones first,
  later ones only while history is short, as on a first load), or, with fewer than 3 of those, of the
  weekdays with the same opening hours. Closed days and `validation.ignore_dates` are never comparable.
- An open interval *normally carries calls* when calls arrived in it on at least half of its comparable days.
- An interval *has data* when a contact arrived in it (CDR sources), or when the interval report had a row
  for it, even a row of 0 calls (interval sources: `source_rows` of `intervals_from_report`).
- A queue-day is *short* when fewer than `validation.completeness_min_share` of the intervals that normally
  carry its calls have data, and chance cannot explain that many empty ones: from each interval's history
  (the share of comparable days without calls, and its mean calls as a Poisson rate) a complete export
  would leave them empty less than once in a thousand queue-days. So a small queue's empty quiet hour is
  not missing, a busy queue's empty hour is.
- It has *no calls* when it holds at most 5% of its usual calls (the comparable days' mean), just as
  unlikely by chance; an interval report with explicit rows of 0 for a busy day is caught this way.
- A short day whose intervals have data up to a point and are empty after it *stopped early*: a half-day
  (such as a holiday eve) or an export cut short, which data alone cannot tell apart, so only a warning.

- In an interval report a missing row is missing, not 0 calls: on a day judged complete, the intervals that
  normally carry calls and have no report row (where a complete report would not have been empty by chance,
  or where the export writes rows of 0) are one warning per queue, naming the days and the intervals.

A queue quieter than `validation.min_calls_per_open_interval` on average is not judged (as before). Only
days from `halt_from` on (new since the last successful build) can stop the night; earlier ones are listed
once, in one warning.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date

import numpy as np
import pandas as pd

from common.validation import CRITICAL, WARNING, CheckResult

COMPARABLE_DAYS = 8  # the nearest same-weekday open days a queue-day is compared with
MIN_COMPARABLE_DAYS = 3  # fewer than this: compare with weekdays of the same hours; still fewer: not judged
NORMAL_SHARE = 0.5  # an interval normally carries calls when calls came in it on at least this share of them
CHANCE = 0.001  # a shortfall this unlikely in a complete export is missing data
NEAR_ZERO_SHARE = 0.05  # "no calls": at most this share of the usual day's calls
HISTORY_DAYS = 10 * 7  # silver history read around the rebuilt days: 8 same weekdays plus room for closed days
FIRST_LOAD_HALT_DAYS = 7  # on a first load, only the last week before the as-of can stop the night
SHOWN = 10  # queue-days listed in one message


def interval_activity(intervals: pd.DataFrame, ignore_dates: Iterable[date] = ()) -> pd.DataFrame:
    """One row per queue per day per open local time of day: whether it had calls, and data.

    Columns: queue, date, slot (minutes after midnight, local), weekday (0 = Monday), calls (offered +
    outside hours + short abandons), has_calls, has_data (calls, or a report row where `source_rows` is
    known), offered, and q (the queue as a number, for fast grouping). Sorted by queue code, date, slot.
    The repeated hour of a DST fall-back day is merged into one slot; `ignore_dates` and closed intervals
    are left out.
    """
    open_ = intervals.loc[intervals["is_open"].astype(bool)]
    if ignore_dates:
        open_ = open_.loc[~open_["date"].isin(pd.to_datetime(list(ignore_dates)))]

    def col(name: str) -> np.ndarray:
        values = open_[name] if name in open_.columns else pd.Series(np.nan, index=open_.index)
        return values.to_numpy(dtype="float64", na_value=np.nan)

    q, names = pd.factorize(open_["queue"].astype("str"))
    day = _day_numbers(open_["date"])
    slot = ((open_["interval_start"] - open_["date"]) // pd.Timedelta(minutes=1)).to_numpy(dtype="int64")
    offered = np.nan_to_num(col("offered"))
    calls = offered + np.nan_to_num(col("offered_outside_hours")) + np.nan_to_num(col("short_abandoned"))
    has_data = (col("source_rows") > 0) | (calls > 0)
    # One int64 key per (queue, day, slot): sorting and merging on it needs no pandas groupby.
    key = (q.astype("int64") << 42) | ((day + _DAY_OFFSET) << 11) | slot
    order = np.argsort(key, kind="stable")
    key = key[order]
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    rows = order[first]
    day = day[rows]
    return pd.DataFrame({
        "queue": names.take(q[rows]).astype("str"),
        "date": day.astype("datetime64[D]").astype("datetime64[ns]"),
        "slot": slot[rows],
        "weekday": (day + 3) % 7,  # 1970-01-01 was a Thursday
        "calls": np.add.reduceat(calls[order], first) if len(first) else calls,
        "has_data": np.logical_or.reduceat(has_data[order], first) if len(first) else has_data,
        "offered": np.add.reduceat(offered[order], first) if len(first) else offered,
        "q": q[rows].astype("int64"),
    }).assign(has_calls=lambda f: f["calls"] > 0)


_DAY_OFFSET = 1 << 20  # day numbers since 1970 made positive for the packed key


def _day_numbers(dates: pd.Series) -> np.ndarray:
    return dates.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype("int64")


def _queue_codes(frame: pd.DataFrame) -> np.ndarray:
    return frame["q"].to_numpy(dtype="int64") if "q" in frame.columns else pd.factorize(frame["queue"])[0]


def _nearest_sums(group: np.ndarray, day: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: over the COMPARABLE_DAYS nearest other rows of its `group` (earlier days first, then later
    ones while fewer exist), how many there are and the sum of each column of `values` (rows x columns).

    Rows are one per group per day. Cumulative sums over the rows sorted by group and day give every
    window's sum without a loop: each window lies inside its group's run of rows.
    """
    order = np.lexsort((day, group))
    g = group[order]
    new = np.r_[True, g[1:] != g[:-1]]
    starts = np.flatnonzero(new)
    which = np.cumsum(new) - 1
    pos = np.arange(len(g)) - starts[which]
    size = np.diff(np.r_[starts, len(g)])[which]
    before = np.minimum(pos, COMPARABLE_DAYS)
    after = np.minimum(COMPARABLE_DAYS - before, size - 1 - pos)
    r = np.arange(len(g))
    c = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values[order], axis=0)])
    sums = (c[r] - c[r - before]) + (c[r + 1 + after] - c[r + 1])
    n_out, sums_out = np.empty(len(g), dtype="int64"), np.empty_like(sums)
    n_out[order], sums_out[order] = before + after, sums
    return n_out, sums_out


def usual_profile(activity: pd.DataFrame) -> pd.DataFrame:
    """`activity` with what its comparable days say about each row (see the module docstring).

    Adds n_comparable, share_with_calls (of the comparable days, those with calls in the slot),
    mean_calls, normal (the slot normally carries calls) and chance_empty (how likely a complete export
    leaves it empty: the larger of the share without calls and exp(-mean calls)).
    """
    if activity.empty:
        return activity.assign(n_comparable=0, share_with_calls=np.nan, mean_calls=np.nan, normal=False,
                               chance_empty=np.nan)
    q, day = _queue_codes(activity), _day_numbers(activity["date"])
    slot = activity["slot"].to_numpy(dtype="int64")
    by_queue_day = pd.Series(slot).groupby((q << 32) | (day + _DAY_OFFSET))
    # The day's opening hours (first and last open slot) as one number: days with the same hours compare.
    hours = by_queue_day.transform("min").to_numpy() * 1440 + by_queue_day.transform("max").to_numpy()
    values = np.column_stack([activity["has_calls"].to_numpy(dtype="float64"),
                              activity["calls"].to_numpy(dtype="float64")])
    weekday = activity["weekday"].to_numpy(dtype="int64")
    n_day, same_day = _nearest_sums((q << 32) | (weekday << 11) | slot, day, values)
    n_hours, same_hours = _nearest_sums((q << 42) | (hours << 11) | slot, day, values)
    by_day = n_day >= MIN_COMPARABLE_DAYS
    n = np.where(by_day, n_day, n_hours)
    with_calls, calls = np.where(by_day[:, None], same_day, same_hours).T
    enough = n >= MIN_COMPARABLE_DAYS
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(enough, with_calls / n, np.nan)
        mean = np.where(enough, calls / n, np.nan)
    normal = enough & (share >= NORMAL_SHARE)
    return activity.assign(n_comparable=n, share_with_calls=share, mean_calls=mean, normal=normal,
                           chance_empty=np.where(normal, np.maximum(1 - share, np.exp(-np.nan_to_num(mean))), 0.0))


_lgamma = np.frompyfunc(math.lgamma, 1, 1)


def _log_pmf(k: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """log P(X = k) for X ~ Poisson(mu), mu > 0."""
    return -mu + k * np.log(mu) - _lgamma(k + 1).astype("float64")


def chance_at_least(m: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """An upper bound of P(X >= m), X ~ Poisson(mu): the chance of `m` empty intervals when `mu` are expected.

    P(X = m) (m + 1) / (m + 1 - mu) bounds the tail past the mode (a geometric series); 1 below the mode.
    """
    m, mu = np.asarray(m, dtype="float64"), np.asarray(mu, dtype="float64")
    safe = np.maximum(mu, 1e-300)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tail = np.exp(_log_pmf(m, safe)) * (m + 1) / (m + 1 - safe)
    return np.where(m <= 0, 1.0, np.where(mu <= 0, 0.0, np.where(m + 1 > mu, np.minimum(tail, 1.0), 1.0)))


def chance_at_most(c: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """An upper bound of P(X <= c), X ~ Poisson(mu): the chance of only `c` calls when `mu` are usual.

    Below the mean each term is at most c / mu of the next, so P(X = c) mu / (mu - c) bounds the sum; 1 above.
    """
    c, mu = np.floor(np.asarray(c, dtype="float64")), np.asarray(mu, dtype="float64")
    safe = np.maximum(mu, 1e-300)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        bound = np.exp(_log_pmf(c, safe)) * safe / (safe - c)
    return np.where((mu > 0) & (c < mu), np.minimum(bound, 1.0), 1.0)


def judge_days(profiled: pd.DataFrame, min_share: float) -> pd.DataFrame:
    """One row per queue-day of `profiled` (usual_profile output): is it complete, and if not, how not.

    Columns: queue, date, normal (intervals that normally carry calls), covered (of them, with data),
    share, calls, usual (mean calls of the comparable days), last_data (the last slot with data, -1 when
    none) and verdict: ok | not_judged (no interval normally carries calls) | no_calls | short |
    stopped_early.
    """
    normal, has_data = profiled["normal"].to_numpy(dtype=bool), profiled["has_data"].to_numpy(dtype=bool)
    slot = profiled["slot"].to_numpy(dtype="int64")
    mu = np.where(normal, profiled["chance_empty"].to_numpy(dtype="float64"), 0.0)
    data_slot = np.where(has_data, slot, -1)
    key = (_queue_codes(profiled) << 32) | (_day_numbers(profiled["date"]) + _DAY_OFFSET)  # one per queue-day
    last = pd.Series(data_slot).groupby(key).transform("max").to_numpy()
    before = slot < last
    f = pd.DataFrame({
        "normal": normal.astype("int64"), "covered": (normal & has_data).astype("int64"), "mu": mu,
        "calls": profiled["calls"].to_numpy(dtype="float64"),
        "usual": np.nan_to_num(profiled["mean_calls"].to_numpy(dtype="float64")), "last_data": data_slot,
        "miss_before": (normal & ~has_data & before).astype("int64"), "mu_before": np.where(before, mu, 0.0),
    })
    grouped = f.groupby(key, sort=True)
    days = grouped.sum().assign(last_data=grouped["last_data"].max())
    firsts = pd.Series(np.arange(len(key))).groupby(key, sort=True).first().to_numpy()
    days = days.reset_index(drop=True).assign(queue=profiled["queue"].to_numpy()[firsts],
                                              date=profiled["date"].to_numpy()[firsts])
    misses = (days["normal"] - days["covered"]).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(days["normal"] > 0, days["covered"] / days["normal"].where(days["normal"] > 0), np.nan)
    on = min_share > 0
    short = on & (days["normal"] > 0).to_numpy() & (share < min_share) \
        & (chance_at_least(misses, days["mu"].to_numpy()) < CHANCE)
    no_calls = on & (days["calls"] <= NEAR_ZERO_SHARE * days["usual"]).to_numpy() \
        & (chance_at_most(days["calls"].to_numpy(), days["usual"].to_numpy()) < CHANCE)
    # Data up to a point, then nothing: the empty intervals before that point are no more than chance.
    stopped = short & (days["covered"] >= 2).to_numpy() & (days["miss_before"] < misses) \
        & (chance_at_least(days["miss_before"].to_numpy(), days["mu_before"].to_numpy()) >= CHANCE)
    verdict = np.select([no_calls, stopped, short, days["normal"].to_numpy() == 0],
                        ["no_calls", "stopped_early", "short", "not_judged"], "ok")
    return days.assign(share=share, verdict=verdict)[
        ["queue", "date", "normal", "covered", "share", "calls", "usual", "last_data", "verdict"]]


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _gaps(profiled: pd.DataFrame, queue: str, day: pd.Timestamp, step: int) -> str:
    """The runs of a queue-day's normally busy intervals without data, e.g. "09:00-11:30, 14:00-15:00"."""
    rows = profiled[(profiled["queue"] == queue) & (profiled["date"] == day) & profiled["normal"]]
    return _runs(rows.loc[~rows["has_data"], "slot"].sort_values().tolist(), step)


def _runs(empty: list[int], step: int) -> str:
    """Sorted slots as runs of consecutive intervals, e.g. "09:00-11:30, 14:00-15:00" (three at most)."""
    runs: list[list[int]] = []
    for slot in empty:
        if runs and slot - runs[-1][1] == step:
            runs[-1][1] = slot
        else:
            runs.append([slot, slot])
    shown = ", ".join(f"{_clock(a)}-{_clock(b + step)}" for a, b in runs[:3])
    return shown + (" and more" if len(runs) > 3 else "")


def _describe(day: pd.Series, profiled: pd.DataFrame, step: int, holiday_after: dict) -> str:
    when = f"{day['date']:%a %Y-%m-%d}"
    if day["verdict"] == "no_calls":
        got = "no calls" if day["calls"] == 0 else f"only {day['calls']:.0f} calls"
        return f"{when} {got} (usually about {day['usual']:.0f})"
    if day["verdict"] == "stopped_early":
        eve = holiday_after.get(day["date"] + pd.Timedelta(days=1))
        return f"{when} after {_clock(int(day['last_data']) + step)}" + (f" (the day before {eve})" if eve else "")
    return (f"{when} data in {day['covered']} of the {day['normal']} intervals that normally carry calls "
            f"(none {_gaps(profiled, day['queue'], day['date'], step)})")


def _listing(days: pd.DataFrame, profiled: pd.DataFrame, step: int, holiday_after: dict) -> str:
    shown = "; ".join(f"{d['queue']} {_describe(d, profiled, step, holiday_after)}"
                      for _, d in days.head(SHOWN).iterrows())
    return shown + (f"; and {len(days) - SHOWN} more" if len(days) > SHOWN else "")


def report_gaps(profiled: pd.DataFrame, days: pd.DataFrame) -> pd.DataFrame:
    """The rows of `profiled` (interval-report data) that are a missing report row on a day judged complete.

    A gap: an interval that normally carries calls, without a report row, where a complete report would
    not have been empty by chance (its chance_empty below CHANCE), or on a day whose report has explicit
    rows of 0 calls (that export writes a row for every interval, so one without a row is missing).
    """
    key = (_queue_codes(profiled) << 32) | (_day_numbers(profiled["date"]) + _DAY_OFFSET)
    zero_rows = pd.Series(profiled["has_data"].to_numpy() & ~profiled["has_calls"].to_numpy()).groupby(key)
    writes_zeros = zero_rows.transform("any").to_numpy(dtype=bool)
    ok = pd.MultiIndex.from_frame(days.loc[days["verdict"] == "ok", ["queue", "date"]])
    on_ok_day = pd.MultiIndex.from_frame(profiled[["queue", "date"]]).isin(ok)
    gap = (profiled["normal"].to_numpy(dtype=bool) & ~profiled["has_data"].to_numpy(dtype=bool) & on_ok_day
           & ((profiled["chance_empty"].to_numpy(dtype="float64") < CHANCE) | writes_zeros))
    return profiled.loc[gap]


def _gap_results(gaps: pd.DataFrame, step: int) -> list[CheckResult]:
    results = []
    for queue, group in gaps.groupby("queue", sort=True):
        per_day = [f"{day:%a %Y-%m-%d} {_runs(sorted(rows['slot'].tolist()), step)}"
                   for day, rows in group.groupby("date", sort=True)]
        shown = "; ".join(per_day[:SHOWN]) + (f"; and {len(per_day) - SHOWN} more days" if len(per_day) > SHOWN else "")
        results.append(CheckResult(
            "completeness", WARNING, False,
            f"queue {queue}: the interval report has no row for {len(group)} interval(s) that normally carry calls: "
            f"{shown}. Silver counts 0 calls there, but in an interval report a missing row is missing data: load "
            "the export for those days again (a complete report has a row for every interval, 0 where no calls came)",
            queue=str(queue), value=float(len(group)), threshold=0))
    return results


def check_completeness(intervals: pd.DataFrame, min_share: float, min_calls_per_interval: float,
                       ignore_dates: Iterable[date] = (), *, history: pd.DataFrame | None = None,
                       halt_from: date | None = None, closed_dates: pd.DataFrame | None = None) -> list[CheckResult]:
    """Judge each busy queue's days in `intervals` (the rebuilt days) on its usual intervals.

    `history`: silver_interval rows of other days (comparable days only, never judged). `halt_from`: days
    from this date on can stop the step (critical, one result per queue naming its days); earlier ones are
    listed in one warning. None: every day can. `closed_dates` (holiday_calendar) names holiday eves.
    Half-days are one warning whatever their date. Without a failure, one passed result sums up.
    """
    if min_share <= 0:
        return [CheckResult("completeness", CRITICAL, True,
                            "validation.completeness_min_share is 0: completeness is not judged")]
    judged_dates = set(pd.to_datetime(intervals["date"]).unique())
    frames = [intervals] if history is None or history.empty else \
        [history.loc[~pd.to_datetime(history["date"]).isin(judged_dates)], intervals]
    activity = interval_activity(pd.concat(frames, ignore_index=True) if len(frames) > 1 else intervals, ignore_dates)
    if activity.empty:
        return [CheckResult("completeness", CRITICAL, True, "no open intervals to judge")]
    busy = activity.groupby("q")["offered"].mean()
    busy = busy[busy >= min_calls_per_interval].index
    activity = activity.loc[activity["q"].isin(busy)].reset_index(drop=True)
    if activity.empty:
        return [CheckResult("completeness", CRITICAL, True,
                            f"no queue busy enough to judge (>= {min_calls_per_interval} per open interval, "
                            "validation.min_calls_per_open_interval)")]
    profiled = usual_profile(activity)
    profiled = profiled.loc[profiled["date"].isin(judged_dates)].reset_index(drop=True)
    days = judge_days(profiled, min_share)
    slots = np.unique(profiled["slot"].to_numpy())
    step = int(np.gcd.reduce(np.append(slots, 1440)))
    holiday_after = {} if closed_dates is None or closed_dates.empty else \
        dict(zip(pd.to_datetime(closed_dates["date"]), closed_dates["holiday_name"]))
    can_halt = days["date"] >= pd.Timestamp(halt_from) if halt_from is not None else pd.Series(True, index=days.index)
    missing = days["verdict"].isin(["no_calls", "short"])
    results = []
    for queue, group in days[missing & can_halt].groupby("queue", sort=True):
        dates = ", ".join(f"{d:%Y-%m-%d}" for d in group["date"])
        plural = "s" if len(group) > 1 else ""
        results.append(CheckResult(
            "completeness", CRITICAL, False,
            f"queue {queue}: {'; '.join(_describe(d, profiled, step, holiday_after) for _, d in group.iterrows())}. "
            f"Load the export for queue {queue} on {dates}, or list the date{plural} in validation.ignore_dates "
            "if the queue was really down",
            queue=str(queue), value=float(np.nan_to_num(group["share"].min())), threshold=min_share))
    past = days[missing & ~can_halt]
    if len(past):
        results.append(CheckResult(
            "completeness", WARNING, False,
            f"{len(past)} earlier queue-days look incomplete; they are from before {halt_from} (built by an earlier "
            f"run, or older history of a first load), so they do not stop the night: "
            f"{_listing(past, profiled, step, holiday_after)}. Load those exports again, or list the dates in "
            "validation.ignore_dates if the queues were really down",
            value=float(np.nan_to_num(past["share"].min())), threshold=min_share))
    early = days[days["verdict"] == "stopped_early"]
    if len(early):
        results.append(CheckResult(
            "completeness", WARNING, False,
            f"calls stopped early on {len(early)} queue-day{'s' if len(early) > 1 else ''}, a half-day (such as a "
            f"holiday eve) or an export cut short: {_listing(early, profiled, step, holiday_after)}. If an export "
            "was cut short, load it again; a half-day needs nothing",
            value=float(early["share"].min()), threshold=min_share))
    if "source_rows" in intervals.columns:  # interval reports: a missing row is not 0 calls
        results += _gap_results(report_gaps(profiled, days), step)
    if any(r.severity == CRITICAL for r in results):
        return results
    judged = days[days["verdict"] != "not_judged"]
    if judged.empty:
        summary = f"{len(days)} queue-days, none with intervals that normally carry calls yet (too little history)"
        return [CheckResult("completeness", CRITICAL, True, summary), *results]
    low = judged.loc[judged["share"].idxmin()]
    summary = (f"{len(judged)} queue-days judged on the intervals that normally carry their calls; lowest share with "
               f"data {low['share']:.0%} ({low['queue']} {low['date']:%Y-%m-%d})"
               + (f"; {len(days) - len(judged)} not judged (too little history)" if len(judged) < len(days) else ""))
    return [CheckResult("completeness", CRITICAL, True, summary, value=float(low["share"]), threshold=min_share),
            *results]
