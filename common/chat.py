"""Chat alerts: step 4's open alerts and run_daily.sh's failure alert, POSTed as JSON to `alerts.webhooks`.

What each message says is `common/chat_payloads.py`; this module delivers. Each webhook gets one POST per event,
retried after a timeout, a refused connection, HTTP 5xx or 429 (`retries` times, waiting `backoff_seconds`, then
twice that, ...), each attempt bounded by `timeout_seconds`. Delivery never raises: a webhook that is down, slow
or misconfigured costs one warning line naming it by its config index, kind and host, never by its URL (Slack's
and Teams' URLs carry their token in the path), and the night goes on.

Failure alert from a shell (run_daily.sh, beside `python -m common.mail --failure`):
    python -m common.chat --config config.yaml --failure --subject "step 3 failed" --log-file logs/run.log
Exit code 0 when every webhook got it (or none is configured), 1 when one did not.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common import __version__
from common.chat_payloads import ALERTS, FAILURE
from common.config_notify import WebhookConfig

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}  # the server may answer the same request next time
MAX_ERROR_BODY = 200  # bytes of an error answer quoted in the warning


class DeliveryError(Exception):
    """A POST that did not get a 2xx answer; the text names no URL path (scrubbed)."""

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.attempts = attempts


@dataclass(frozen=True)
class Posted:
    """What became of one webhook's message."""

    webhook: str          # "alerts.webhooks[0] (slack hooks.slack.com)": safe to log
    ok: bool
    attempts: int = 0
    error: str | None = None


def host_of(url: str) -> str:
    """The URL's host (and port when given): all of a webhook URL that is ever logged."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def _scrub(text: str, url: str) -> str:
    """`text` without `url` or its path and query (an error from urllib may quote them)."""
    parts = urlsplit(url)
    for secret in (url, parts.path + (f"?{parts.query}" if parts.query else ""), parts.path, parts.query):
        if len(secret) > 1:
            text = text.replace(secret, "***")
    return text


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: urllib would follow it as a GET and drop the message."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201 - urllib's signature
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _attempt(url: str, body: bytes, timeout: float) -> tuple[bool, str]:
    """One POST: (retry makes sense, reason) on failure; returns (False, "") on a 2xx answer."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": f"wfm-forecast/{__version__}"})
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(65536)
        return False, ""
    except urllib.error.HTTPError as exc:
        with exc:  # Slack and Teams say what was wrong in a short body ("invalid_blocks", "no_service")
            said = exc.read(MAX_ERROR_BODY).decode("utf-8", errors="replace").strip().splitlines()
        hint = " (a redirect: put the URL it points to in the config)" if 300 <= exc.code < 400 else ""
        return exc.code in RETRY_STATUS, f"HTTP {exc.code} {exc.reason}{f': {said[0]}' if said else ''}{hint}"
    except TimeoutError:  # waiting for the answer
        return True, f"no answer within {timeout:g} s (timeout_seconds)"
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):  # connecting
            return True, f"no answer within {timeout:g} s (timeout_seconds)"
        return True, f"cannot connect: {exc.reason}"
    except (http.client.InvalidURL, ValueError) as exc:  # a space or control character in it: the next try too
        return False, f"{type(exc).__name__}: {exc}"
    except (OSError, http.client.HTTPException) as exc:  # a connection reset, a garbled answer
        return True, f"{type(exc).__name__}: {exc}"


def post_json(url: str, payload: Mapping[str, Any], *, timeout: float, retries: int, backoff: float,
              sleep: Callable[[float], None] = time.sleep) -> int:
    """POST `payload` until a 2xx answer; return the attempts it took. Raises DeliveryError (scrubbed text)."""
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
    attempt = 0
    while True:
        attempt += 1
        retry, reason = _attempt(url, body, timeout)
        if not reason:
            return attempt
        if not retry or attempt > retries:
            raise DeliveryError(_scrub(reason, url), attempt)
        sleep(backoff * 2 ** (attempt - 1))


def _deliver(index: int, hook: WebhookConfig, payload_for: Callable[[], Mapping[str, Any]], what: str) -> Posted:
    url = hook.resolved_url()
    label = f"alerts.webhooks[{index}] ({hook.kind} {host_of(url) if url else 'no URL'})"
    if url is None:
        log.warning("chat: %s: environment variable %s (url_env) is not set or empty; %s not posted", label,
                    hook.url_env, what)
        return Posted(label, False, error=f"{hook.url_env} not set")
    try:
        attempts = post_json(url, payload_for(), timeout=hook.timeout_seconds, retries=hook.retries,
                             backoff=hook.backoff_seconds)
    except DeliveryError as exc:
        log.warning("chat: %s: %s not posted after %d attempt(s): %s; the run goes on", label, what, exc.attempts,
                    exc)
        return Posted(label, False, exc.attempts, str(exc))
    except Exception as exc:  # noqa: BLE001 - a chat message never fails the night, whatever went wrong
        reason = _scrub(f"{type(exc).__name__}: {exc}", url)
        log.warning("chat: %s: %s not posted: %s; the run goes on", label, what, reason)
        return Posted(label, False, error=reason)
    log.info("chat: %s: %s posted (%d attempt(s))", label, what, attempts)
    return Posted(label, True, attempts)


def post_alerts(webhooks: Sequence[WebhookConfig], alerts: Sequence[Mapping[str, Any]], as_of: date,
                run_id: str) -> list[Posted]:
    """Post the night's alerts (`gold_alerts` rows as mappings) to each webhook that wants at least one of them;
    a webhook whose min_severity no alert reaches gets nothing (a quiet night stays quiet)."""
    posted = []
    for index, hook in enumerate(webhooks):
        wanted = [a for a in alerts if hook.wants(a["severity"])]
        if wanted:
            posted.append(_deliver(index, hook, lambda h=hook, w=wanted: ALERTS[h.kind](as_of, run_id, w),
                                   f"{len(wanted)} alert(s)"))
    return posted


def post_failure(webhooks: Sequence[WebhookConfig], subject: str, log_file: str | None,
                 tail: Sequence[str]) -> list[Posted]:
    """Post a failed run's alert to every webhook (a failure reaches each, whatever its min_severity)."""
    host = socket.gethostname()
    return [_deliver(i, hook, lambda h=hook: FAILURE[h.kind](subject, host, log_file, tail), "failure alert")
            for i, hook in enumerate(webhooks)]


# --- failure alert from a shell -------------------------------------------------------------------------

def _webhooks_only(path: Path) -> list[WebhookConfig]:
    """`alerts.webhooks` alone, for when the whole config does not load (a bad config may be the failure);
    entries that do not validate are left out."""
    import yaml

    try:
        raw = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("alerts") or {}
        entries = raw.get("webhooks") or []
    except Exception:  # noqa: BLE001 - nothing readable: no webhook to post to
        return []
    hooks = []
    for entry in entries if isinstance(entries, list) else []:
        try:
            hooks.append(WebhookConfig.model_validate(entry))
        except Exception:  # noqa: BLE001
            continue
    return hooks


def _tail(log_file: str | None, lines: int, secrets: Sequence[str]) -> list[str]:
    """The log's last lines with URLs' credentials, the SMTP password and webhook URLs removed."""
    if not log_file or lines == 0:
        return []
    from common.mail import log_tail
    from common.redact import mask_url

    text = mask_url(log_tail(Path(log_file), lines))
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text.splitlines()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.chat", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="config file (default: env WFM_CONFIG, else config.yaml)")
    parser.add_argument("--failure", action="store_true", required=True, help="post a failure alert (the only mode)")
    parser.add_argument("--subject", required=True, help="the alert's first line")
    parser.add_argument("--log-file", default=None, help="log whose last lines go into the alert")
    parser.add_argument("--lines", type=int, default=10, help="how many log lines (default 10)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from common.config import load_config
    from common.errors import ConfigError

    config_path = Path(args.config or os.environ.get("WFM_CONFIG") or "config.yaml")
    try:
        cfg = load_config(config_path)
        webhooks, smtp_env = cfg.alerts.webhooks, cfg.report.smtp.password_env
    except ConfigError:
        webhooks, smtp_env = _webhooks_only(config_path), "WFM_SMTP_PASSWORD"
    if not webhooks:
        return 0
    secrets = [os.environ.get(smtp_env, ""), *(h.resolved_url() or "" for h in webhooks)]
    posted = post_failure(webhooks, args.subject, args.log_file, _tail(args.log_file, args.lines, secrets))
    failed = [p.webhook for p in posted if not p.ok]
    print(f"common.chat: failure alert posted to {len(posted) - len(failed)} of {len(posted)} webhook(s)"
          + (f"; not to {', '.join(failed)}" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
