"""What a chat alert says, as the JSON each kind of webhook accepts: pure functions, no I/O.

- `slack`: an incoming webhook's `{"text": ..., "blocks": [...]}` (text is the notification's fallback line; blocks
  a header, one section per alert, a context line). Slack's `&`, `<` and `>` are escaped, so a queue name cannot
  ping `<!channel>` or forge a link.
- `teams`: a message with one Adaptive Card attachment (what both Teams' Workflows webhooks and the older
  connector webhooks accept).
- `generic`: structured JSON for any other receiver: source, event, run id, as-of, counts and every alert with
  severity, rule, queue, metric, value, threshold and message (NaN as null).

An alert is a mapping with `common.alerts.ALERT_COLUMNS` keys (`gold_alerts` rows). Chat messages list at most
`MAX_LISTED` alerts, most severe first, and say how many more there are; the generic payload lists all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from common import __version__

MAX_LISTED = 20            # a chat message is read on a phone: the rest is in the email and gold_alerts
MAX_MESSAGE_CHARS = 1000   # one alert's message (Slack's section text stops at 3000)
MAX_TAIL_CHARS = 2800      # the failure alert's log tail in one Slack section
SOURCE = "wfm-forecast"
_ORDER = {"critical": 0, "warning": 1}
_ICON = {"critical": ":red_circle:", "warning": ":large_orange_circle:"}
_TEAMS_COLOR = {"critical": "Attention", "warning": "Warning"}


def _sorted(alerts: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(alerts, key=lambda a: _ORDER.get(a["severity"], 2))


def _counts(alerts: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    return {s: sum(a["severity"] == s for a in alerts) for s in _ORDER}


def _number(value: Any) -> float | None:
    """A JSON-safe number: NaN and missing as None (JSON has no NaN)."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _queue(alert: Mapping[str, Any]) -> str | None:
    queue = alert.get("queue")
    return None if queue is None or (isinstance(queue, float) and math.isnan(queue)) else str(queue)


def _short(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def alerts_title(as_of: date, alerts: Sequence[Mapping[str, Any]]) -> str:
    """One line: `wfm-forecast 2025-03-10: 1 critical, 2 warning alerts`."""
    counts = _counts(alerts)
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    return f"{SOURCE} {as_of}: {', '.join(parts)} alert{'s' if len(alerts) != 1 else ''}"


def _alert_line(alert: Mapping[str, Any]) -> str:
    queue = _queue(alert)
    return f"{alert['severity'].upper()} {alert['alert_rule']}{f' [{queue}]' if queue else ''}: " \
           f"{_short(str(alert['message']))}"


# --- slack ----------------------------------------------------------------------------------------------

def slack_escape(text: str) -> str:
    """Slack's three control characters as entities (their docs: escape &, <, > and nothing else)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack(title: str, sections: list[str], context: str) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": _short(title, 150)}}]
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": s}} for s in sections]
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": slack_escape(title), "blocks": blocks}


def slack_alerts(as_of: date, run_id: str, alerts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Slack incoming-webhook JSON for the night's alerts."""
    listed = _sorted(alerts)[:MAX_LISTED]
    sections = [f"{_ICON.get(a['severity'], '')} *{a['severity']}* `{a['alert_rule']}`"
                f"{f' *{slack_escape(q)}*' if (q := _queue(a)) else ''}\n{slack_escape(_short(str(a['message'])))}"
                for a in listed]
    more = f"; {len(alerts) - len(listed)} more in the morning email" if len(alerts) > len(listed) else ""
    return _slack(alerts_title(as_of, alerts), sections, f"step 4_evaluate, run {run_id}{more}")


def slack_failure(subject: str, host: str, log_file: str | None, tail: Sequence[str]) -> dict[str, Any]:
    """Slack incoming-webhook JSON for a failed nightly run, with the last log lines in a code block."""
    text = slack_escape("\n".join(tail))[-MAX_TAIL_CHARS:]  # the end of the log is where the error is
    sections = [f"```{text}```"] if tail else []
    return _slack(subject, sections, slack_escape(f"on {host}" + (f", log {log_file}" if log_file else "")))


# --- teams ----------------------------------------------------------------------------------------------

def _teams(body: list[dict[str, Any]]) -> dict[str, Any]:
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "msteams": {"width": "Full"}, "body": body}
    return {"type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
                             "content": card}]}


def _text_block(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def teams_alerts(as_of: date, run_id: str, alerts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A Teams message (Adaptive Card) for the night's alerts."""
    listed = _sorted(alerts)[:MAX_LISTED]
    more = f"; {len(alerts) - len(listed)} more in the morning email" if len(alerts) > len(listed) else ""
    return _teams([
        _text_block(alerts_title(as_of, alerts), weight="Bolder", size="Medium"),
        *[_text_block(_alert_line(a), color=_TEAMS_COLOR.get(a["severity"], "Default")) for a in listed],
        _text_block(f"step 4_evaluate, run {run_id}{more}", isSubtle=True, size="Small"),
    ])


def teams_failure(subject: str, host: str, log_file: str | None, tail: Sequence[str]) -> dict[str, Any]:
    """A Teams message (Adaptive Card) for a failed nightly run, the last log lines in monospace."""
    return _teams([
        _text_block(subject, weight="Bolder", size="Medium", color="Attention"),
        *([_text_block("\n\n".join(tail), fontType="Monospace", size="Small")] if tail else []),
        _text_block(f"on {host}" + (f", log {log_file}" if log_file else ""), isSubtle=True, size="Small"),
    ])


# --- generic --------------------------------------------------------------------------------------------

def generic_alerts(as_of: date, run_id: str, alerts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Structured JSON of every alert of the night."""
    return {"source": SOURCE, "version": __version__, "event": "alerts", "step": "4_evaluate", "run_id": run_id,
            "as_of": as_of.isoformat(), "counts": _counts(alerts),
            "alerts": [{"severity": a["severity"], "rule": a["alert_rule"], "queue": _queue(a),
                        "metric": a.get("metric"), "value": _number(a.get("value")),
                        "threshold": _number(a.get("threshold")), "message": str(a["message"])}
                       for a in _sorted(alerts)]}


def generic_failure(subject: str, host: str, log_file: str | None, tail: Sequence[str]) -> dict[str, Any]:
    """Structured JSON of a failed nightly run."""
    return {"source": SOURCE, "version": __version__, "event": "failure", "subject": subject, "host": host,
            "log_file": log_file, "log_tail": list(tail)}


ALERTS = {"slack": slack_alerts, "teams": teams_alerts, "generic": generic_alerts}
FAILURE = {"slack": slack_failure, "teams": teams_failure, "generic": generic_failure}
