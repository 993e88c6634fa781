"""Step 5 end to end on a temp SQLite DB with hand-inserted silver and gold rows: charts, .eml, mail, bookkeeping."""

from __future__ import annotations

import email
import importlib
import logging
from datetime import date
from email import policy
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from common import db, tables
from common.config import load_config
from tests.conftest import write_config
from tests.test_mail import FAKE_PASSWORD, free_port, smtp_server  # noqa: F401 - smtp_server is a fixture
from tests.test_plots import png_size

report = importlib.import_module("5_report")

AS_OF = date(2025, 3, 10)  # a Monday
CHARTS = ["accuracy.png", "forecast.png", "past.png", "staffing.png", "totals.png"]


def _insert_gold(conn, silver: pd.DataFrame, forecast: pd.DataFrame, staffing: pd.DataFrame) -> None:
    """silver_daily, gold_forecast_daily, gold_staffing_interval and the per-day staffing they sum to."""
    staffing_daily = (staffing.assign(date=staffing["interval_start"].dt.normalize())
                      .groupby(["run_id", "forecast_origin", "queue", "date"], as_index=False)
                      .agg(volume_p50=("volume_p50", "sum"), staff_hours_p10=("staff_p10", "sum"),
                           staff_hours_p50=("staff_p50", "sum"), staff_hours_p90=("staff_p90", "sum"),
                           peak_staff_p10=("staff_p10", "max"), peak_staff_p50=("staff_p50", "max"),
                           peak_staff_p90=("staff_p90", "max")))
    db.insert_frame(conn, tables.silver_daily, silver)
    db.insert_frame(conn, tables.gold_forecast_daily, forecast)
    db.insert_frame(conn, tables.gold_staffing_interval, staffing)
    db.insert_frame(conn, tables.gold_staffing_daily, staffing_daily)


def _seed(config: Path, accuracy: bool = True) -> None:
    """8 weeks of Mon-Fri actuals and the gold rows of origin 2025-03-10 for Billing (model) and Support (fallback)."""
    engine = db.make_engine(load_config(config).database_url)
    db.ensure_schema(engine)
    days = pd.date_range("2025-01-13", "2025-03-09")
    silver = pd.DataFrame([{"queue": q, "date": d, "offered": (v if d.weekday() < 5 else 0.0), "offered_outside_hours": 0.0,
                            "is_open": d.weekday() < 5, "is_holiday": False}
                           for q, v in (("Billing", 100.0), ("Support", 40.0)) for d in days])
    fdays = pd.date_range("2025-03-10", periods=14)
    forecast = pd.DataFrame([{"run_id": "r3", "forecast_origin": pd.Timestamp(AS_OF), "queue": q, "date": d,
                              "horizon_day": h + 1, "p10": 0.8 * p, "p50": p, "p90": 1.2 * p, "method": m,
                              "fallback_reason": reason}
                             for q, v, m, reason in (("Billing", 100.0, "lightgbm", None),
                                                     ("Support", 40.0, "seasonal_naive", "no production model"))
                             for h, d in enumerate(fdays) for p in [v if d.weekday() < 5 else 0.0]])
    staffing = pd.DataFrame([{"run_id": "r3", "forecast_origin": pd.Timestamp(AS_OF), "queue": q,
                              "interval_start_utc": t - pd.Timedelta(hours=1), "interval_start": t,
                              "volume_p10": 1.0, "volume_p50": 2.0, "volume_p90": 3.0, "aht_seconds": 300.0,
                              "workload_minutes": 10.0, "agents_p10": s, "agents_p50": s, "agents_p90": s + 1,
                              "staff_p10": s, "staff_p50": s, "staff_p90": s + 1}
                             for q, base in (("Billing", 3), ("Support", 1)) for d in fdays[:7]
                             for k in range(6) for t in [d + pd.Timedelta(hours=7, minutes=30 * k)]
                             for s in [base + k if d.weekday() < 5 and k > 0 else 0]])
    with engine.begin() as conn:
        _insert_gold(conn, silver, forecast, staffing)
        if accuracy:
            _seed_evaluation(conn)


def _seed_evaluation(conn) -> None:  # noqa: ANN001
    scored = pd.DataFrame([{"run_id": "r4", "forecast_origin": d, "queue": "Billing", "date": d, "method": "lightgbm",
                            "horizon_day": 1, "weekday": d.weekday(), "actual": 100.0, "p10": 90.0, "p50": 118.0,
                            "p90": 130.0, "error": 18.0, "abs_error": 18.0, "is_open": True, "in_band": True}
                           for d in pd.date_range("2025-03-03", "2025-03-07")])
    summary = pd.DataFrame([{"run_id": "r4", "as_of": pd.Timestamp(AS_OF), "scope": "overall", "scope_value": "all",
                             "method": "forecast", "window_days": 28, "n_days": 5, "wmape": 0.18, "bias": 0.18,
                             "coverage": 1.0, "wmape_naive": 0.25}])
    alerts = pd.DataFrame([{"run_id": "r4", "as_of": pd.Timestamp(AS_OF), "created_at": pd.Timestamp("2025-03-10 01:00"),
                            "severity": "critical", "alert_rule": "daily_mape", "queue": "Billing", "metric": "daily_mape",
                            "value": 0.18, "threshold": 0.15, "message": "Billing: yesterday's MAPE 18% is above 15%"}])
    db.insert_frame(conn, tables.gold_forecast_accuracy, scored)
    db.insert_frame(conn, tables.gold_forecast_accuracy_summary, summary)
    db.insert_frame(conn, tables.gold_alerts, alerts)
    db.insert_frame(conn, tables.pipeline_runs, pd.DataFrame([{
        "run_id": "r4", "step": "4_evaluate", "as_of": pd.Timestamp(AS_OF), "started_at": pd.Timestamp("2025-03-10 01:00"),
        "finished_at": pd.Timestamp("2025-03-10 01:01"), "status": "success", "rows_written": 7, "message": ""}]))


def _run(config: Path, *extra: str) -> int:
    return report.main(["--config", str(config), "--as-of", AS_OF.isoformat(), *extra])


def _report_run(config: Path) -> dict:
    with db.make_engine(load_config(config).database_url).connect() as conn:
        rows = conn.execute(select(tables.pipeline_runs).where(tables.pipeline_runs.c.step == "5_report")).mappings().all()
    assert len(rows) >= 1
    return dict(rows[-1])


def _out(tmp_path: Path) -> Path:
    return tmp_path / "output" / AS_OF.isoformat()


def test_report_is_mailed_with_alerts_summary_and_inline_charts(tmp_path: Path, smtp_server) -> None:  # noqa: F811
    controller, inbox = smtp_server
    config = write_config(tmp_path, report__recipients=["wfm@example.com", "lead@example.com"],
                          report__smtp={"host": "127.0.0.1", "port": controller.port, "security": "none"})
    _seed(config)
    assert _run(config) == 0
    [env] = inbox.envelopes
    assert env.rcpt_tos == ["wfm@example.com", "lead@example.com"]
    msg = email.message_from_bytes(env.content, policy=policy.default)
    assert msg["Subject"] == "WFM forecast 2025-03-10: alerts: 1 critical"
    html = msg.get_body(preferencelist=("html",)).get_content()
    cids = [p["Content-ID"].strip("<>") for p in msg.walk() if p.get_content_type() == "image/png"]
    assert len(cids) == 5 and all(f"cid:{c}" in html for c in cids)
    summary_part, details = html.split("Details for the analyst")
    # The manager's summary: the alert in plain words, no config key; the rule's own message in the details.
    assert "Billing: the latest day&#39;s forecast was 18% off (more than 15%)." in summary_part
    assert "alerts." not in summary_part.replace("the alerts.* settings", "")
    assert "yesterday&#39;s MAPE 18% is above 15%" in details
    # Sunday 9 March was closed: the last open day is Friday 7 March; Billing's forecast made 1 day ahead was 118
    # for 100 calls: +18.0%. Support has no scored forecast, so no "All queues" total.
    start = summary_part.index("Last open day, Fri 07 Mar: forecast vs actual")
    last_day = summary_part[start:summary_part.index("</table>", start)]
    assert ">Billing<" in last_day and ">118<" in last_day and ">100<" in last_day and ">+18.0%<" in last_day
    assert "Support" not in last_day and "All queues" not in last_day
    assert ("80% of calls answered within 20 s, agents busy at most 85% of the time, shrinkage 30% (staff = agents "
            "on the phones / 0.70)") in summary_part
    # Billing: 10 weekdays x 100 = 1,000 forecast (p10 800, p90 1,200); the 14 days before: 10 x 100 = 1,000.
    # Peak staff p50: intervals k = 1..5 have 3 + k staff -> 8.
    start = html.index(">Billing<", html.index("Next 14 days per queue"))
    billing_row = html[start:html.index("</tr>", start)]
    assert "1,000" in billing_row and "800–1,200" in billing_row and "+0.0%" in billing_row and ">8<" in billing_row
    assert html.index("Next 14 days per queue") < html.index("cid:") < html.index("Details for the analyst")
    assert "seasonal_naive: no production model" in html
    assert "wMAPE 18.0% (seasonal naive: 25.0%)" in html
    run = _report_run(config)
    assert run["status"] == "success" and "email sent to 2 recipients" in run["message"]
    assert sorted(p.name for p in _out(tmp_path).iterdir()) == sorted([*CHARTS, "report.eml"])
    for name in CHARTS:
        width, height = png_size(_out(tmp_path) / name)
        assert 900 <= width <= 1600 and 300 <= height <= 4000, name


def test_smtp_down_the_step_still_succeeds_keeps_the_eml_and_says_so(tmp_path: Path, monkeypatch, caplog,
                                                                     capsys) -> None:
    monkeypatch.setenv("WFM_TEST_SMTP_PW", FAKE_PASSWORD)
    caplog.set_level(logging.DEBUG)
    config = write_config(tmp_path, report__smtp={"host": "127.0.0.1", "port": free_port(), "security": "none",
                                                  "username": "wfm", "password_env": "WFM_TEST_SMTP_PW"})
    _seed(config)
    assert _run(config) == 0
    run = _report_run(config)
    assert run["status"] == "success"
    assert "SMTP failed: 127.0.0.1:" in run["message"] and ".eml written to" in run["message"]
    eml = _out(tmp_path) / "report.eml"
    kept = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert kept["Subject"] == "WFM forecast 2025-03-10: alerts: 1 critical"
    assert FAKE_PASSWORD not in run["message"] and FAKE_PASSWORD not in caplog.text
    assert FAKE_PASSWORD not in capsys.readouterr().err and FAKE_PASSWORD.encode() not in eml.read_bytes()


def test_first_night_without_accuracy_or_alerts_reports_what_is_missing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    _seed(config, accuracy=False)
    assert _run(config, "--no-email") == 0
    run = _report_run(config)
    assert run["status"] == "success" and "email not sent (--no-email)" in run["message"]
    msg = email.message_from_bytes((_out(tmp_path) / "report.eml").read_bytes(), policy=policy.default)
    assert msg["Subject"] == "WFM forecast 2025-03-10: no open alerts"
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "No open alerts" in html and "No forecast accuracy yet" in html
    assert "4_evaluate.py has not run successfully for 2025-03-10" in html
    for name in CHARTS:
        assert png_size(_out(tmp_path) / name)[0] > 0


def test_rerunning_the_as_of_overwrites_the_same_files(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    _seed(config)
    assert _run(config, "--no-email") == 0
    first = {p.name: p.stat().st_mtime_ns for p in _out(tmp_path).iterdir()}
    assert _run(config, "--no-email") == 0
    second = {p.name: p.stat().st_mtime_ns for p in _out(tmp_path).iterdir()}
    assert sorted(first) == sorted(second) == sorted([*CHARTS, "report.eml"])
    assert all(second[n] >= first[n] for n in first)


def test_no_forecast_for_the_origin_is_a_data_error(tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path)
    assert _run(config, "--no-email") == 2
    assert "run 3_forecast.py --as-of 2025-03-10 first" in capsys.readouterr().err
    assert _report_run(config)["status"] == "failed"
    assert not _out(tmp_path).exists()


def test_help_explains_the_step(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        report.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--no-email" in out and "report.eml" in out and "SMTP failed" in out


def test_an_output_folder_that_cannot_be_written_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    # A file where the output folder should be: what a missing folder on a read-only file system looks like to
    # the step (tests run as root here, so folder permissions would not stop the write).
    (tmp_path / "blocked").write_text("a file, not a folder\n")
    config = write_config(tmp_path, report__output_dir="blocked/output")
    _seed(config)
    assert _run(config, "--no-email") == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("5_report: error: cannot write the report under ") and "report.output_dir" in last
    assert _report_run(config)["status"] == "failed"


def _seed_many(config: Path, n: int) -> None:
    """n queues Q01..Qn, queue i taking i calls every weekday (closed at weekends), 8 weeks back and 14 days ahead."""
    engine = db.make_engine(load_config(config).database_url)
    db.ensure_schema(engine)
    queues = [(f"Q{i:02d}", float(i)) for i in range(1, n + 1)]
    days, fdays = pd.date_range("2025-01-13", "2025-03-09"), pd.date_range("2025-03-10", periods=14)
    silver = pd.DataFrame([{"queue": q, "date": d, "offered": v if d.weekday() < 5 else 0.0, "offered_outside_hours": 0.0,
                            "is_open": d.weekday() < 5, "is_holiday": False} for q, v in queues for d in days])
    forecast = pd.DataFrame([{"run_id": "r3", "forecast_origin": pd.Timestamp(AS_OF), "queue": q, "date": d,
                              "horizon_day": h + 1, "p10": p, "p50": p, "p90": p, "method": "lightgbm",
                              "fallback_reason": None}
                             for q, v in queues for h, d in enumerate(fdays) for p in [v if d.weekday() < 5 else 0.0]])
    staffing = pd.DataFrame([{"run_id": "r3", "forecast_origin": pd.Timestamp(AS_OF), "queue": q,
                              "interval_start_utc": t - pd.Timedelta(hours=1), "interval_start": t,
                              "volume_p10": v, "volume_p50": v, "volume_p90": v, "aht_seconds": 300.0,
                              "workload_minutes": 5.0 * v, "agents_p10": 1, "agents_p50": 1, "agents_p90": 1,
                              "staff_p10": 2, "staff_p50": 2, "staff_p90": 2}
                             for q, v in queues for d in fdays[:7] if d.weekday() < 5
                             for t in [d + pd.Timedelta(hours=9)]])
    with engine.begin() as conn:
        _insert_gold(conn, silver, forecast, staffing)


def test_sixty_queues_chart_the_busiest_and_one_aggregate_panel_in_a_small_email(tmp_path: Path) -> None:
    config = write_config(tmp_path, report__top_queues=3)
    _seed_many(config, 60)
    assert _run(config, "--no-email") == 0
    eml = _out(tmp_path) / "report.eml"
    # Before report.top_queues: 60 panels per chart, a 4.2 MB email after 198 s (after: 152 KB, 9 s; loaded machine).
    assert eml.stat().st_size < 300_000
    for name in CHARTS:  # 3 queues + 1 aggregate = 4 panels in 2 columns: two rows, about 700 pixels
        assert png_size(_out(tmp_path) / name)[1] < 1000, name
    html = email.message_from_bytes(eml.read_bytes(), policy=policy.default).get_body(("html",)).get_content()
    summary = html[html.index("Next 14 days per queue"):html.index("cid:")]
    assert [q for q in (f"Q{i:02d}" for i in range(1, 61)) if f">{q}<" in summary] == ["Q58", "Q59", "Q60"]
    # All other queues: queues 1..57 take 1+...+57 = 1,653 calls a weekday, 10 weekdays in 14 days -> 16,530,
    # the same as the 14 days before (+0.0%).
    start = summary.index(">All other queues (57)<")
    others_row = summary[start:summary.index("</tr>", start)]
    assert ">16,530<" in others_row and "16,530–16,530" in others_row and "+0.0%" in others_row
    rest = html[html.index("The other 57 queues"):]
    assert all(f">Q{i:02d}<" in rest for i in range(1, 58)) and ">Q58<" not in rest
    assert "<td>Q01</td><td>10</td><td>10–10</td><td>10</td><td>+0.0%</td><td>2</td><td>model</td>" in rest


def test_night_one_reports_step_2s_backtest_as_a_labelled_track_record(tmp_path: Path) -> None:
    # A new installation: 150 days of silver, no model, nothing scored yet. Step 2 trains and publishes its
    # backtest, step 3 forecasts, step 5 reports: the accuracy is there on night 1, labelled as a backtest.
    from tests import test_forecast_step as fs

    config = write_config(tmp_path, training__params=fs.TINY)  # the model beats naive: it is promoted
    cfg = load_config(config)
    intervals, daily = fs.silver_frames(cfg)
    engine = db.make_engine(cfg.database_url)
    db.ensure_schema(engine)
    with engine.begin() as conn:
        db.insert_frame(conn, tables.silver_interval, intervals)
        db.insert_frame(conn, tables.silver_daily, daily)
    args = ["--config", str(config), "--as-of", fs.AS_OF.isoformat(), "--log-level", "WARNING"]
    assert importlib.import_module("2_train").main(args) == 0
    assert fs.forecast_step.main(args) == 0
    assert report.main([*args, "--no-email"]) == 0
    with engine.connect() as conn:
        summary = db.read_table(conn, tables.gold_forecast_accuracy_summary)
    overall = summary.loc[(summary["scope"] == "overall") & (summary["method"] == "backtest_lightgbm")].iloc[0]
    msg = email.message_from_bytes((_out(tmp_path) / "report.eml").read_bytes(), policy=policy.default)
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    summary_part = html.split("Details for the analyst")[0]
    headline = "Track record (backtest, not live forecasts): replayed on 4 weekly origins"
    assert headline in summary_part and headline in text
    assert f"had wMAPE {overall['wmape']:.1%} (seasonal naive: {overall['wmape_naive']:.1%})" in summary_part
    # each queue's last open day (Billing Fri 7 March, Support Sat 8 March) is one of the backtest's, labelled so
    assert "Last open day per queue: forecast vs actual" in summary_part
    assert "Billing, Fri 07 Mar <span" in summary_part and "Support, Sat 08 Mar <span" in summary_part
    assert summary_part.count("(backtest)</span>") == 2
    assert "No forecast accuracy yet" not in html and "accuracy shown is step 2&#39;s backtest" in html
    assert png_size(_out(tmp_path) / "accuracy.png")[1] > 400  # drawn, not the one-line "no accuracy yet" picture
