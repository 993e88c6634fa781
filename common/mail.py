"""The report email and the failure alert: build an `EmailMessage`, keep an .eml copy, send it over SMTP.

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
import html
import logging
import os
import re
import smtplib
import ssl
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import pandas as pd
import yaml

from common.config_schema import Config, ReportConfig, SmtpConfig
from common.files import atomic_write
from common.redact import mask_url

log = logging.getLogger(__name__)

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
SEVERITY_STYLE = {  # background, text: the same red/amber/blue as the charts' threshold lines
    "critical": ("#fde0dc", "#b71c1c"),
    "warning": ("#fff3cd", "#8a5a00"),
    "info": ("#e3eefa", "#1f5fa8"),
}
_RATIO_METRICS = ("wmape", "mape", "bias", "coverage", "total_volume_error", "share", "deviation")
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


# --- report content -------------------------------------------------------------------------------------

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
