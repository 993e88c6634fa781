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
from common.config import SmtpConfig, load_config
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
        "severity": ["warning", "critical"], "alert_rule": ["bias_weekly", "mape_daily"], "queue": ["Support", "Billing <VIP>"],
        "metric": ["bias", "mape"], "value": [0.04, 0.22], "threshold": [0.03, 0.15],
        "message": ["Support over-forecast 2 weeks running", "Billing MAPE 22% yesterday"]})


def _report_message(tmp_path: Path, recipients=("a@example.com", "b@example.com")):
    charts = [mail.Chart(_png(tmp_path / "forecast.png"), "Daily calls"), mail.Chart(_png(tmp_path / "staffing.png"), "Staff")]
    alerts = report_email.sort_alerts(_alerts())
    summary = pd.DataFrame([{"queue": "Billing", "p50": 1000.0, "p10": 900.0, "p90": 1100.0, "previous": 950.0,
                             "change": 1000 / 950 - 1, "method": "lightgbm", "fallback_reason": None,
                             "peak_staff_p50": 12, "peak_staff_p10": 10, "peak_staff_p90": 14,
                             "peak_date": pd.Timestamp("2025-03-10"), "staff_hours_p50": 400.0, "wmape": 0.08}])
    html_body = report_email.report_html(AS_OF, 14, alerts, summary, charts, ["No forecast accuracy yet."])
    text = report_email.report_text(AS_OF, 14, alerts, summary, [])
    return mail.build_report_message(report_email.report_subject(AS_OF, alerts), "wfm@example.com", list(recipients), text,
                                     html_body, charts), charts


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
    # Alerts sit above the charts, critical first, and queue names are escaped.
    assert html.index("Billing MAPE 22% yesterday") < html.index("Support over-forecast") < html.index("cid:")
    assert "Billing &lt;VIP&gt;" in html and "<VIP>" not in html
    assert "CRITICAL" in html and "#fde0dc" in html  # severity-coloured row
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
