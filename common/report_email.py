"""What the report email says: the per-queue summary, the accuracy headline, the alerts, as HTML and plain text.

Pure functions of DataFrames and plain values; `common/mail.py` packs the result into a message and delivers it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date

import pandas as pd

from common.mail import Chart

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
        meth = (forecast.assign(is_fb=forecast["method"] != "lightgbm")
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


def accuracy_headline(accuracy: pd.DataFrame | None) -> str | None:
    """One sentence on recent accuracy from the as-of's overall summary row, or None when there is none."""
    rows = _accuracy_rows(accuracy, "overall")
    if rows.empty:
        return None
    r = rows.iloc[0]
    naive = f" (seasonal naive: {r['wmape_naive']:.1%})" if pd.notna(r["wmape_naive"]) else ""
    cover = f", p10–p90 coverage {r['coverage']:.0%} (target 80%)" if pd.notna(r["coverage"]) else ""
    wm = f"{r['wmape']:.1%}" if pd.notna(r["wmape"]) else "–"
    bias = f"{r['bias']:+.1%}" if pd.notna(r["bias"]) else "–"
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


def _alerts_html(alerts: pd.DataFrame) -> str:
    if alerts.empty:
        return '<p style="color:#2e7d32"><b>No open alerts.</b></p>'
    head = "".join(f'<th style="text-align:left;padding:4px 8px;border-bottom:2px solid #999">{h}</th>'
                   for h in ("Severity", "Rule", "Queue", "Metric", "Value", "Threshold", "What it means"))
    rows = []
    for r in alerts.itertuples(index=False):
        sev = str(r.severity).lower()
        bg, fg = SEVERITY_STYLE.get(sev, ("#f5f5f5", "#333333"))
        cells = [f'<b style="color:{fg}">{html.escape(sev.upper())}</b>', html.escape(str(r.alert_rule)),
                 html.escape("all queues" if r.queue is None or pd.isna(r.queue) else str(r.queue)),
                 html.escape(str(r.metric)), _metric_value(r.metric, r.value), _metric_value(r.metric, r.threshold),
                 html.escape(str(r.message))]
        rows.append(f'<tr style="background:{bg}">' + "".join(
            f'<td style="padding:4px 8px;border-bottom:1px solid #ddd">{c}</td>' for c in cells) + "</tr>")
    return f'<table style="border-collapse:collapse;font-size:13px">{"<tr>" + head + "</tr>"}{"".join(rows)}</table>'


def _summary_html(summary: pd.DataFrame, horizon: int) -> str:
    if summary.empty:
        return "<p>No forecast for this origin.</p>"
    heads = ["Queue", f"Forecast {horizon} d (p50)", "p10–p90 (sum of daily)", f"Previous {horizon} d actual", "Change",
             "Peak interval staff (p50)", "Peak p10–p90", "Peak day", f"Staff hours {horizon} d (p50)", "Recent wMAPE",
             "Method"]
    head = "".join(f'<th style="text-align:{"left" if i in (0, 10) else "right"};padding:4px 8px;'
                   f'border-bottom:2px solid #999">{h}</th>' for i, h in enumerate(heads))
    rows = []
    for r in summary.itertuples(index=False):
        method = "model" if r.method == "lightgbm" else f"{r.method}: {r.fallback_reason or 'no reason recorded'}"
        cells = [html.escape(str(r.queue)), _fmt(r.p50), f"{_fmt(r.p10)}–{_fmt(r.p90)}", _fmt(r.previous),
                 _fmt(r.change, "{:+.1%}"), _fmt(r.peak_staff_p50),
                 f"{_fmt(r.peak_staff_p10)}–{_fmt(r.peak_staff_p90)}",
                 _fmt(r.peak_date, "{:%a %d %b}"), _fmt(r.staff_hours_p50), _fmt(r.wmape, "{:.1%}"),
                 html.escape(str(method))]
        style = ' style="background:#fff3cd"' if r.method not in ("lightgbm", None) and not pd.isna(r.method) else ""
        rows.append(f"<tr{style}>" + "".join(
            f'<td style="text-align:{"left" if i in (0, 10) else "right"};padding:4px 8px;border-bottom:1px solid #ddd">'
            f"{c}</td>" for i, c in enumerate(cells)) + "</tr>")
    return f'<table style="border-collapse:collapse;font-size:13px"><tr>{head}</tr>{"".join(rows)}</table>'


def _rest_html(rest: pd.DataFrame, horizon: int) -> str:
    """The queues the charts fold into "All other queues": one plain row each (no per-cell styles: 500 rows stay small)."""
    if rest.empty:
        return ""
    heads = ["Queue", f"Forecast {horizon} d", "p10–p90", "Previous", "Change", "Peak staff", "Method"]
    rows = "".join(
        f"<tr><td>{html.escape(str(r.queue))}</td><td>{_fmt(r.p50)}</td><td>{_fmt(r.p10)}–{_fmt(r.p90)}</td>"
        f"<td>{_fmt(r.previous)}</td><td>{_fmt(r.change, '{:+.1%}')}</td><td>{_fmt(r.peak_staff_p50)}</td>"
        f"<td>{'model' if r.method == 'lightgbm' else html.escape(str(r.method))}</td></tr>"
        for r in rest.itertuples(index=False))
    return (f"<h3>The other {len(rest):,} queues (one panel in the charts)</h3>"
            f'<table cellpadding="2" style="border-collapse:collapse;font-size:12px"><tr>'
            + "".join(f'<th style="text-align:left">{h}</th>' for h in heads) + f"</tr>{rows}</table>")


def report_html(as_of: date, horizon: int, alerts: pd.DataFrame, summary: pd.DataFrame, charts: Sequence[Chart],
                notes: Sequence[str], headline: str | None = None, rest: pd.DataFrame | None = None) -> str:
    """The report body: open alerts on top, the per-queue summary, notes on what is missing, then the charts.

    `rest`: summary rows of the queues the charts fold into one panel (`report_queues.fold_summary`), listed
    compactly after the charts; `summary` then ends with their "All other queues" row.
    """
    headline_html = f"<p>{html.escape(headline)}</p>" if headline else ""
    notes_html = ("<h3>Notes</h3><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>") if notes else ""
    charts_html = "".join(
        f'<h3 style="margin-bottom:4px">{html.escape(c.title)}</h3>'
        f'<img src="cid:{c.cid}" alt="{html.escape(c.title)}" style="max-width:100%;width:1100px;border:1px solid #ddd">'
        for c in charts)
    return f"""<!DOCTYPE html>
<html><body style="font-family:Segoe UI,Arial,sans-serif;color:#222">
<h2 style="margin-bottom:2px">WFM forecast for {as_of:%A %d %B %Y}</h2>
<p style="margin-top:0;color:#555">{horizon}-day forecast of offered calls and the staff to schedule, per queue.
Figures are calls (volume) and scheduled staff after shrinkage; p10–p90 is the range 8 days in 10 should fall in.</p>
<h3>Open alerts ({len(alerts)})</h3>
{_alerts_html(alerts)}
<h3>Next {horizon} days per queue</h3>
{_summary_html(summary, horizon)}
{headline_html}
{notes_html}
{charts_html}
{_rest_html(rest if rest is not None else summary.iloc[:0], horizon)}
<p style="color:#888;font-size:11px">wfm-forecast 5_report.py. The numbers are in the gold_* tables
(gold_forecast_daily, gold_staffing_daily, gold_staffing_interval, gold_alerts).</p>
</body></html>"""


def report_text(as_of: date, horizon: int, alerts: pd.DataFrame, summary: pd.DataFrame, notes: Sequence[str],
                headline: str | None = None) -> str:
    """The plain-text part, for mail clients that do not show HTML."""
    lines = [f"WFM forecast for {as_of:%Y-%m-%d}", "", f"Open alerts: {len(alerts)}"]
    lines += [f"  [{str(r.severity).upper()}] {r.alert_rule}: {r.message}" for r in alerts.itertuples(index=False)]
    lines += ["", f"Next {horizon} days per queue (p50 [p10-p90]; peak staff p50):"]
    lines += [f"  {r.queue}: {_fmt(r.p50)} [{_fmt(r.p10)}-{_fmt(r.p90)}]; peak staff {_fmt(r.peak_staff_p50)}"
              for r in summary.itertuples(index=False)]
    if headline:
        lines += ["", headline]
    if notes:
        lines += ["", "Notes:", *[f"  - {n}" for n in notes]]
    lines += ["", "The charts are in the HTML version of this email."]
    return "\n".join(lines) + "\n"
