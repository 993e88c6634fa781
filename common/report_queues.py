"""Which queues the report draws by name, and one "All other queues" aggregate for the rest.

A chart with one panel per queue takes minutes and megabytes at a few hundred
queues (500 queues: one 7.7 MB chart after 12.5 minutes), and nobody reads
500 panels. So the report names the `report.top_queues` busiest queues (by
forecast volume over the horizon, p50) and folds the others into one panel,
"All other queues (K)": its calls, forecast and staff are the sums of those
queues. A centre with at most top_queues + 1 queues is drawn as before, every
queue by name (folding one queue into an aggregate would only rename it).

The email's table still lists every queue (the others in a compact table), so
no queue's numbers leave the report; only the pictures are bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from common.forecast_frame import MODEL_METHODS

OTHERS = "All other queues"


def others_label(n: int) -> str:
    """The aggregate's queue name: 'All other queues (488)'."""
    return f"{OTHERS} ({n:,})"


def is_others(queue: object) -> bool:
    return isinstance(queue, str) and queue.startswith(OTHERS + " (")


def busiest_queues(forecast: pd.DataFrame, top: int) -> list[str]:
    """The queues to draw by name: all of them when at most top + 1, else the `top` with the largest p50 total.

    Ties go to the queue name (alphabetical), so the choice is the same on every re-run. Returned in name order.
    """
    totals = forecast.groupby("queue")["p50"].sum()
    if len(totals) <= top + 1:
        return sorted(totals.index)
    ranked = sorted(totals.items(), key=lambda kv: (-float(kv[1]), kv[0]))
    return sorted(q for q, _ in ranked[:top])


@dataclass(frozen=True)
class ChartFrames:
    """The report's frames for the charts: the named queues' rows plus one aggregate queue for the rest."""

    forecast: pd.DataFrame   # gold_forecast_daily rows (queue, date, p10, p50, p90, method, fallback_reason)
    actuals: pd.DataFrame    # silver_daily rows (queue, date, offered, is_open)
    staffing: pd.DataFrame   # gold_staffing_interval rows (queue, interval_start, staff_p10, staff_p50, staff_p90)
    accuracy: pd.DataFrame   # gold_forecast_accuracy rows, the others relabelled (not summed: see chart_frames)
    others: list[str]        # the queues folded into the aggregate, by name; empty when every queue is drawn


def chart_frames(forecast: pd.DataFrame, actuals: pd.DataFrame, staffing: pd.DataFrame, accuracy: pd.DataFrame,
                 top: int) -> ChartFrames:
    """The frames the charts draw: the busiest `top` queues as they are, the others summed into one queue.

    Forecast: one row per date for the aggregate, p10/p50/p90 the sums of the queues' (so its band is wider than
    the true band of the total, the same cautious sum as the totals chart); method "lightgbm" when every folded
    queue is on the model, else the first fallback method with the reason "K of N queues on a fallback".
    Actuals: offered summed per date, open when any queue is. Staffing: staff summed per interval (each queue is
    staffed on its own). Accuracy rows are relabelled, not summed: the accuracy chart then scores the aggregate as
    sum |p50 - actual| / sum actual over the folded queues' days, which is their volume-weighted error (summing
    first would let one queue's over-forecast cancel another's under-forecast).
    """
    keep = busiest_queues(forecast, top)
    others = sorted(set(forecast["queue"]) - set(keep))
    if not others:
        return ChartFrames(forecast, actuals, staffing, accuracy, [])
    label = others_label(len(others))
    return ChartFrames(_fold_forecast(forecast, others, label),
                       _fold(actuals, others, label, ["date"], {"offered": "sum", "is_open": "max"}),
                       _fold(staffing, others, label, ["interval_start"],
                             {c: "sum" for c in ("staff_p10", "staff_p50", "staff_p90") if c in staffing.columns}),
                       relabel(accuracy, others, label), others)


def _fold(rows: pd.DataFrame, others: list[str], label: str, keys: list[str], aggs: dict[str, str]) -> pd.DataFrame:
    """The kept queues' rows as they are, then one row per key for `label`: the folded queues' rows aggregated."""
    folded = rows["queue"].isin(others)
    if not folded.any():
        return rows.loc[~folded].reset_index(drop=True)
    agg = rows.loc[folded].groupby(keys, as_index=False).agg(aggs).assign(queue=label)
    if "is_open" in agg.columns:
        agg = agg.assign(is_open=agg["is_open"].astype(bool))
    return pd.concat([rows.loc[~folded], agg], ignore_index=True)


def _fold_forecast(forecast: pd.DataFrame, others: list[str], label: str) -> pd.DataFrame:
    fallback = forecast.loc[forecast["queue"].isin(others) & ~forecast["method"].isin(MODEL_METHODS)]
    method = "lightgbm" if fallback.empty else str(fallback["method"].iloc[0])
    reason = None if fallback.empty else f"{fallback['queue'].nunique():,} of {len(others):,} queues on a fallback"
    out = _fold(forecast, others, label, ["date"], {"p10": "sum", "p50": "sum", "p90": "sum"})
    is_label = out["queue"] == label
    return out.assign(method=out["method"].where(~is_label, method),
                      fallback_reason=out["fallback_reason"].where(~is_label, reason))


def relabel(rows: pd.DataFrame, others: list[str], label: str | None = None) -> pd.DataFrame:
    """`rows` with the queues in `others` renamed to `label` (default: "All other queues (K)"), not summed."""
    if rows.empty or "queue" not in rows.columns or not others:
        return rows
    label = label or others_label(len(others))
    return rows.assign(queue=rows["queue"].where(~rows["queue"].isin(others), label))


def fold_summary(summary: pd.DataFrame, others: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(named, rest) from `report_email.report_summary` rows (one per queue): the email's two tables.

    named: one row per drawn queue, then one "All other queues (K)" row whose volumes and staff hours are the
    sums of the folded queues' (peak staff, its day and the wMAPE are left empty: a sum of peaks on different
    days or of ratios is no figure; previous and change only when every folded queue has a previous span);
    rest: the folded queues' own rows, by name. With no folded queue: (summary, an empty frame).
    """
    folded = summary["queue"].isin(others)
    if not folded.any():
        return summary, summary.iloc[:0]
    rest = summary.loc[folded].sort_values("queue").reset_index(drop=True)
    sums = {c: float(pd.to_numeric(rest[c], errors="coerce").sum()) for c in ("p50", "p10", "p90", "staff_hours_p50")}
    # A previous span missing for some queue would make the change look like growth: then no previous, no change.
    complete = bool(rest["previous"].notna().all())
    previous = float(rest["previous"].sum()) if complete else None
    fallback = rest.loc[rest["method"].notna() & ~rest["method"].isin(MODEL_METHODS)]
    row = {**dict.fromkeys(summary.columns), **sums, "queue": others_label(len(others)),
           "previous": previous, "change": sums["p50"] / previous - 1 if previous else None,
           "method": "lightgbm" if fallback.empty else str(fallback["method"].iloc[0]),
           "fallback_reason": None if fallback.empty else f"{len(fallback):,} of {len(rest):,} queues on a fallback"}
    named = pd.concat([summary.loc[~folded], pd.DataFrame([row])], ignore_index=True)
    return named, rest
