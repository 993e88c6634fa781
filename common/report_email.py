"""What the report email says: the per-queue summary, the accuracy headlines, the alerts, as HTML and plain text.

The body comes from two jinja2 templates (common/templates/report.html.j2, report.txt.j2), HTML autoescaped (queue
names and alert messages are data). It reads top down for two readers: first a summary a manager reads on a phone in
30 seconds (one column, about 600 px: the alerts in plain words, yesterday's forecast vs actual, the next days per
queue, the service target behind the staff numbers, the accuracy in one sentence; once a week the capacity plan's
sentences), then the charts, then the details for the analyst (every alert with its rule and config key, the full
per-queue table, notes). Pure functions of DataFrames and plain values; `common/mail.py` packs the result into a
message and delivers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import jinja2
import pandas as pd

from common.config_schema import StaffingConfig
from common.forecast_frame import MODEL_METHODS
from common.mail import Chart
from common.report_capacity import CapacitySection
from common.report_queues import is_others, others_label
from common.tables_capacity import CENTRE

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
SEVERITY_STYLE = {  # background, text: the same red/amber/blue as the charts' threshold lines
    "critical": ("#fde0dc", "#b71c1c"),
    "warning": ("#fff3cd", "#8a5a00"),
    "info": ("#e3eefa", "#1f5fa8"),
}
_RATIO_METRICS = ("wmape", "mape", "bias", "coverage", "total_volume_error", "share", "deviation")


def report_summary(totals: pd.DataFrame, forecast: pd.DataFrame, staffing_daily: pd.DataFrame,
                   accuracy: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per queue: the horizon's forecast total with its range, the previous span, the staffing peak.

    `totals` is `plots.horizon_totals` (span 0 = forecast, -1 = the span before); `forecast` the origin's
    gold_forecast_daily rows (for method/fallback); `staffing_daily` its gold_staffing_daily rows; `accuracy`
    gold_forecast_accuracy_summary rows of the as-of (scope 'queue', method 'forecast' are used). Any of the
    last three may be empty: their columns are then empty. Columns: queue, p50, p10, p90, previous, change,
    method, fallback_reason, peak_staff_p50, peak_staff_p10, peak_staff_p90, peak_date, staff_hours_p50,
    wmape (the queue's recent accuracy).
    """
    cols = ["queue", "p50", "p10", "p90", "previous", "change", "method", "fallback_reason",
            "peak_staff_p50", "peak_staff_p10", "peak_staff_p90", "peak_date", "staff_hours_p50", "wmape"]
    fc = totals.loc[totals["span"] == 0, ["queue", "total", "p10", "p90"]].rename(columns={"total": "p50"})
    prev = totals.loc[totals["span"] == -1, ["queue", "total"]].rename(columns={"total": "previous"})
    out = fc.merge(prev, on="queue", how="left")
    out = out.assign(change=(out["p50"] / out["previous"] - 1).where(out["previous"] > 0))
    if not forecast.empty:
        # A queue is "fallback" when any of its days is: the analyst should know before trusting the numbers.
        meth = (forecast.assign(is_fb=~forecast["method"].isin(MODEL_METHODS))
                .sort_values(["queue", "is_fb", "date"], ascending=[True, False, True])
                .drop_duplicates("queue")[["queue", "method", "fallback_reason"]])
        out = out.merge(meth, on="queue", how="left")
    else:
        out = out.assign(method=None, fallback_reason=None)
    if not staffing_daily.empty:
        peak = (staffing_daily.sort_values(["queue", "peak_staff_p50", "date"], ascending=[True, False, True])
                .drop_duplicates("queue")
                .rename(columns={"date": "peak_date"})[["queue", "peak_staff_p50", "peak_staff_p10", "peak_staff_p90",
                                                        "peak_date"]])
        hours = staffing_daily.groupby("queue", as_index=False)["staff_hours_p50"].sum()
        out = out.merge(peak, on="queue", how="left").merge(hours, on="queue", how="left")
    else:
        out = out.assign(peak_staff_p50=None, peak_staff_p10=None, peak_staff_p90=None, peak_date=None,
                         staff_hours_p50=None)
    acc = _accuracy_rows(accuracy, "queue")
    if acc.empty:
        out = out.assign(wmape=None)
    else:
        out = out.merge(acc[["scope_value", "wmape"]].rename(columns={"scope_value": "queue"}), on="queue", how="left")
    return out[cols].sort_values("queue").reset_index(drop=True)


def _accuracy_rows(accuracy: pd.DataFrame | None, scope: str) -> pd.DataFrame:
    if accuracy is None or accuracy.empty:
        return pd.DataFrame(columns=["scope_value", "wmape", "bias", "coverage", "wmape_naive", "window_days", "n_days"])
    return accuracy.loc[(accuracy["scope"] == scope) & (accuracy["method"] == "forecast")]


def _summary_phrases(r: pd.Series) -> tuple[str, str, str, str]:
    """wMAPE, ' (seasonal naive: x)', bias and ', p10–p90 coverage ...' of a summary row, '–' or '' when missing."""
    wm = f"{r['wmape']:.1%}" if pd.notna(r["wmape"]) else "–"
    naive = f" (seasonal naive: {r['wmape_naive']:.1%})" if pd.notna(r["wmape_naive"]) else ""
    bias = f"{r['bias']:+.1%}" if pd.notna(r["bias"]) else "–"
    cover = f", p10–p90 coverage {r['coverage']:.0%} (target 80%)" if pd.notna(r["coverage"]) else ""
    return wm, naive, bias, cover


def accuracy_headline(accuracy: pd.DataFrame | None) -> str | None:
    """One sentence on recent accuracy from the as-of's overall summary row, or None when there is none."""
    rows = _accuracy_rows(accuracy, "overall")
    if rows.empty:
        return None
    r = rows.iloc[0]
    wm, naive, bias, cover = _summary_phrases(r)
    return (f"Accuracy of the forecasts made in the last {int(r['window_days'])} days ({int(r['n_days'])} open forecast "
            f"days scored, all horizons): wMAPE {wm}{naive}, bias {bias}{cover}.")


def sort_alerts(alerts: pd.DataFrame) -> pd.DataFrame:
    """Alerts most severe first, then by queue and rule (one row per alert, as given)."""
    if alerts.empty:
        return alerts
    rank = alerts["severity"].map(lambda s: SEVERITY_ORDER.get(str(s).lower(), 9))
    return (alerts.assign(_rank=rank).sort_values(["_rank", "queue", "alert_rule"], na_position="first")
            .drop(columns="_rank").reset_index(drop=True))


def report_subject(as_of: date, alerts: pd.DataFrame) -> str:
    counts = alerts["severity"].str.lower().value_counts() if not alerts.empty else pd.Series(dtype=int)
    parts = [f"{int(counts[s])} {s}" for s in ("critical", "warning", "info") if s in counts]
    tail = ("alerts: " + ", ".join(parts)) if parts else "no open alerts"
    return f"WFM forecast {as_of:%Y-%m-%d}: {tail}"


def _fmt(value: object, pattern: str = "{:,.0f}") -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA or value is pd.NaT:
        return "–"
    return pattern.format(value)


def _metric_value(metric: object, value: object) -> str:
    if value is None or pd.isna(value):
        return "–"
    if any(k in str(metric).lower() for k in _RATIO_METRICS):
        return f"{float(value):.1%}"
    return f"{float(value):,.4g}"


# --- the manager's summary -------------------------------------------------------------------------------

def _missing(value: object) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and pd.isna(value))


def alert_in_words(alert: object) -> str:
    """One plain sentence for a gold_alerts row (its rule, queue, value and threshold), no config key or jargon.

    The row's own `message` (with the config key and what to check) is for the analyst, in the details.
    """
    rule, value, limit = str(alert.alert_rule), alert.value, alert.threshold
    who = "All queues" if _missing(alert.queue) else str(alert.queue)
    known = not _missing(value) and not _missing(limit)
    if rule == "daily_mape" and known:
        if str(alert.severity).lower() == "critical":
            return f"{who}: the latest day's forecast was {float(value):.0%} off (more than {float(limit):.0%})."
        return f"{who}: the forecast has been more than {float(limit):.0%} off several days in a row."
    if rule == "weekly_bias" and known:
        word = "too high (risk of over-staffing)" if float(value) > 0 else "too low (risk of under-staffing)"
        if str(alert.severity).lower() == "critical":
            return f"{who}: last week's forecast was {abs(float(value)):.0%} {word}."
        return f"{who}: the forecast has been {word} by more than {float(limit):.0%} for several weeks."
    if rule == "data_freshness":
        if _missing(value):
            return "No call data has arrived at all: the numbers cannot be trusted until it does."
        return f"Yesterday's call data looks incomplete ({float(value):.1f} h missing at the end of the day)."
    if rule == "feature_drift":
        return f"{who}: the pattern of calls has changed; the forecast may lag behind until the model catches up."
    if rule == "model_vs_naive" and known:
        return (f"{who}: the model is not beating a simple same-weekday-last-week forecast "
                f"({float(value):.0%} vs {float(limit):.0%} error).")
    if rule == "forecast_fallback":
        days = "" if _missing(value) else f" on {int(value)} days"
        return f"{who}: forecast with a simple fallback method instead of the model{days}."
    return f"{who}: {rule.replace('_', ' ')}."


def service_target(staffing: StaffingConfig) -> str:
    """The service target behind the staff numbers, in words (config staffing.*)."""
    asa = (f", calls answered in {staffing.asa_target_seconds:g} s on average" if staffing.asa_target_seconds
           else "")
    return (f"{staffing.service_level:.0%} of calls answered within {staffing.answer_seconds:g} s{asa}, agents busy "
            f"at most {staffing.max_occupancy:.0%} of the time, shrinkage {staffing.shrinkage:.0%} (staff = agents "
            f"on the phones / {1 - staffing.shrinkage:.2f})")


def last_day_vs_actual(rows: pd.DataFrame, others: Sequence[str] = ()) -> tuple[pd.Timestamp | None, pd.DataFrame]:
    """(day, rows): per queue its latest open day with a scored forecast, what was forecast for it vs the actual.

    `rows`: gold_forecast_accuracy rows dated before the as-of: the published forecast (lightgbm, seasonal_naive)
    and the track record (backtest_lightgbm). Per queue the published forecast made the fewest days ahead, else
    the backtest's (kind "backtest"). Queues in `others` are summed into one "All other queues (K)" row (on each
    one's own day). `day` is the day all rows share (then, with more than one row, an "All queues" total ends the
    table), or None when queues' last open days differ (a queue open on Saturdays). Columns: queue, date,
    forecast (p50), p10, p90, actual, error ((forecast - actual) / actual), ahead (days), kind.
    """
    cols = ["queue", "date", "forecast", "p10", "p90", "actual", "error", "ahead", "kind"]
    pts = rows.loc[rows["is_open"].astype(bool) & (rows["actual"] > 0)] if len(rows) else rows
    pts = pts.loc[pts["method"].isin([*MODEL_METHODS, "seasonal_naive", "backtest_lightgbm"])] if len(pts) else pts
    if pts.empty:
        return None, pd.DataFrame(columns=cols)
    pts = pts.loc[pts["date"] == pts.groupby("queue")["date"].transform("max")]
    pts = pts.assign(kind=pts["method"].map(lambda m: "backtest" if str(m).startswith("backtest") else "forecast"))
    best = (pts.assign(_bt=pts["kind"] == "backtest").sort_values(["queue", "_bt", "horizon_day"])
            .drop_duplicates("queue").rename(columns={"p50": "forecast", "horizon_day": "ahead"}))
    best = best.loc[:, ["queue", "date", "forecast", "p10", "p90", "actual", "ahead", "kind"]]
    folded = best["queue"].isin(list(others))
    if folded.any():
        best = pd.concat([best.loc[~folded], pd.DataFrame([_total(best.loc[folded], others_label(len(others)))])],
                         ignore_index=True)
    best = best.sort_values("queue", key=lambda q: q.map(lambda v: (is_others(v), v)), kind="stable")
    one_day = best["date"].nunique() == 1
    if one_day and len(best) > 1:
        best = pd.concat([best, pd.DataFrame([_total(best, "All queues")])], ignore_index=True)
    best = best.assign(error=(best["forecast"] - best["actual"]) / best["actual"]).reset_index(drop=True)
    return (pd.Timestamp(best["date"].iloc[0]) if one_day else None), best.loc[:, cols]


def _total(rows: pd.DataFrame, label: str) -> dict:
    """One row summing `rows` (forecast, band, actual), on their latest day, labelled backtest only when all are."""
    return {**rows[["forecast", "p10", "p90", "actual"]].sum().to_dict(), "queue": label, "date": rows["date"].max(),
            "ahead": int(rows["ahead"].min()), "kind": "backtest" if (rows["kind"] == "backtest").all() else "forecast"}


def backtest_headline(summary: pd.DataFrame | None, backtest: pd.DataFrame | None) -> str | None:
    """One sentence on the track record (step 2's backtest), or None when there is none.

    `summary`: gold_forecast_accuracy_summary rows of the latest backtest (scope 'overall', method
    'backtest_lightgbm' used); `backtest`: its gold_forecast_accuracy rows (for the origins).
    """
    if summary is None or summary.empty:
        return None
    rows = summary.loc[(summary["scope"] == "overall") & (summary["method"] == "backtest_lightgbm")]
    if rows.empty:
        return None
    r = rows.iloc[0]
    origins = (sorted(backtest.loc[backtest["method"] == "backtest_lightgbm", "forecast_origin"].unique())
               if backtest is not None and len(backtest) else [])
    span = (f"{len(origins)} weekly origins {pd.Timestamp(origins[0]):%d %b}–{pd.Timestamp(origins[-1]):%d %b %Y}"
            if origins else f"the origins of the {int(r['window_days'])} days before {pd.Timestamp(r['as_of']):%d %b %Y}")
    wm, naive, bias, cover = _summary_phrases(r)
    bias = "" if bias == "–" else f", bias {bias}"
    return (f"Track record (backtest, not live forecasts): replayed on {span}, each trained only on the days before "
            f"it, the model's forecasts 1–14 days ahead had wMAPE {wm}{naive}{bias}{cover}.")


# --- rendering -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EmailContent:
    """Everything the two templates show (frames as prepared by common/report_step.py)."""

    as_of: date
    horizon: int
    alerts: pd.DataFrame                 # gold_alerts rows, most severe first (sort_alerts)
    summary: pd.DataFrame                # report_summary rows of every queue
    named: pd.DataFrame                  # the summary rows of the drawn queues, then "All other queues (K)"
    rest: pd.DataFrame                   # the summary rows of the folded queues
    service_target: str                  # service_target(cfg.staffing)
    last_day: pd.Timestamp | None = None  # the day every row of last_day_rows is for (None: each queue its own)
    last_day_rows: pd.DataFrame = field(default_factory=pd.DataFrame)  # last_day_vs_actual
    headlines: Sequence[str] = ()        # accuracy sentences: recent forecasts, then the track record
    notes: Sequence[str] = ()
    charts: Sequence[Chart] = ()
    service_delivered: str = ""          # service_delivered.delivered_sentence ("" without CDRs)
    capacity: CapacitySection | None = None  # report_capacity.prepare_capacity, on the nights the email shows it


_TEMPLATES = Path(__file__).parent / "templates"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), undefined=jinja2.StrictUndefined,
                             autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(num=_fmt, pct=lambda v: _fmt(v, "{:.1%}"), signed=lambda v: _fmt(v, "{:+.1%}"),
                       fte=lambda v: _fmt(v, "{:,.1f}"), fte_change=lambda v: _fmt(v, "{:+,.1f}"),
                       day=lambda v: _fmt(v, "{:%a %d %b}"), metric=lambda v, m: _metric_value(m, v))
    return env


def _records(frame: pd.DataFrame) -> list[dict]:
    return [dict(zip(frame.columns, (None if _missing(v) else v for v in row)))
            for row in frame.itertuples(index=False)] if len(frame) else []


def _context(c: EmailContent) -> dict:
    alerts = [{**a, "words": alert_in_words(row), "style": SEVERITY_STYLE.get(str(row.severity).lower(),
                                                                             ("#f5f5f5", "#333333"))}
              for a, row in zip(_records(c.alerts), c.alerts.itertuples(index=False))]
    yesterday = c.last_day is not None and (pd.Timestamp(c.as_of) - c.last_day).days == 1
    return {"c": c, "as_of": pd.Timestamp(c.as_of), "alerts": alerts, "named": _records(c.named),
            "summary": _records(c.summary), "rest": _records(c.rest), "last_day_rows": _records(c.last_day_rows),
            "last_day_title": ("Last open day per queue" if c.last_day is None else
                               f"{'Yesterday' if yesterday else 'Last open day'}, {c.last_day:%a %d %b}"),
            "per_queue_days": c.last_day is None,
            "any_backtest": bool(len(c.last_day_rows)) and (c.last_day_rows["kind"] == "backtest").any(),
            "is_others": is_others, "cap": c.capacity, "comparison": _comparison_rows(c.capacity)}


def _comparison_rows(cap: CapacitySection | None) -> list[dict]:
    """The comparison table's rows, the centre labelled in words."""
    if cap is None or cap.comparison.empty:
        return []
    return [{**r, "label": "Whole centre" if r["queue"] == CENTRE else r["queue"]} for r in _records(cap.comparison)]


def report_html(content: EmailContent) -> str:
    """The HTML part: the summary for the manager, the charts, then the details for the analyst."""
    return _env().get_template("report.html.j2").render(**_context(content))


def report_text(content: EmailContent) -> str:
    """The plain-text part, for mail clients that do not show HTML: the same summary and details, no charts."""
    return _env().get_template("report.txt.j2").render(**_context(content))
