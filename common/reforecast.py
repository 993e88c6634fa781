"""Intraday reforecast math: today's remaining intervals from the intervals observed so far (pure functions).

The nightly forecast of a queue's day is N (its p50) spread over the day's intervals by shares s_i (the profile step
3 split it by: gold_forecast_interval p50 / day p50). At time t the intervals that have ended are observed: A calls
against a share S = sum of their s_i. The plain projection (the practitioners' "actuals so far / share normally in
by now") says the day runs at A / S; it is trusted by w = S / (S + k) and the rest of the day is

    rest = (1 - S) x (w x R + (1 - w) x N)        R = A / S: the plain projection (= N (1 - S) (1 + w (A/(SN) - 1)))

spread over the remaining intervals by s_i / (1 - S). Ours differs from that plain projection in two measured ways
(bench/bench_reforecast.py): the run rate R weighs the observed intervals by 0.5 ** (hours since they ended /
half-life), R = sum(v a_i) / sum(v s_i), because the afternoon follows the late morning more than the early morning
(half-life infinite = the plain ratio); and the half-life and k are calibrated per queue on a replay of recent
days (the pair of `HALF_LIVES` x `K_GRID` with the smallest rest-of-day error), so a queue whose mornings say a lot
about its afternoons trusts them sooner, and a noisy one later. With too few replayed days a queue gets the pair of
all queues pooled (with too few dates even for that, the plain projection); a pair that does not cut the replay's
error by MIN_GAIN against the plain projection (k = `intraday.trust_k`, every interval the same) is noise, and the
plain projection stays.

Decisions:
- The interval in progress is not observed (its count is partial): it is forecast like the others, and its
  published value is what came in so far plus the forecast x the part of it still to come.
- A queue with no call yet where fewer than MIN_EXPECTED_CALLS were expected keeps the nightly forecast (w = 0);
  a long silence against a large expected count does lower it, as it should.
- p10/p90 of the rest are rest x the conformal 10%/90% quantiles (the floor((n+1) 0.1)-th and ceil((n+1) 0.9)-th
  of n) of (actual rest / projected rest) on the replayed days at a similar share of the day seen (within
  `BAND_WIDTH`; the queue's own points, else all queues'). Those ratios are out of sample, because the in-sample
  band covered 58-74% where 80% is promised (bench/bench_reforecast.py): each replayed day is split by its own
  week's profile, not today's (which has seen it), and each replayed week is projected with the pair chosen on the
  other weeks (the pair chosen on all of them fits them better than it fits today). They narrow as
  the day is seen because the replay's errors do. Not clamped to the nightly band: a nightly band too narrow for
  the day's real spread would make this one too narrow too. Without enough replayed points: the nightly ratios
  narrowed by sqrt(1 - w).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

K_GRID = (0.02, 0.05, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 2.0, 5.0)
HALF_LIVES = (0.5, 1.0, 2.0, 4.0, float("inf"))  # hours; inf: every observed interval counts the same
BAND_WIDTH = 0.1        # replayed points within +-this share of the day seen set the band at S
MIN_BAND_POINTS = 20    # fewer: the nightly band, narrowed
MIN_CALIBRATION_DAYS = 20  # fewer replayed days: a queue gets the pooled pair of all queues; fewer dates: plain
MIN_EXPECTED_CALLS = 5  # no call yet against fewer expected: the nightly forecast stays
MIN_GAIN = 0.02         # a calibrated pair must cut the replay's error by this share vs the plain projection


def trust(share: np.ndarray | float, k: np.ndarray | float) -> np.ndarray:
    """w = S / (S + k): how much of the day's projection comes from what was observed (0 at S = 0)."""
    s = np.asarray(share, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s + k > 0, s / (s + k), 0.0)


def recency_weights(age_hours: np.ndarray, half_life: float) -> np.ndarray:
    """0.5 ** (age / half-life) per observed interval (age: hours from its end to the reforecast); inf: all 1."""
    age = np.asarray(age_hours, dtype=float)
    return np.ones_like(age) if np.isinf(half_life) else 0.5 ** (age / half_life)


def project_rest(observed: np.ndarray | float, share: np.ndarray | float, nightly: np.ndarray | float,
                 k: np.ndarray | float, weighted_observed: np.ndarray | float | None = None,
                 weighted_share: np.ndarray | float | None = None) -> np.ndarray:
    """The expected volume of the rest of the day (intervals not yet observed): see the module doc. Without the
    recency-weighted sums, the run rate is A / S (the plain projection)."""
    a, s, n = (np.asarray(x, dtype=float) for x in (observed, share, nightly))
    wa = a if weighted_observed is None else np.asarray(weighted_observed, dtype=float)
    ws = s if weighted_share is None else np.asarray(weighted_share, dtype=float)
    # no call yet where a handful at most was expected says nothing: the nightly forecast stays
    w = np.where((a <= 0) & (n * s < MIN_EXPECTED_CALLS), 0.0, trust(s, k))
    with np.errstate(divide="ignore", invalid="ignore"):
        run_rate = np.where(ws > 0, wa / ws, n)
    return np.clip(1.0 - s, 0.0, None) * (w * run_rate + (1.0 - w) * n)


def plain_projection(observed: np.ndarray | float, share: np.ndarray | float, nightly: np.ndarray | float,
                     k: float = 0.15) -> np.ndarray:
    """The issue's benchmark: nightly rest x (actual so far / expected so far), trusted by S / (S + 0.15)."""
    return project_rest(observed, share, nightly, k)


@dataclass(frozen=True)
class Calibration:
    """What a replay of recent days taught: (half-life, k) per queue, and the band's ratios by share of day seen."""

    params: dict[str, tuple[float, float]]  # queue: (half-life in hours, k)
    points: pd.DataFrame     # queue, share, ratio (actual rest / projected rest, out of sample): the band
    default: tuple[float, float]
    # the same with the pair chosen on them and today's shares (the band before 2026-12; the bench's before/after)
    in_sample: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["queue", "share", "ratio"]))

    def for_queue(self, queue: str) -> tuple[float, float]:
        return self.params.get(queue, self.default)

    def k_for(self, queue: str) -> float:
        return self.for_queue(queue)[1]


def _h(i: int) -> tuple[str, str]:
    return f"observed_h{i}", f"share_h{i}"


def replay_points(actual: pd.DataFrame, shares: pd.DataFrame, nightly: pd.DataFrame, checkpoints: list[int],
                  interval_minutes: int) -> pd.DataFrame:
    """Each past day replayed at each checkpoint: what a reforecast would have seen and what came after.

    `actual`: queue, date, minute (local minutes since midnight of the interval start), offered; complete days.
    `shares`: queue, weekday, minute, share (the profile). `nightly`: queue, date, p50 (the day's forecast).
    Grain: one row per queue per date per checkpoint (minutes since midnight) with an open interval after it:
    queue, date, checkpoint, share (S), observed (A), nightly (N), rest_actual, and per half-life i of
    HALF_LIVES the recency-weighted sums observed_h{i}, share_h{i}.
    """
    columns = ["queue", "date", "checkpoint", "share", "observed", "nightly", "rest_actual",
               *[c for i in range(len(HALF_LIVES)) for c in _h(i)]]
    a = actual.loc[:, ["queue", "date", "minute", "offered"]].astype({"queue": "str"})
    a = a.assign(weekday=a["date"].dt.day_of_week.astype("int64"))
    a = a.merge(shares.loc[:, ["queue", "weekday", "minute", "share"]].astype({"queue": "str"}),
                on=["queue", "weekday", "minute"], how="inner")
    a = a.merge(nightly.loc[:, ["queue", "date", "p50"]].astype({"queue": "str"}), on=["queue", "date"], how="inner")
    if a.empty:
        return pd.DataFrame(columns=columns)
    ends = a["minute"].to_numpy() + interval_minutes
    share, offered = a["share"].to_numpy(dtype=float), a["offered"].to_numpy(dtype=float)
    parts = []
    for t in checkpoints:
        done = ends <= t
        sums = {"share": np.where(done, share, 0.0), "observed": np.where(done, offered, 0.0),
                "rest_actual": np.where(done, 0.0, offered), "_open": (~done).astype(float)}
        age = np.maximum(t - ends, 0) / 60.0
        for i, half_life in enumerate(HALF_LIVES):
            v = recency_weights(age, half_life)
            o, sh = _h(i)
            sums[o], sums[sh] = sums["observed"] * v, sums["share"] * v
        g = a.loc[:, ["queue", "date", "p50"]].assign(**sums)
        per = g.groupby(["queue", "date"], as_index=False).agg(nightly=("p50", "first"), **{
            c: (c, "sum") for c in sums})
        parts.append(per.assign(checkpoint=t).loc[lambda d: d["_open"] > 0])
    return pd.concat(parts, ignore_index=True).loc[:, columns].reset_index(drop=True)


def _choose(queues: np.ndarray, dates: np.ndarray, errors: np.ndarray, plain: int) -> tuple[dict[str, int], int]:
    """(index of the pair per queue, pooled index) minimising the absolute rest-of-day error `errors` (points x
    pairs): a queue with fewer than MIN_CALIBRATION_DAYS days gets the pooled pair; with fewer dates in all, or a
    best pair not beating the plain one by MIN_GAIN, the plain one (noise)."""
    if len(errors) == 0:
        return {}, plain
    per_queue = pd.DataFrame(errors).assign(queue=queues).groupby("queue").sum()
    days = pd.DataFrame({"queue": queues, "date": dates}).groupby("queue")["date"].nunique()

    def best(e: np.ndarray) -> int:
        i = int(np.argmin(e))
        return i if e[i] < (1.0 - MIN_GAIN) * e[plain] else plain

    pooled = best(per_queue.sum(axis=0).to_numpy()) if len(np.unique(dates)) >= MIN_CALIBRATION_DAYS else plain
    return {str(q): (best(row.to_numpy()) if days.get(q, 0) >= MIN_CALIBRATION_DAYS else pooled)
            for q, row in per_queue.iterrows()}, pooled


def _ratio(actual: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return np.divide(actual, pred, out=np.full(len(actual), np.nan), where=pred > 0)


def _predictions(points: pd.DataFrame, pairs: list[tuple[int, float]]) -> np.ndarray:
    """The rest of the day each pair projects at each point (points x pairs)."""
    a, s, n = (points[c].to_numpy(dtype=float) for c in ("observed", "share", "nightly"))
    return np.stack([project_rest(a, s, n, k, *(points[c].to_numpy(dtype=float) for c in _h(i))) for i, k in pairs],
                    axis=1)


def calibrate(points: pd.DataFrame, default_k: float, band_points: pd.DataFrame | None = None) -> Calibration:
    """(half-life, k) per queue minimising the replay's absolute rest-of-day error over HALF_LIVES x K_GRID (a
    queue with fewer than MIN_CALIBRATION_DAYS days gets the pair of all queues pooled; no points at all: the plain
    projection with `default_k`), and the ratio points of the band, out of sample: each replayed week of
    `band_points` (default `points`; replay_points of the same days with shares that knew nothing of them) projected
    with the pair `points` of the other weeks choose. `in_sample`: the ratios of `points` with the pair chosen on
    all of them (the band before 2026-12, for the bench's before/after)."""
    empty = pd.DataFrame(columns=["queue", "share", "ratio"])
    if points.empty:
        return Calibration({}, empty, (float("inf"), default_k), empty)
    bp = points if band_points is None else band_points
    pairs = [(i, k) for i in range(len(HALF_LIVES)) for k in K_GRID]
    preds = _predictions(points, pairs)
    r = points["rest_actual"].to_numpy(dtype=float)
    errors = np.abs(preds - r[:, None])
    queues = points["queue"].astype("str").to_numpy()
    dates = pd.to_datetime(points["date"]).to_numpy()
    plain = pairs.index((len(HALF_LIVES) - 1, min(K_GRID, key=lambda k: abs(k - default_k))))
    chosen, pooled = _choose(queues, dates, errors, plain)
    in_sample = pd.DataFrame({"queue": queues, "share": points["share"].to_numpy(dtype=float), "ratio": _ratio(
        r, preds[np.arange(len(r)), pd.Series(queues).map(chosen).to_numpy(dtype=int)])})
    # the pair was chosen to fit these very days: their ratios are too tight for a day it has not seen. Each week's
    # points are projected with the pair the other weeks choose (a week: 7 days back from the newest replayed day)
    b_preds = preds if band_points is None else _predictions(bp, pairs)
    b_queues = bp["queue"].astype("str").to_numpy()
    b_week = (dates.max() - pd.to_datetime(bp["date"]).to_numpy()) // np.timedelta64(7, "D")
    week = (dates.max() - dates) // np.timedelta64(7, "D")
    pred_oos = np.full(len(bp), np.nan)
    for w in np.unique(b_week):
        c, p = _choose(queues[week != w], dates[week != w], errors[week != w], plain)
        fold = np.flatnonzero(b_week == w)
        pred_oos[fold] = b_preds[fold, [c.get(q, p) for q in b_queues[fold]]]
    band = pd.DataFrame({"queue": b_queues, "share": bp["share"].to_numpy(dtype=float),
                         "ratio": _ratio(bp["rest_actual"].to_numpy(dtype=float), pred_oos)})
    params = {q: (HALF_LIVES[pairs[i][0]], pairs[i][1]) for q, i in chosen.items()}
    return Calibration(params, band.dropna().reset_index(drop=True), (HALF_LIVES[pairs[pooled][0]], pairs[pooled][1]),
                       in_sample.dropna().reset_index(drop=True))


def conformal_quantiles(values: np.ndarray, lo: float = 0.1, hi: float = 0.9) -> tuple[float, float] | None:
    """(lower, upper) order statistics of `values` such that a new exchangeable value falls below the lower one
    with probability <= lo and above the upper one with probability <= 1 - hi (split conformal: the
    ceil((n + 1) q)-th of n sorted values); None when n is too small for that."""
    v = np.sort(np.asarray(values, dtype=float))
    n = len(v)
    i_lo, i_hi = int(np.floor((n + 1) * lo)), int(np.ceil((n + 1) * hi))
    if i_lo < 1 or i_hi > n:
        return None
    return float(v[i_lo - 1]), float(v[i_hi - 1])


def band_ratios(calibration: Calibration, queue: str, share: float, nightly_lo: float, nightly_hi: float,
                k: float, in_sample: bool = False) -> tuple[float, float]:
    """(p10 / p50, p90 / p50) of the rest of the day at `share` seen: see the module doc. `in_sample`: the band
    before 2026-12 (np.quantile of the in-sample ratios), kept for the bench's before/after only."""
    p = calibration.in_sample if in_sample else calibration.points
    near = p.loc[(p["share"] - share).abs() <= BAND_WIDTH]
    own = near.loc[near["queue"] == queue]
    use = own if len(own) >= MIN_BAND_POINTS else near
    if len(use) >= MIN_BAND_POINTS:
        if in_sample:
            lo, hi = (float(np.quantile(use["ratio"], q)) for q in (0.1, 0.9))
        else:
            lo, hi = conformal_quantiles(use["ratio"].to_numpy())
        return min(lo, 1.0), max(hi, 1.0)
    narrow = float(np.sqrt(1.0 - trust(share, k)))
    return min(1.0 - (1.0 - nightly_lo) * narrow, 1.0), max(1.0 + (nightly_hi - 1.0) * narrow, 1.0)


def interval_states(starts_utc: pd.Series, at_utc: pd.Timestamp, interval_minutes: int) -> np.ndarray:
    """'done' (ended by `at_utc`), 'current' (in progress) or 'open' (not begun) for each interval start (UTC)."""
    start = pd.to_datetime(starts_utc).to_numpy()
    end = start + np.timedelta64(interval_minutes, "m")
    at = np.datetime64(at_utc)
    return np.where(end <= at, "done", np.where(start <= at, "current", "open"))


QCOLS = ["p10", "p50", "p90"]


def data_reaches(observed: pd.DataFrame, day_start_utc: pd.Timestamp, at_utc: pd.Timestamp,
                 interval_minutes: int) -> pd.Timestamp:
    """How far today's export reaches: the end of the latest interval with a call in any queue, never after
    `at_utc`; `day_start_utc` when no queue has a call yet. Intervals after it are not seen yet, not zero: an export
    that arrives late (today's file not dropped yet, a SQL source an hour behind) must not read as a dead day."""
    calls = observed.loc[observed["offered"] > 0, "interval_start_utc"]
    if calls.empty:
        start = pd.Timestamp(day_start_utc)
        return pd.Timestamp(at_utc) if pd.isna(start) else min(start, pd.Timestamp(at_utc))
    return min(pd.Timestamp(calls.max()) + pd.Timedelta(minutes=interval_minutes), pd.Timestamp(at_utc))


def reforecast_day(plan: pd.DataFrame, observed: pd.DataFrame, at_utc: pd.Timestamp, interval_minutes: int,
                   calibration: Calibration) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(remaining intervals, one summary row per queue) of today reforecast at `at_utc`.

    `plan`: the nightly forecast of today, one row per queue per interval: queue, interval_start,
    interval_start_utc, is_open, p10, p50, p90 (and any other column, e.g. aht_seconds, carried along). `observed`:
    today's intervals so far, queue, interval_start_utc, offered (the one in progress partial; missing = 0).
    Intervals: one row per queue per interval not yet ended (the one in progress first): the plan's columns with
    p10/p50/p90 reforecast. Summary: queue, share_so_far, observed_so_far, nightly_day_p50, projected_day_p50,
    rest_factor (reforecast rest / nightly rest), trust_k, half_life_hours (the calibrated pair).
    """
    obs = observed.loc[:, ["queue", "interval_start_utc", "offered"]].astype({"queue": "str"})
    obs = obs.groupby(["queue", "interval_start_utc"], as_index=False)["offered"].sum()
    p = plan.astype({"queue": "str"}).merge(obs, on=["queue", "interval_start_utc"], how="left")
    p = p.assign(offered=p["offered"].fillna(0.0), state=interval_states(p["interval_start_utc"], at_utc,
                                                                           interval_minutes))
    parts, rows = [], []
    for queue, q in p.sort_values(["queue", "interval_start_utc"], kind="stable").groupby("queue", sort=True):
        night = {c: float(q[c].sum()) for c in QCOLS}
        is_open = q["is_open"].to_numpy(dtype=bool)
        if night["p50"] > 0:
            share = q["p50"].to_numpy(dtype=float) / night["p50"]
        else:  # nothing forecast: an open interval is as likely as another
            share = np.where(is_open, 1.0 / max(int(is_open.sum()), 1), 0.0)
        state = q["state"].to_numpy()
        done = state == "done"
        s, a = float(share[done].sum()), float(q["offered"].to_numpy(dtype=float)[done].sum())
        half_life, k = calibration.for_queue(str(queue))
        ends = pd.to_datetime(q["interval_start_utc"]).to_numpy() + np.timedelta64(interval_minutes, "m")
        age = (np.datetime64(at_utc) - ends[done]) / np.timedelta64(1, "m") / 60.0
        v = recency_weights(age, half_life)
        rest = float(project_rest(a, s, night["p50"], k, float((v * q["offered"].to_numpy(dtype=float)[done]).sum()),
                                  float((v * share[done]).sum())))
        lo_n = night["p10"] / night["p50"] if night["p50"] > 0 else 1.0
        hi_n = night["p90"] / night["p50"] if night["p50"] > 0 else 1.0
        lo, hi = band_ratios(calibration, str(queue), s, lo_n, hi_n, k)
        left = ~done
        weight = np.divide(share, 1.0 - s, out=np.zeros(len(share)), where=(1.0 - s) > 1e-12) * left
        values = {"p10": rest * lo * weight, "p50": rest * weight, "p90": rest * hi * weight}
        current = state == "current"
        if current.any():  # what came in so far plus the forecast of the part still to come
            start = pd.to_datetime(q["interval_start_utc"]).to_numpy()[current][0]
            elapsed = float((np.datetime64(at_utc) - start) / np.timedelta64(1, "m")) / interval_minutes
            seen = q["offered"].to_numpy(dtype=float)[current][0]
            for c in QCOLS:
                values[c][current] = seen + values[c][current] * (1.0 - elapsed)
        out = q.loc[left].drop(columns=["offered", "state"]).assign(**{c: v[left] for c, v in values.items()})
        parts.append(out)
        projected = a + float(values["p50"][left].sum())
        nightly_rest = night["p50"] * (1.0 - s)
        rows.append({"queue": str(queue), "share_so_far": s, "observed_so_far": a, "nightly_day_p50": night["p50"],
                     "projected_day_p50": projected, "trust_k": k, "half_life_hours": half_life,
                     "rest_factor": rest / nightly_rest if nightly_rest > 0 else 1.0})
    intervals = pd.concat(parts, ignore_index=True) if parts else plan.iloc[0:0]
    summary = pd.DataFrame(rows, columns=["queue", "share_so_far", "observed_so_far", "nightly_day_p50",
                                          "projected_day_p50", "trust_k", "half_life_hours", "rest_factor"])
    return intervals.reset_index(drop=True), summary


def adjust_tomorrow(plan: pd.DataFrame, summary: pd.DataFrame, shrink: float) -> pd.DataFrame:
    """Tomorrow's nightly intervals x (1 + shrink x (today's rest factor - 1)): today's surprise, half believed by
    default (intraday.tomorrow_shrink), for every quantile. Same grain as `plan`."""
    factor = plan["queue"].astype("str").map(summary.set_index("queue")["rest_factor"]).fillna(1.0)
    scale = (1.0 + shrink * (factor - 1.0)).clip(lower=0.0).to_numpy(dtype=float)
    return plan.assign(**{c: plan[c].to_numpy(dtype=float) * scale for c in QCOLS})
