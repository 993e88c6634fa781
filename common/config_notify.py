"""The notification keys of config.yaml: `alerts.webhooks` (chat alerts) and `metrics:` (Prometheus textfile).

A floor below `config_schema` (which holds the field lines that put these models into `alerts:` and `Config`).
A webhook URL is a secret (Slack's and Teams' URLs carry their token in the path): give it in an environment
variable with `url_env`, and no error message or log line ever shows more of it than its host.
"""

from __future__ import annotations

import os
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator

from common.config_source import StrictModel

SEVERITIES = ("warning", "critical")  # lowest first: a webhook gets alerts at or above its min_severity


def _http_url(value: str) -> str:
    """`value` when it is an http(s) URL with a host; the error never repeats the value (it holds the token)."""
    try:
        parts = urlsplit(value.strip())
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError("must be an http:// or https:// URL with a host (the value is not shown: it may hold a "
                         "token; prefer url_env)")
    return value.strip()


class WebhookConfig(StrictModel):
    """One endpoint that gets step 4's open alerts and run_daily.sh's failure alert (a JSON POST)."""

    kind: Literal["slack", "teams", "generic"]
    url: str | None = None                  # the URL itself; prefer url_env, so the token stays out of the file
    url_env: str | None = Field(None, validate_default=True)  # name of an environment variable holding the URL
    min_severity: Literal["warning", "critical"] = "warning"  # the failure alert goes to every webhook
    timeout_seconds: float = Field(10, gt=0, le=120)          # per attempt: connect, and each wait for the server
    retries: int = Field(2, ge=0, le=10)                       # attempts after the first (timeout, 5xx, 429)
    backoff_seconds: float = Field(1, ge=0, le=60)             # wait before retry n: backoff_seconds * 2**(n-1)

    _url = field_validator("url")(classmethod(lambda cls, v: None if v is None else _http_url(v)))

    @field_validator("url_env")
    @classmethod
    def _one_source(cls, v: str | None, info: ValidationInfo) -> str | None:
        # Checked here, not on the model: a model-level error would echo the whole entry, URL included.
        if "url" not in info.data:  # url itself was rejected; that error is enough
            return v
        if (v is None) == (info.data["url"] is None):
            raise ValueError("give either url or url_env (the name of an environment variable holding the URL)")
        return v

    def resolved_url(self) -> str | None:
        """The URL to post to: `url`, or the value of `url_env` (None when that variable is unset or empty)."""
        return self.url if self.url_env is None else (os.environ.get(self.url_env, "").strip() or None)

    def wants(self, severity: str) -> bool:
        """Whether an alert of `severity` reaches this webhook."""
        return SEVERITIES.index(severity) >= SEVERITIES.index(self.min_severity) if severity in SEVERITIES else True


class MetricsConfig(StrictModel):
    """Prometheus text-format metrics written after every step, for node_exporter's textfile collector."""

    textfile_dir: str | None = None  # the collector's --collector.textfile.directory; unset: no metrics written
