"""Step 5's orchestration: the report's inputs read from the tables, the frames it draws and says, its charts and
message.

5_report.py loads (`load_inputs`), prepares (`prepare`: pure), and saves (`write_charts`, `compose`, then
`mail.deliver`). Nothing here writes to the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path

import pandas as pd
from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection

from common import (
    day_shape,
    db,
    evaluation,
    mail,
    plots,
    plots_accuracy,
    plots_capacity,
    report_capacity,
    report_email,
    report_queues,
    service_delivered,
    tables,
)
from common.config_schema import Config
from common.forecast_frame import MODEL_METHODS

WEEKS = 8           # weeks of actuals on the charts
STAFFING_DAYS = 7   # days of the staffing heatmap (the week a planner schedules)
PAST_WEEKS = 6      # weeks of the forecast-vs-actual chart of past origins
PAST_HORIZONS = (1, 7)  # the past forecasts it draws: made the night before and a week before
EVALUATE_STEP = "4_evaluate"
DELIVERED_WEEKS = 4  # weeks of service delivered the email sums (gold_service_delivered)
CAPACITY_PNG = "capacity.png"  # the capacity plan's fan chart (plots_capacity)


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
    past: pd.DataFrame = field(default_factory=pd.DataFrame)  # gold_forecast_accuracy: published 1 / 7 days ahead,
    #                                                            and the track record (backtest_lightgbm), WEEKS back
    backtest_summary: pd.DataFrame = field(default_factory=pd.DataFrame)  # the latest backtest's summary <= as-of
    delivered: pd.DataFrame = field(default_factory=pd.DataFrame)  # gold_service_delivered, DELIVERED_WEEKS back
    capacity: report_capacity.CapacityInputs | None = None  # the newest published capacity plan (and a scenario)


def load_inputs(conn: Connection, as_of: date, horizon_day: int, scenario: str | None = None) -> ReportInputs:
    """The report's rows; `scenario`: the capacity plan scenario to compare with the published plan (DataError
    when it has no rows)."""
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
                                           a.c.horizon_day == horizon_day, a.c.method.in_(plots_accuracy.PUBLISHED)))
    accuracy_summary = db.read_table(conn, asum, asum.c.as_of == as_of)
    alerts = db.read_table(conn, al, al.c.as_of == as_of)
    evaluated = not db.read_table(conn, runs, and_(runs.c.step == EVALUATE_STEP, runs.c.as_of == as_of,
                                                   runs.c.status == "success"), columns=["run_id"]).empty
    # Past forecasts next to their actuals, and the track record: only origins before the as-of (point in time).
    past = db.read_table(conn, a, and_(
        a.c.date >= as_of - timedelta(days=WEEKS * 7), a.c.date < as_of, a.c.forecast_origin < as_of,
        or_(and_(a.c.method.in_(plots_accuracy.PUBLISHED), a.c.horizon_day.in_(PAST_HORIZONS)),
            a.c.method == evaluation.BACKTEST_MODEL)),
        columns=["forecast_origin", "queue", "date", "horizon_day", "method", "actual", "p10", "p50", "p90",
                 "is_open"])
    latest = conn.execute(select(func.max(asum.c.as_of)).where(
        asum.c.as_of <= as_of, asum.c.method.in_(evaluation.BACKTEST_METHODS))).scalar()
    backtest_summary = db.read_table(conn, asum, and_(asum.c.as_of == latest,
                                                      asum.c.method.in_(evaluation.BACKTEST_METHODS))
                                     if latest is not None else asum.c.as_of.is_(None))
    gd = tables.gold_service_delivered
    delivered = db.read_table(conn, gd, and_(gd.c.date >= as_of - timedelta(weeks=DELIVERED_WEEKS), gd.c.date < as_of))
    return ReportInputs(forecast, actuals, staffing, staffing_daily, accuracy, accuracy_summary, alerts, evaluated,
                        past, backtest_summary, delivered, report_capacity.load_capacity(conn, as_of, scenario))


def missing_notes(inputs: ReportInputs, as_of: date) -> list[str]:
    """What the reader should know is absent or partial, one sentence each."""
    notes = []
    if not inputs.evaluated:
        notes.append(f"{EVALUATE_STEP}.py has not run successfully for {as_of}: alerts and accuracy may be missing.")
    if inputs.accuracy.empty:
        has_backtest = len(inputs.past) and (inputs.past["method"] == evaluation.BACKTEST_MODEL).any()
        notes.append("No scored forecasts yet: a forecast is scored once its days have actuals; until then the "
                     "accuracy shown is step 2's backtest, labelled as such." if has_backtest else
                     "No forecast accuracy yet: a forecast is scored once its days have actuals.")
    if inputs.staffing.empty:
        notes.append(f"No staffing rows for forecast origin {as_of} (gold_staffing_interval).")
    no_actuals = sorted(set(inputs.forecast["queue"]) - set(inputs.actuals["queue"]))
    if no_actuals:
        notes.append(f"No actuals in the last {WEEKS} weeks for: {', '.join(no_actuals)}.")
    if "intraday_profile_reason" in inputs.forecast.columns:  # queues known only from daily totals
        days_only = inputs.forecast.loc[inputs.forecast["intraday_profile_reason"] == day_shape.DAYS_ONLY, "queue"]
        notes += [day_shape.days_only_sentence(q) + "." for q in sorted(days_only.unique())]
    fallback = inputs.forecast.loc[~inputs.forecast["method"].isin(MODEL_METHODS), "queue"].unique()
    if len(fallback):
        notes.append(f"Seasonal naive fallback (reason in the table) for: {', '.join(sorted(fallback))}.")
    return notes


@dataclass(frozen=True)
class ReportContent:
    """What the report draws and says, before anything is written."""

    horizon: int
    summary: pd.DataFrame          # report_email.report_summary: one row per queue
    named: pd.DataFrame            # the summary rows of the drawn queues, then "All other queues (K)"
    rest: pd.DataFrame             # the summary rows of the folded queues
    drawn: report_queues.ChartFrames
    totals: pd.DataFrame           # plots.horizon_totals of the drawn queues
    daily_error: pd.DataFrame      # plots_accuracy.accuracy_trend
    weekly_bias: pd.DataFrame      # plots_accuracy.weekly_bias
    alerts: pd.DataFrame           # most severe first
    notes: list[str]
    headline: str | None
    backtest_daily: pd.DataFrame   # plots_accuracy.accuracy_trend of the track record
    backtest_weekly: pd.DataFrame  # plots_accuracy.weekly_bias of the track record
    past_lines: pd.DataFrame       # plots_accuracy.past_forecasts of the drawn queues
    last_day: pd.Timestamp | None  # report_email.last_day_vs_actual
    last_day_rows: pd.DataFrame
    backtest_headline: str | None
    delivered: str = ""  # service_delivered.delivered_sentence
    capacity: report_capacity.CapacitySection | None = None


def prepare(inputs: ReportInputs, as_of: date, cfg: Config) -> ReportContent:
    """The report's frames and sentences from its inputs (pure: nothing is read or written)."""
    horizon = int(inputs.forecast["date"].nunique())
    spans = max(1, WEEKS * 7 // horizon)
    totals = plots.horizon_totals(inputs.actuals, inputs.forecast, as_of, spans=spans)
    summary = report_email.report_summary(totals, inputs.forecast, inputs.staffing_daily, inputs.accuracy_summary)
    # The charts draw the busiest report.top_queues queues by name and sum the rest into one panel (bounded time/size).
    drawn = report_queues.chart_frames(inputs.forecast, inputs.actuals, inputs.staffing, inputs.accuracy,
                                       cfg.report.top_queues)
    named, rest = report_queues.fold_summary(summary, drawn.others)
    past = report_queues.relabel(inputs.past, drawn.others)
    track = plots_accuracy.nearest_backtest(past)
    last_day, last_day_rows = report_email.last_day_vs_actual(inputs.past, drawn.others)
    return ReportContent(
        horizon=horizon, summary=summary, named=named, rest=rest, drawn=drawn,
        totals=plots.horizon_totals(drawn.actuals, drawn.forecast, as_of, spans=spans),
        daily_error=plots_accuracy.accuracy_trend(drawn.accuracy, as_of, cfg.alerts.horizon_day, days=WEEKS * 7),
        weekly_bias=plots_accuracy.weekly_bias(drawn.accuracy, as_of, cfg.alerts.horizon_day, weeks=WEEKS),
        alerts=report_email.sort_alerts(inputs.alerts), notes=missing_notes(inputs, as_of),
        headline=report_email.accuracy_headline(inputs.accuracy_summary),
        backtest_daily=plots_accuracy.accuracy_trend(track, as_of, None, WEEKS * 7, (plots_accuracy.BACKTEST,)),
        backtest_weekly=plots_accuracy.weekly_bias(track, as_of, None, WEEKS, (plots_accuracy.BACKTEST,)),
        past_lines=plots_accuracy.past_forecasts(past, PAST_HORIZONS), last_day=last_day, last_day_rows=last_day_rows,
        backtest_headline=report_email.backtest_headline(inputs.backtest_summary, inputs.past),
        delivered=service_delivered.delivered_sentence(inputs.delivered, as_of, DELIVERED_WEEKS),
        capacity=report_capacity.prepare_capacity(inputs.capacity, as_of, cfg.report.top_queues))


def write_charts(content: ReportContent, as_of: date, out_dir: Path, cfg: Config) -> list[mail.Chart]:
    """Draw the report's PNGs into `out_dir` (each written whole or not at all); OSError when it cannot write."""
    a, drawn, horizon = cfg.alerts, content.drawn, content.horizon
    folded = (f" ({cfg.report.top_queues} busiest queues; the last panel sums the other {len(drawn.others):,})"
              if drawn.others else "")
    return [
        mail.Chart(plots.forecast_fan_chart(drawn.actuals, drawn.forecast, as_of, out_dir / "forecast.png", WEEKS),
                   f"Daily calls: last {WEEKS} weeks and the {horizon}-day forecast{folded}"),
        mail.Chart(plots.horizon_totals_chart(content.totals, as_of, out_dir / "totals.png"),
                   f"{horizon}-day totals vs recent weeks{folded}"),
        mail.Chart(plots.staffing_heatmap_chart(drawn.staffing, as_of, out_dir / "staffing.png", STAFFING_DAYS),
                   f"Staff to schedule per interval, next {STAFFING_DAYS} days{folded}"),
        mail.Chart(plots_accuracy.past_forecasts_chart(drawn.actuals, content.past_lines, as_of,
                                                       out_dir / "past.png", PAST_WEEKS),
                   f"Forecast vs actual, the last {PAST_WEEKS} weeks{folded}"),
        mail.Chart(plots_accuracy.accuracy_trend_chart(content.daily_error, content.weekly_bias, as_of,
                                                       out_dir / "accuracy.png", a.horizon_day,
                                                       (a.mape_warning, a.mape_critical),
                                                       (a.bias_warning, a.bias_critical),
                                                       content.backtest_daily, content.backtest_weekly),
                   "Accuracy of recent forecasts" + (f" (the other {len(drawn.others):,} queues as one line)"
                                                     if drawn.others else "")),
        *_capacity_chart(content.capacity, out_dir),
    ]


def _capacity_chart(cap: report_capacity.CapacitySection | None, out_dir: Path) -> list[mail.Chart]:
    """capacity.png whenever there is a plan (the folder keeps the plan each night's report saw); the email shows
    it with the capacity section only (`compose`)."""
    if cap is None:
        return []
    vs = f"; scenario '{cap.scenario}' dashed" if cap.scenario else ""
    return [mail.Chart(plots_capacity.capacity_fan_chart(cap.chart, cap.plan_origin, out_dir / CAPACITY_PNG,
                                                         cap.scenario_chart, cap.scenario),
                       f"Capacity plan: FTE needed per week vs FTE on hand, {cap.weeks}{vs}")]


def compose(content: ReportContent, charts: list[mail.Chart], as_of: date, cfg: Config) -> EmailMessage:
    """The report email: subject from the alerts, a plain-text and an HTML part, the charts inline."""
    c = content
    with_capacity = c.capacity is not None and c.capacity.in_email
    charts = [ch for ch in charts if with_capacity or Path(ch.path).name != CAPACITY_PNG]
    email = report_email.EmailContent(
        as_of=as_of, horizon=c.horizon, alerts=c.alerts, summary=c.summary, named=c.named, rest=c.rest,
        service_target=report_email.service_target(cfg.staffing), last_day=c.last_day, last_day_rows=c.last_day_rows,
        headlines=[h for h in (c.headline, c.backtest_headline) if h], notes=c.notes, charts=charts,
        service_delivered=c.delivered, capacity=c.capacity if with_capacity else None)
    return mail.build_report_message(report_email.report_subject(as_of, c.alerts), cfg.report.smtp.sender,
                                     cfg.report.recipients, report_email.report_text(email),
                                     report_email.report_html(email), charts)
