#!/usr/bin/env python3
"""Step 5: PNG charts and the report email for forecast origin --as-of.

Reads the gold tables of forecast origin D (gold_forecast_daily,
gold_staffing_interval, gold_staffing_daily), the last 8 weeks of
silver_daily, recent accuracy (gold_forecast_accuracy and the as-of's
gold_forecast_accuracy_summary) and the alerts of D (gold_alerts), and writes
into <report.output_dir>/<D>/ (re-running D overwrites the same files):
  forecast.png   per queue: 8 weeks of actuals, then the forecast p50 and p10-p90 band
  totals.png     per queue: the horizon's forecast total vs the same span in recent weeks
  accuracy.png   daily error and weekly bias of recent forecasts, with the alert thresholds
  staffing.png   per queue: staff to schedule per interval for the next 7 days
  report.eml     the email (alerts on top, per-queue summary, charts inline), always kept
"Per queue" means the report.top_queues busiest queues (forecast volume) by name
and one "All other queues (K)" panel summing the rest; the email's tables list
every queue.
What is missing (first night: no accuracy yet) is drawn as a note on the chart
and listed in the email. The email is sent when report.smtp.host is set; the
SMTP password comes from the environment variable named in
report.smtp.password_env. An SMTP failure does not fail the step (exit code 0): it
is logged, the .eml is kept, and pipeline_runs records status success with
"SMTP failed: <reason>" in the message. No rows are written to the database.

Example:  python 5_report.py --as-of 2025-03-10 [--no-email]
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import and_
from sqlalchemy.engine import Connection

from common import db, mail, plots, report_email, report_queues, tables
from common.cli import StepContext, StepResult, run_step, step_parser
from common.errors import DataError, PipelineError

log = logging.getLogger(__name__)

WEEKS = 8           # weeks of actuals on the charts
STAFFING_DAYS = 7   # days of the staffing heatmap (the week a planner schedules)
EVALUATE_STEP = "4_evaluate"


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report draws, as read from the tables (any frame but `forecast` may be empty)."""

    forecast: pd.DataFrame        # gold_forecast_daily of the origin
    actuals: pd.DataFrame         # silver_daily, the weeks before the origin
    staffing: pd.DataFrame        # gold_staffing_interval of the origin, first STAFFING_DAYS days
    staffing_daily: pd.DataFrame  # gold_staffing_daily of the origin
    accuracy: pd.DataFrame        # gold_forecast_accuracy: published forecasts, horizon_day of the alert rules
    accuracy_summary: pd.DataFrame  # gold_forecast_accuracy_summary of the as-of
    alerts: pd.DataFrame          # gold_alerts of the as-of
    evaluated: bool               # 4_evaluate succeeded for this as-of


def load_inputs(conn: Connection, as_of: date, horizon_day: int) -> ReportInputs:
    f, s, si, sd = (tables.gold_forecast_daily, tables.silver_daily, tables.gold_staffing_interval,
                    tables.gold_staffing_daily)
    a, asum, al, runs = (tables.gold_forecast_accuracy, tables.gold_forecast_accuracy_summary, tables.gold_alerts,
                         tables.pipeline_runs)
    forecast = db.read_table(conn, f, f.c.forecast_origin == as_of)
    horizon = max(int(forecast["date"].nunique()), 1)
    # Enough history for the 8-week chart and for every past span the totals chart compares with.
    history_days = max(WEEKS * 7, max(1, WEEKS * 7 // horizon) * horizon)
    actuals = db.read_table(conn, s, and_(s.c.date >= as_of - timedelta(days=history_days), s.c.date < as_of),
                            columns=["queue", "date", "offered", "is_open"])
    staffing = db.read_table(conn, si, and_(si.c.forecast_origin == as_of,
                                            si.c.interval_start < as_of + timedelta(days=STAFFING_DAYS)),
                             columns=["queue", "interval_start", "staff_p10", "staff_p50", "staff_p90"])
    staffing_daily = db.read_table(conn, sd, sd.c.forecast_origin == as_of)
    accuracy = db.read_table(conn, a, and_(a.c.date >= as_of - timedelta(days=WEEKS * 7 + 7), a.c.date < as_of,
                                           a.c.horizon_day == horizon_day, a.c.method.in_(plots.PUBLISHED)))
    accuracy_summary = db.read_table(conn, asum, asum.c.as_of == as_of)
    alerts = db.read_table(conn, al, al.c.as_of == as_of)
    evaluated = not db.read_table(conn, runs, and_(runs.c.step == EVALUATE_STEP, runs.c.as_of == as_of,
                                                   runs.c.status == "success"), columns=["run_id"]).empty
    return ReportInputs(forecast, actuals, staffing, staffing_daily, accuracy, accuracy_summary, alerts, evaluated)


def missing_notes(inputs: ReportInputs, as_of: date) -> list[str]:
    """What the reader should know is absent or partial, one sentence each."""
    notes = []
    if not inputs.evaluated:
        notes.append(f"{EVALUATE_STEP}.py has not run successfully for {as_of}: alerts and accuracy may be missing.")
    if inputs.accuracy.empty:
        notes.append("No forecast accuracy yet: a forecast is scored once its days have actuals.")
    if inputs.staffing.empty:
        notes.append(f"No staffing rows for forecast origin {as_of} (gold_staffing_interval).")
    no_actuals = sorted(set(inputs.forecast["queue"]) - set(inputs.actuals["queue"]))
    if no_actuals:
        notes.append(f"No actuals in the last {WEEKS} weeks for: {', '.join(no_actuals)}.")
    fallback = inputs.forecast.loc[inputs.forecast["method"] != "lightgbm", "queue"].unique()
    if len(fallback):
        notes.append(f"Seasonal naive fallback (reason in the table) for: {', '.join(sorted(fallback))}.")
    return notes


def body(ctx: StepContext) -> StepResult:
    cfg, as_of = ctx.cfg, ctx.as_of
    started = time.perf_counter()

    # Load inputs
    with ctx.engine.connect() as conn:
        inputs = load_inputs(conn, as_of, cfg.alerts.horizon_day)
    if inputs.forecast.empty:
        raise DataError(f"gold_forecast_daily has no rows for forecast_origin {as_of}: "
                        f"run 3_forecast.py --as-of {as_of} first")
    log.info("report: %d forecast rows, %d actual days, %d staffing intervals, %d accuracy rows, %d alerts (%.1fs)",
             len(inputs.forecast), len(inputs.actuals), len(inputs.staffing), len(inputs.accuracy),
             len(inputs.alerts), time.perf_counter() - started)

    # Process data
    horizon = int(inputs.forecast["date"].nunique())
    spans = max(1, WEEKS * 7 // horizon)
    totals = plots.horizon_totals(inputs.actuals, inputs.forecast, as_of, spans=spans)
    summary = report_email.report_summary(totals, inputs.forecast, inputs.staffing_daily, inputs.accuracy_summary)
    # The charts draw the busiest report.top_queues queues by name and sum the rest into one panel (bounded time/size).
    drawn = report_queues.chart_frames(inputs.forecast, inputs.actuals, inputs.staffing, inputs.accuracy,
                                       cfg.report.top_queues)
    named, rest = report_queues.fold_summary(summary, drawn.others)
    drawn_totals = plots.horizon_totals(drawn.actuals, drawn.forecast, as_of, spans=spans)
    daily_error = plots.accuracy_trend(drawn.accuracy, as_of, cfg.alerts.horizon_day, days=WEEKS * 7)
    weekly = plots.weekly_bias(drawn.accuracy, as_of, cfg.alerts.horizon_day, weeks=WEEKS)
    alerts = report_email.sort_alerts(inputs.alerts)
    notes = missing_notes(inputs, as_of)
    headline = report_email.accuracy_headline(inputs.accuracy_summary)

    # Save outputs: the charts and the message (files only; re-running the as-of overwrites them)
    out_dir = cfg.path(cfg.report.output_dir) / as_of.isoformat()
    try:  # full disk, read-only or missing folder: one line (each file is written whole or not at all)
        a = cfg.alerts
        folded = (f" ({cfg.report.top_queues} busiest queues; the last panel sums the other {len(drawn.others):,})"
                  if drawn.others else "")
        charts = [
            mail.Chart(plots.forecast_fan_chart(drawn.actuals, drawn.forecast, as_of, out_dir / "forecast.png", WEEKS),
                       f"Daily calls: last {WEEKS} weeks and the {horizon}-day forecast{folded}"),
            mail.Chart(plots.horizon_totals_chart(drawn_totals, as_of, out_dir / "totals.png"),
                       f"{horizon}-day totals vs recent weeks{folded}"),
            mail.Chart(plots.staffing_heatmap_chart(drawn.staffing, as_of, out_dir / "staffing.png", STAFFING_DAYS),
                       f"Staff to schedule per interval, next {STAFFING_DAYS} days{folded}"),
            mail.Chart(plots.accuracy_trend_chart(daily_error, weekly, as_of, out_dir / "accuracy.png", a.horizon_day,
                                                  (a.mape_warning, a.mape_critical), (a.bias_warning, a.bias_critical)),
                       "Accuracy of recent forecasts" + (f" (the other {len(drawn.others):,} queues as one line)"
                                                         if drawn.others else "")),
        ]
        log.info("report: %d charts written to %s (%.1fs)", len(charts), out_dir, time.perf_counter() - started)
        msg = mail.build_report_message(
            report_email.report_subject(as_of, alerts), cfg.report.smtp.sender, cfg.report.recipients,
            report_email.report_text(as_of, horizon, alerts, summary, notes, headline),
            report_email.report_html(as_of, horizon, alerts, named, charts, notes, headline, rest), charts)
        delivery = mail.deliver(msg, cfg.report.smtp, out_dir / "report.eml", send_mail=not ctx.args.no_email)
    except OSError as exc:
        raise PipelineError(f"cannot write the report under {out_dir}: {exc.strerror or exc}"
                            f"{f' ({exc.filename})' if exc.filename else ''}; free disk space or point "
                            f"report.output_dir at a writable folder, then re-run 5_report.py --as-of {as_of}") from None
    return StepResult(0, f"{len(charts)} charts and report.eml in {out_dir}; {len(alerts)} open alerts; "
                         f"{delivery.summary()}")


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("5_report.py", __doc__)
    parser.add_argument("--no-email", action="store_true", dest="no_email",
                        help="write the charts and report.eml but do not send the email")
    return run_step("5_report", parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())
