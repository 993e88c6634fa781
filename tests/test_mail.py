"""The report email and the failure alert, delivered to a real local SMTP server (aiosmtpd) or kept as .eml."""

from __future__ import annotations

import email
import logging
import socket
from datetime import date
from email import policy
from pathlib import Path

import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from matplotlib.figure import Figure

from common import mail, report_email
from common.config import load_config
from common.config_schema import SmtpConfig, StaffingConfig
from tests.conftest import write_config

FAKE_PASSWORD = "FAKE-pw-Zx81-do-not-leak"
AS_OF = date(2025, 3, 10)


class _Inbox:
    """aiosmtpd handler that keeps every envelope it is given."""

    def __init__(self) -> None:
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802 - aiosmtpd's hook
        self.envelopes.append(envelope)
        return "250 Message accepted"


def _authenticate(server, session, envelope, mechanism, auth_data):  # noqa: ANN001 - aiosmtpd's hook
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"wfm" and auth_data.password == FAKE_PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself


def free_port() -> int:
    """A port nothing listens on (bound, read, released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), authenticator=_authenticate,
                            auth_require_tls=False)
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


def _png(path: Path) -> Path:
    fig = Figure(figsize=(2, 1), dpi=50)
    fig.subplots().plot([0, 1], [0, 1])
    fig.savefig(path)
    return path


def _alerts() -> pd.DataFrame:
    return pd.DataFrame({
        "severity": ["warning", "critical"], "alert_rule": ["weekly_bias", "daily_mape"], "queue": ["Support", "Billing <VIP>"],
        "metric": ["weekly_bias", "daily_mape"], "value": [0.04, 0.22], "threshold": [0.03, 0.15],
        "message": ["Support over-forecast 2 weeks running", "Billing MAPE 22% yesterday"]})


def _report_message(tmp_path: Path, recipients=("a@example.com", "b@example.com")):
    charts = [mail.Chart(_png(tmp_path / "forecast.png"), "Daily calls"), mail.Chart(_png(tmp_path / "staffing.png"), "Staff")]
    alerts = report_email.sort_alerts(_alerts())
    summary = pd.DataFrame([{"queue": "Billing", "p50": 1000.0, "p10": 900.0, "p90": 1100.0, "previous": 950.0,
                             "change": 1000 / 950 - 1, "method": "lightgbm", "fallback_reason": None,
                             "peak_staff_p50": 12, "peak_staff_p10": 10, "peak_staff_p90": 14,
                             "peak_date": pd.Timestamp("2025-03-10"), "staff_hours_p50": 400.0, "wmape": 0.08}])
    content = report_email.EmailContent(AS_OF, 14, alerts, summary, summary, summary.iloc[:0],
                                        report_email.service_target(StaffingConfig()),
                                        notes=["No forecast accuracy yet."], charts=charts)
    return mail.build_report_message(report_email.report_subject(AS_OF, alerts), "wfm@example.com", list(recipients),
                                     report_email.report_text(content), report_email.report_html(content),
                                     charts), charts


def _smtp(port: int, **kw) -> SmtpConfig:
    return SmtpConfig(**{"host": "127.0.0.1", "port": port, "security": "none", **kw})


def test_report_email_arrives_with_alerts_on_top_and_charts_inline(tmp_path: Path, smtp_server) -> None:
    controller, inbox = smtp_server
    msg, charts = _report_message(tmp_path)
    delivery = mail.deliver(msg, _smtp(controller.port), tmp_path / "report.eml")
    assert delivery.sent and delivery.recipients == 2
    assert delivery.summary() == "email sent to 2 recipients"
    [env] = inbox.envelopes
    assert env.rcpt_tos == ["a@example.com", "b@example.com"]
    got = email.message_from_bytes(env.content, policy=policy.default)
    assert got["Subject"] == "WFM forecast 2025-03-10: alerts: 1 critical, 1 warning"
    html_part = got.get_body(preferencelist=("html",))
    html = html_part.get_content()
    images = [p for p in got.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 2
    for part in images:
        cid = part["Content-ID"].strip("<>")
        assert f'src="cid:{cid}"' in html
        assert part.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    # Alerts in plain words sit above the charts, critical first; their messages are in the details below them;
    # queue names are escaped.
    assert (html.index("Billing &lt;VIP&gt;: the latest day&#39;s forecast was 22% off (more than 15%).")
            < html.index("Support: the forecast has been too high (risk of over-staffing) by more than 3% for several")
            < html.index("cid:") < html.index("Billing MAPE 22% yesterday") < html.index("Support over-forecast"))
    assert "<VIP>" not in html
    assert "CRITICAL" in html and "#fde0dc" in html  # severity-coloured block
    assert "Billing MAPE 22% yesterday" in got.get_body(preferencelist=("plain",)).get_content()
    assert (tmp_path / "report.eml").is_file()  # the .eml copy is kept even when sent


def test_login_takes_the_password_from_the_env_and_it_never_leaks(tmp_path: Path, smtp_server, monkeypatch,
                                                                  caplog) -> None:
    controller, inbox = smtp_server
    monkeypatch.setenv("WFM_TEST_SMTP_PW", FAKE_PASSWORD)
    caplog.set_level(logging.DEBUG)
    msg, _ = _report_message(tmp_path)
    delivery = mail.deliver(msg, _smtp(controller.port, username="wfm", password_env="WFM_TEST_SMTP_PW"),
                            tmp_path / "report.eml")
    assert delivery.sent, delivery.error
    assert len(inbox.envelopes) == 1
    assert FAKE_PASSWORD.encode() not in inbox.envelopes[0].content
    assert FAKE_PASSWORD.encode() not in (tmp_path / "report.eml").read_bytes()
    assert FAKE_PASSWORD not in caplog.text


def test_wrong_password_is_reported_without_the_password(tmp_path: Path, smtp_server, monkeypatch, caplog) -> None:
    controller, inbox = smtp_server
    monkeypatch.setenv("WFM_TEST_SMTP_PW", FAKE_PASSWORD + "-wrong")
    msg, _ = _report_message(tmp_path)
    delivery = mail.deliver(msg, _smtp(controller.port, username="wfm", password_env="WFM_TEST_SMTP_PW"),
                            tmp_path / "report.eml")
    assert not delivery.sent and inbox.envelopes == []
    assert "SMTPAuthenticationError" in delivery.error
    assert FAKE_PASSWORD not in delivery.summary() and FAKE_PASSWORD not in caplog.text
    assert "SMTP failed" in caplog.text


def test_smtp_down_keeps_the_eml_and_says_why(tmp_path: Path, caplog) -> None:
    msg, _ = _report_message(tmp_path)
    delivery = mail.deliver(msg, _smtp(free_port()), tmp_path / "out" / "report.eml", timeout=5)
    assert not delivery.sent
    assert "ConnectionRefusedError" in delivery.error
    assert delivery.summary().startswith("SMTP failed: 127.0.0.1:")
    assert ".eml written to" in delivery.summary()
    kept = email.message_from_bytes((tmp_path / "out" / "report.eml").read_bytes(), policy=policy.default)
    assert kept["Subject"] == msg["Subject"]
    assert "SMTP failed" in caplog.text


def test_starttls_is_not_skipped_when_the_server_does_not_offer_it(tmp_path: Path, smtp_server, monkeypatch) -> None:
    controller, inbox = smtp_server
    monkeypatch.setenv("WFM_TEST_SMTP_PW", FAKE_PASSWORD)
    msg, _ = _report_message(tmp_path)
    delivery = mail.deliver(msg, _smtp(controller.port, security="starttls", username="wfm",
                                       password_env="WFM_TEST_SMTP_PW"), tmp_path / "report.eml")
    # The credentials are never sent in the clear: no login, no message.
    assert not delivery.sent and inbox.envelopes == []
    assert "STARTTLS" in delivery.error


def test_username_without_the_password_env_is_a_clear_failure(tmp_path: Path, smtp_server, monkeypatch) -> None:
    controller, inbox = smtp_server
    monkeypatch.delenv("WFM_TEST_SMTP_PW", raising=False)
    msg, _ = _report_message(tmp_path)
    delivery = mail.deliver(msg, _smtp(controller.port, username="wfm", password_env="WFM_TEST_SMTP_PW"),
                            tmp_path / "report.eml")
    assert not delivery.sent and inbox.envelopes == []
    assert "WFM_TEST_SMTP_PW" in delivery.error and "report.smtp.password_env" in delivery.error


def test_without_host_only_the_eml_is_written(tmp_path: Path) -> None:
    msg, _ = _report_message(tmp_path)
    delivery = mail.deliver(msg, SmtpConfig(host=""), tmp_path / "report.eml")
    assert (delivery.sent, delivery.error) == (False, None)
    assert delivery.summary() == f"no SMTP host configured (report.smtp.host); .eml written to {tmp_path / 'report.eml'}"


def test_report_summary_takes_each_queues_peak_staffing_day() -> None:
    # Billing: forecast 11 (p10 9, p90 15) vs 70 the span before -> change 11/70 - 1; peak p50 is 7 on 03-11
    # (03-10 has 5); staff hours 10 + 12 = 22. Support has no staffing rows -> empty staffing columns.
    totals = pd.DataFrame({"queue": ["Billing", "Billing", "Support"], "span": [-1, 0, 0],
                           "kind": ["actual", "forecast", "forecast"], "total": [70.0, 11.0, 4.0],
                           "p10": [None, 9.0, 2.0], "p90": [None, 15.0, 6.0]})
    forecast = pd.DataFrame({"queue": ["Billing", "Support", "Support"], "date": pd.to_datetime(["2025-03-10"] * 3),
                             "method": ["lightgbm", "lightgbm", "seasonal_naive"],
                             "fallback_reason": [None, None, "guard: total"]})
    staffing = pd.DataFrame({"queue": ["Billing", "Billing"], "date": pd.to_datetime(["2025-03-10", "2025-03-11"]),
                             "peak_staff_p10": [4, 6], "peak_staff_p50": [5, 7], "peak_staff_p90": [6, 9],
                             "staff_hours_p50": [10.0, 12.0]})
    out = report_email.report_summary(totals, forecast, staffing).set_index("queue")
    assert out.loc["Billing", "change"] == pytest.approx(11 / 70 - 1)
    assert (out.loc["Billing", "peak_staff_p50"], out.loc["Billing", "peak_date"]) == (7, pd.Timestamp("2025-03-11"))
    assert out.loc["Billing", "staff_hours_p50"] == 22.0
    assert pd.isna(out.loc["Support", "peak_staff_p50"]) and pd.isna(out.loc["Support", "previous"])
    assert (out.loc["Support", "method"], out.loc["Support", "fallback_reason"]) == ("seasonal_naive", "guard: total")


def _log(tmp_path: Path) -> Path:
    path = tmp_path / "run.log"
    path.write_text("".join(f"log line {i}\n" for i in range(1, 101)))
    return path


def test_failure_alert_cli_mails_the_last_60_log_lines(tmp_path: Path, smtp_server) -> None:
    controller, inbox = smtp_server
    config = write_config(tmp_path, report__smtp={"host": "127.0.0.1", "port": controller.port, "security": "none"},
                          report__recipients=["ops@example.com"])
    rc = mail.main(["--config", str(config), "--failure", "--subject", "wfm step 3 failed", "--log-file",
                    str(_log(tmp_path))])
    assert rc == 0
    [env] = inbox.envelopes
    got = email.message_from_bytes(env.content, policy=policy.default)
    body = got.get_body(preferencelist=("plain",)).get_content().splitlines()
    assert got["Subject"] == "wfm step 3 failed" and env.rcpt_tos == ["ops@example.com"]
    # 100 lines, the last 60 are lines 41..100.
    assert body[-60:] == [f"log line {i}" for i in range(41, 101)] and "log line 40" not in body
    assert len(list((tmp_path / "output" / "failures").glob("*.eml"))) == 1


def test_failure_alert_without_smtp_host_is_an_eml_without_the_password(tmp_path: Path, monkeypatch) -> None:
    config = write_config(tmp_path)  # default config: no SMTP host
    monkeypatch.setenv("WFM_SMTP_PASSWORD", FAKE_PASSWORD)
    delivery = mail.send_failure_alert(load_config(config), "step 1 failed", f"oops {FAKE_PASSWORD} leaked into a log")
    assert not delivery.sent and delivery.error is None
    assert delivery.eml_path.parent == tmp_path / "output" / "failures"
    raw = delivery.eml_path.read_bytes()
    kept = email.message_from_bytes(raw, policy=policy.default)
    assert kept["Subject"] == "step 1 failed" and "oops *** leaked" in kept.get_content()
    assert FAKE_PASSWORD.encode() not in raw


def test_failure_alert_cli_still_writes_an_eml_when_the_config_is_broken(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("report:\n  output_dir: out\nsource: {kind: nonsense}\n")
    rc = mail.main(["--config", str(config), "--failure", "--subject", "bad config", "--log-file",
                    str(tmp_path / "missing.log")])
    assert rc == 0
    [eml] = (tmp_path / "out" / "failures").glob("*.eml")
    text = email.message_from_bytes(eml.read_bytes(), policy=policy.default).get_content()
    assert "missing.log not found" in text and "config did not load" in text


# --- the email's content, from the templates, on tiny hand-made gold rows ---------------------------------

def _scored(queue: str, day: str, method: str, ahead: int, p50: float, actual: float, is_open: bool = True) -> dict:
    return {"forecast_origin": pd.Timestamp(day) - pd.Timedelta(days=ahead - 1), "queue": queue,
            "date": pd.Timestamp(day), "horizon_day": ahead, "method": method, "actual": actual,
            "p10": 0.8 * p50, "p50": p50, "p90": 1.2 * p50, "is_open": is_open}


def _content(tmp_path: Path) -> report_email.EmailContent:
    """As-of Tue 11 March: Billing forecast 110 the night before for 100 calls (and 130 a week before: not shown),
    "Sales <script>" only in the backtest, 45 for 50; Sunday's closed day is no "last open day"."""
    past = pd.DataFrame([
        _scored("Billing", "2025-03-10", "lightgbm", 1, 110.0, 100.0),
        _scored("Billing", "2025-03-10", "lightgbm", 7, 130.0, 100.0),
        _scored("Billing", "2025-03-10", "naive_benchmark", 1, 90.0, 100.0),
        _scored("Sales <script>x</script>", "2025-03-10", "backtest_lightgbm", 3, 45.0, 50.0),
        _scored("Sales <script>x</script>", "2025-03-09", "backtest_lightgbm", 2, 0.0, 0.0, is_open=False),
    ])
    day, rows = report_email.last_day_vs_actual(past)
    summary = pd.DataFrame([{"queue": q, "p50": p, "p10": 0.9 * p, "p90": 1.1 * p, "previous": p, "change": 0.0,
                             "method": "lightgbm", "fallback_reason": None, "peak_staff_p50": 7, "peak_staff_p10": 6,
                             "peak_staff_p90": 8, "peak_date": pd.Timestamp("2025-03-12"), "staff_hours_p50": 90.0,
                             "wmape": None} for q, p in (("Billing", 1000.0), ("Sales <script>x</script>", 500.0))])
    staffing = StaffingConfig(service_level=0.9, answer_seconds=15, shrinkage=0.35, max_occupancy=0.8)
    return report_email.EmailContent(date(2025, 3, 11), 14, report_email.sort_alerts(_alerts()), summary, summary,
                                     summary.iloc[:0], report_email.service_target(staffing), day, rows,
                                     ["Track record (backtest, not live forecasts): ..."],
                                     charts=[mail.Chart(_png(tmp_path / "past.png"), "Forecast vs actual")])


def test_last_day_vs_actual_takes_each_queues_latest_open_day_the_nearest_forecast_and_a_total() -> None:
    past = pd.DataFrame([_scored("Billing", "2025-03-10", "lightgbm", 1, 110.0, 100.0),
                         _scored("Billing", "2025-03-10", "lightgbm", 7, 130.0, 100.0),
                         _scored("Sales", "2025-03-10", "backtest_lightgbm", 3, 45.0, 50.0)])
    day, rows = report_email.last_day_vs_actual(past)
    assert day == pd.Timestamp("2025-03-10")
    got = rows.set_index("queue")
    # Billing: 110 vs 100 -> +10%; Sales (backtest): 45 vs 50 -> -10%; all queues: 155 vs 150 -> +3.33%.
    assert got.loc["Billing", ["forecast", "actual", "ahead", "kind"]].tolist() == [110.0, 100.0, 1, "forecast"]
    assert got.loc["Sales", "kind"] == "backtest" and got.loc["Sales", "error"] == pytest.approx(-0.10)
    assert got.loc["All queues", ["forecast", "actual"]].tolist() == [155.0, 150.0]
    assert got.loc["All queues", "error"] == pytest.approx(5 / 150)
    # folded queues are summed into the "All other queues (K)" row
    _, folded = report_email.last_day_vs_actual(past, others=["Billing", "Sales"])
    assert folded["queue"].tolist() == ["All other queues (2)"] and folded["forecast"].iloc[0] == 155.0


def test_the_summary_a_manager_reads_first_has_plain_words_yesterday_and_the_service_target(tmp_path: Path) -> None:
    content = _content(tmp_path)
    html = report_email.report_html(content)
    summary, details = html.split("Details for the analyst")
    # yesterday (Mon 10 March): Billing 110 vs 100 (+10.0%), Sales 45 vs 50 (-10.0%, backtest), total 155 vs 150
    start = summary.index("Yesterday, Mon 10 Mar: forecast vs actual")
    table = summary[start:summary.index("</table>", start)]
    for cells in (">Billing<", ">110<", ">100<", ">+10.0%<", ">45<", ">50<", ">-10.0%<", ">155<", ">150<", ">+3.3%<"):
        assert cells in table, cells
    assert "(backtest)" in table and ">130<" not in table
    assert ("90% of calls answered within 15 s, agents busy at most 80% of the time, shrinkage 35% (staff = agents "
            "on the phones / 0.65)") in summary
    assert summary.index("Alerts") < summary.index("Yesterday") < summary.index("Next 14 days") < summary.index("cid:")
    assert "alerts." not in summary.replace("the alerts.* settings", "")  # config keys are for the analyst
    assert "(alerts." not in summary and "Billing MAPE 22% yesterday" in details
    # queue names are data: escaped everywhere, in the HTML and never run
    assert "<script>" not in html and "Sales &lt;script&gt;x&lt;/script&gt;" in summary
    assert 'max-width:600px' in html and "<th" in html and html.count("<th") < 30  # one narrow column
    text = report_email.report_text(content)
    assert "Billing: forecast 110, actual 100, off by +10.0%" in text
    assert "Sales <script>x</script> (backtest): forecast 45, actual 50, off by -10.0%" in text
    assert "90% of calls answered within 15 s" in text and "Track record (backtest" in text


@pytest.mark.parametrize(("rule", "severity", "value", "limit", "words"), [
    ("daily_mape", "critical", 0.22, 0.15, "Billing: the latest day's forecast was 22% off (more than 15%)."),
    ("weekly_bias", "critical", -0.07, 0.05,
     "Billing: last week's forecast was 7% too low (risk of under-staffing)."),
    ("data_freshness", "warning", 3.5, 2.0,
     "Yesterday's call data looks incomplete (3.5 h missing at the end of the day)."),
    ("model_vs_naive", "warning", 0.12, 0.10,
     "Billing: the model is not beating a simple same-weekday-last-week forecast (12% vs 10% error)."),
])
def test_alerts_in_plain_words_name_no_config_key(rule, severity, value, limit, words) -> None:
    row = pd.DataFrame([{"severity": severity, "alert_rule": rule, "queue": None if rule == "data_freshness" else "Billing",
                         "metric": rule, "value": value, "threshold": limit, "message": "(alerts.x)"}])
    assert report_email.alert_in_words(next(row.itertuples(index=False))) == words
