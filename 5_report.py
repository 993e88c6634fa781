#!/usr/bin/env python3
"""Step 5: PNG charts and the report email for forecast origin --as-of.

Reads the gold tables of forecast origin D (gold_forecast_daily,
gold_staffing_interval, gold_staffing_daily), the last 8 weeks of
silver_daily, recent accuracy (gold_forecast_accuracy and the as-of's
gold_forecast_accuracy_summary), the track record (step 2's latest backtest,
methods backtest_*) and the alerts of D (gold_alerts), and writes
into <report.output_dir>/<D>/ (re-running D overwrites the same files):
  forecast.png   per queue: 8 weeks of actuals, then the forecast p50 and p10-p90 band
  totals.png     per queue: the horizon's forecast total vs the same span in recent weeks
  staffing.png   per queue: staff to schedule per interval for the next 7 days
  past.png       per queue: the last 6 weeks' actuals vs what was forecast 1 and 7 days ahead (and the backtest)
  accuracy.png   daily error and weekly bias of recent forecasts (and the backtest), with the alert thresholds
  capacity.png   when there is a capacity plan: its weekly FTE need p10-p90 vs supply per queue and the centre; the
                 email shows it and the plan's sentences once a week (the night step 6 plans); --scenario NAME adds
                 that gold_capacity_plan scenario (dashed) and a table comparing it with the published plan
  report.eml     the email, always kept: a one-column summary for a manager (alerts in plain words, yesterday's
                 forecast vs actual, the next days per queue, the service target, accuracy), the charts inline,
                 then the details for the analyst
"Per queue" means the report.top_queues busiest queues (forecast volume) by name and one "All other queues (K)"
panel summing the rest; the email's tables list every queue. What is missing (first night: no scored forecast yet)
is drawn as a note on the chart and listed in the email. The email is sent when report.smtp.host is set; the
SMTP password comes from the environment variable named in
report.smtp.password_env. An SMTP failure does not fail the step (exit code 0): it
is logged, the .eml is kept, and pipeline_runs records status success with
"SMTP failed: <reason>" in the message. No rows are written to the database.

Example:  python 5_report.py --as-of 2025-03-10 [--no-email] [--scenario hire20]
"""

from __future__ import annotations

import logging
import sys
import time

from common import mail, report_step
from common.cli import StepContext, StepResult, run_step, step_parser
from common.errors import DataError, PipelineError

log = logging.getLogger(__name__)


def body(ctx: StepContext) -> StepResult:
    cfg, as_of = ctx.cfg, ctx.as_of
    started = time.perf_counter()

    # Load inputs
    with ctx.engine.connect() as conn:
        inputs = report_step.load_inputs(conn, as_of, cfg.alerts.horizon_day, ctx.args.scenario)
    if inputs.forecast.empty:
        raise DataError(f"gold_forecast_daily has no rows for forecast_origin {as_of}: "
                        f"run 3_forecast.py --as-of {as_of} first")
    log.info("report: %d forecast rows, %d actual days, %d staffing intervals, %d accuracy rows, %d alerts (%.1fs)",
             len(inputs.forecast), len(inputs.actuals), len(inputs.staffing), len(inputs.accuracy),
             len(inputs.alerts), time.perf_counter() - started)

    # Process data
    content = report_step.prepare(inputs, as_of, cfg)

    # Save outputs: the charts and the message (files only; re-running the as-of overwrites them)
    out_dir = cfg.path(cfg.report.output_dir) / as_of.isoformat()
    try:  # full disk, read-only or missing folder: one line (each file is written whole or not at all)
        charts = report_step.write_charts(content, as_of, out_dir, cfg)
        log.info("report: %d charts written to %s (%.1fs)", len(charts), out_dir, time.perf_counter() - started)
        msg = report_step.compose(content, charts, as_of, cfg)
        delivery = mail.deliver(msg, cfg.report.smtp, out_dir / "report.eml", send_mail=not ctx.args.no_email)
    except OSError as exc:
        raise PipelineError(f"cannot write the report under {out_dir}: {exc.strerror or exc}"
                            f"{f' ({exc.filename})' if exc.filename else ''}; free disk space or point "
                            f"report.output_dir at a writable folder, then re-run 5_report.py --as-of {as_of}") from None
    return StepResult(0, f"{len(charts)} charts and report.eml in {out_dir}; {len(content.alerts)} open alerts; "
                         f"{delivery.summary()}")


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("5_report.py", __doc__)
    parser.add_argument("--no-email", action="store_true", dest="no_email",
                        help="write the charts and report.eml but do not send the email")
    parser.add_argument("--scenario", metavar="NAME", help="compare capacity plan scenario NAME with the published one")
    return run_step("5_report", parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())
