"""Email messages and their delivery: build an `EmailMessage`, keep an .eml copy, send it over SMTP; the failure alert.

What the report says (its summary, HTML and text) is `common/report_email.py`; this module only packs and delivers.

Every message is written as an .eml file first (beside the charts, or under
`<report.output_dir>/failures/`), then sent when `report.smtp.host` is set. A
send that fails is logged and returned as a `Delivery` with the reason; it
never raises, so a mail server being down never loses the charts or stops the
nightly run. The SMTP password is read from the environment variable named in
`report.smtp.password_env` at send time only; it is never logged, never put
into a message, and removed from any error text before that text goes
anywhere.

Failure alert from a shell (run_daily.sh), with the last lines of the run's log:
    python -m common.mail --config config.yaml --failure --subject "step 3 failed" --log-file logs/run.log
Exit code 0 when the alert was sent or (no SMTP host configured) written as .eml; 1 when SMTP failed (.eml
written anyway); 2 when neither was possible.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import smtplib
import ssl
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import yaml

from common.config_schema import Config, ReportConfig, SmtpConfig
from common.files import atomic_write
from common.redact import mask_url

log = logging.getLogger(__name__)

_MAIL_DOMAIN = "wfm-forecast"


@dataclass(frozen=True)
class Chart:
    """A PNG to show inline, with the heading the email puts above it."""

    path: Path
    title: str

    @property
    def cid(self) -> str:
        return f"{Path(self.path).stem}@{_MAIL_DOMAIN}"


@dataclass(frozen=True)
class Delivery:
    """What became of one message: sent or not, to how many, where its .eml copy is, and why not."""

    sent: bool
    recipients: int
    eml_path: Path | None
    error: str | None = None      # the SMTP failure (password removed), None when sent or not attempted
    skipped: str | None = None    # why sending was not attempted (no host, --no-email, no recipients)

    def summary(self) -> str:
        """One line for pipeline_runs.message and the log."""
        eml = f".eml written to {self.eml_path}" if self.eml_path else "no .eml written"
        if self.sent:
            return f"email sent to {self.recipients} recipient{'s' if self.recipients != 1 else ''}"
        if self.error:
            return f"SMTP failed: {self.error}; {eml}"
        return f"{self.skipped}; {eml}"


class SmtpFailure(Exception):
    """Sending failed; the message is safe to log (the password has been removed)."""


# --- messages -------------------------------------------------------------------------------------------

def _envelope(subject: str, sender: str, recipients: Sequence[str]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    if recipients:
        msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=_MAIL_DOMAIN)  # a fixed domain: getfqdn() can stall on a badly set up host
    return msg


def build_report_message(subject: str, sender: str, recipients: Sequence[str], text: str, html_body: str,
                         charts: Sequence[Chart]) -> EmailMessage:
    """multipart/alternative: the text part, and the HTML part with its charts as multipart/related cid: images."""
    msg = _envelope(subject, sender, recipients)
    msg.set_content(text)
    msg.add_alternative(html_body, subtype="html")
    html_part = msg.get_payload()[1]
    for chart in charts:
        html_part.add_related(Path(chart.path).read_bytes(), maintype="image", subtype="png", cid=f"<{chart.cid}>",
                              filename=Path(chart.path).name, disposition="inline")
    return msg


def build_text_message(subject: str, sender: str, recipients: Sequence[str], body: str) -> EmailMessage:
    """A plain-text message (the failure alert)."""
    msg = _envelope(subject, sender, recipients)
    msg.set_content(body)
    return msg


# --- delivery -------------------------------------------------------------------------------------------

def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def send(msg: EmailMessage, smtp: SmtpConfig, timeout: float = 30.0) -> int:
    """Send over SMTP; return how many recipients the server accepted. Raises SmtpFailure (password-free text)."""
    password = os.environ.get(smtp.password_env, "") if smtp.username else ""
    if smtp.username and not password:
        raise SmtpFailure(f"report.smtp.username is set but environment variable {smtp.password_env} "
                          "(report.smtp.password_env) is empty or not set")
    recipients = [a.strip() for a in str(msg.get("To", "")).split(",") if a.strip()]
    try:
        context = ssl.create_default_context()
        if smtp.security == "ssl":
            server = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=context)
        else:
            server = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        with server:
            if smtp.security == "starttls":
                server.starttls(context=context)  # refuses, rather than sending credentials in the clear
            if smtp.username:
                server.login(smtp.username, password)
            refused = server.send_message(msg)
    except Exception as exc:  # noqa: BLE001 - any failure to send is a delivery failure, reported not raised
        text = f"{type(exc).__name__}: {exc}".strip()
        raise SmtpFailure(_redact(f"{smtp.host}:{smtp.port} ({smtp.security}): {text}", password)) from None
    if refused:
        log.warning("SMTP server refused %d recipient(s): %s", len(refused), ", ".join(sorted(refused)))
    return len(recipients) - len(refused)


def write_eml(msg: EmailMessage, path: Path) -> Path:
    """The message as an .eml file (opens in any mail client); replaces a previous file of the same name."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(msg.as_bytes()))  # a reader never sees half a file


def deliver(msg: EmailMessage, smtp: SmtpConfig, eml_path: Path, send_mail: bool = True,
            timeout: float = 30.0) -> Delivery:
    """Write the .eml copy, then send when configured. Never raises for an SMTP problem: the Delivery says it."""
    eml = write_eml(msg, eml_path)
    recipients = [a for a in str(msg.get("To", "")).split(",") if a.strip()]
    if not send_mail:
        return Delivery(False, 0, eml, skipped="email not sent (--no-email)")
    if not smtp.host:
        return Delivery(False, 0, eml, skipped="no SMTP host configured (report.smtp.host)")
    if not recipients:
        return Delivery(False, 0, eml, skipped="no recipients configured (report.recipients)")
    try:
        accepted = send(msg, smtp, timeout)
    except SmtpFailure as exc:
        log.warning("SMTP failed: %s; the message is kept in %s", exc, eml)
        return Delivery(False, 0, eml, error=str(exc))
    log.info("email %r sent to %d recipient(s) via %s:%d", msg["Subject"], accepted, smtp.host, smtp.port)
    return Delivery(True, accepted, eml)


# --- failure alert --------------------------------------------------------------------------------------

def log_tail(path: Path, lines: int = 60) -> str:
    """The last `lines` lines of a log file (undecodable bytes replaced), or a line saying it is missing."""
    path = Path(path)
    if not path.is_file():
        return f"(log file {path} not found)"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


def send_failure_alert(cfg: Config, subject: str, body_text: str, timeout: float = 30.0) -> Delivery:
    """A short text mail about a failed run; always kept as .eml under <report.output_dir>/failures/."""
    return _failure_alert(cfg.report, cfg.path(cfg.report.output_dir), subject, body_text, timeout)


def _failure_alert(report: ReportConfig, output_dir: Path, subject: str, body_text: str, timeout: float) -> Delivery:
    # A log tail can hold anything a step printed: the SMTP password, if it is in the environment, goes out of it,
    # and so do the credentials of any URL in it (up to the last '@': a raw '@' in a password).
    password = os.environ.get(report.smtp.password_env, "")
    msg = build_text_message(subject, report.smtp.sender, report.recipients, mask_url(_redact(body_text, password)))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", subject).strip("-")[:60] or "failure"
    return deliver(msg, report.smtp, Path(output_dir) / "failures" / f"{stamp}_{slug}.eml", timeout=timeout)


def _report_config_only(path: Path) -> ReportConfig:
    """The `report:` section alone, for when the whole config does not load (a bad config may be the failure)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return ReportConfig.model_validate(raw.get("report") or {})
    except Exception:  # noqa: BLE001 - the alert must still go somewhere: defaults write an .eml
        return ReportConfig()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.mail", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="config file (default: env WFM_CONFIG, else config.yaml)")
    parser.add_argument("--failure", action="store_true", required=True, help="send a failure alert (the only mode)")
    parser.add_argument("--subject", required=True, help="the alert's subject line")
    parser.add_argument("--log-file", default=None, help="log whose last lines go into the alert")
    parser.add_argument("--lines", type=int, default=60, help="how many log lines (default 60)")
    parser.add_argument("--body", default="", help="text above the log tail")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    body = args.body or "The wfm-forecast nightly run failed."
    if args.log_file:
        body += f"\n\nLog: {args.log_file}\n--- last {args.lines} lines ---\n{log_tail(Path(args.log_file), args.lines)}\n"
    from common.config import load_config
    from common.errors import ConfigError

    config_path = Path(args.config or os.environ.get("WFM_CONFIG") or "config.yaml")
    try:
        cfg = load_config(config_path)
        report, out_dir = cfg.report, cfg.path(cfg.report.output_dir)
    except ConfigError as exc:
        report = _report_config_only(config_path) if config_path.is_file() else ReportConfig()
        out_dir = config_path.resolve().parent / report.output_dir
        body += f"\n(The config did not load either: {exc})\n"
    # The .eml holds a log tail: owner-only like everything the steps write (WFM_UMASK=027: group too).
    previous_umask = os.umask({"027": 0o027, "007": 0o007}.get(os.environ.get("WFM_UMASK", ""), 0o077))
    try:
        delivery = _failure_alert(report, out_dir, args.subject, body, 30.0)
    except OSError as exc:
        print(f"common.mail: could not write the failure alert under {out_dir}: {exc}", file=sys.stderr)
        return 2
    finally:
        os.umask(previous_umask)
    print(f"common.mail: {delivery.summary()}", file=sys.stderr)
    return 1 if delivery.error else 0


if __name__ == "__main__":
    sys.exit(main())
