"""Chat alerts against a real HTTP server on a loopback port: what each kind of webhook gets, retries, timeouts,
a webhook that is down never failing step 4 or run_daily.sh, and URLs never logged past their host."""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from common import chat, db, tables
from common.config import load_config
from common.config_notify import WebhookConfig
from common.errors import ConfigError
from tests.conftest import REPO, write_config
from tests.test_evaluation import AS_OF, _forecast, _silver
from tests.webhook_server import WebhookServer, dead_port

evaluate = importlib.import_module("4_evaluate")

TOKEN = "s3cr3t-token"
ALERTS = [
    {"severity": "warning", "alert_rule": "model_vs_naive", "queue": "Billing", "metric": "wmape", "value": 0.12,
     "threshold": 0.1, "message": "Billing: lightgbm 12.0% vs naive 10.0%"},
    {"severity": "critical", "alert_rule": "data_freshness", "queue": None, "metric": "hours_behind",
     "value": float("nan"), "threshold": 6.0, "message": "no contacts loaded"},
]


@pytest.fixture
def server():
    running = WebhookServer().start()
    yield running
    running.stop()


def hook(kind: str, url: str, **keys) -> WebhookConfig:
    return WebhookConfig(kind=kind, url=url, backoff_seconds=0, **keys)


def test_slack_gets_a_fallback_text_and_blocks_most_severe_first(server) -> None:
    [posted] = chat.post_alerts([hook("slack", server.url())], ALERTS, date(2025, 3, 10), "run1")
    assert posted.ok and posted.attempts == 1
    [got] = server.received
    assert got.path == f"/services/T000/B000/{TOKEN}" and got.headers["Content-Type"].startswith("application/json")
    body = got.json
    assert body["text"] == "wfm-forecast 2025-03-10: 1 critical, 1 warning alerts"
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "context"]
    assert body["blocks"][1]["text"]["text"] == ":red_circle: *critical* `data_freshness`\nno contacts loaded"
    assert body["blocks"][2]["text"]["text"].startswith(":large_orange_circle: *warning* `model_vs_naive` *Billing*")
    assert body["blocks"][3]["elements"][0]["text"] == "step 4_evaluate, run run1"


def test_slack_escapes_a_queue_name_that_would_ping_the_channel(server) -> None:
    alert = {**ALERTS[0], "queue": "<!channel> & co", "message": "see <http://evil|here>"}
    chat.post_alerts([hook("slack", server.url())], [alert], date(2025, 3, 10), "run1")
    section = server.received[0].json["blocks"][1]["text"]["text"]
    assert "*&lt;!channel&gt; &amp; co*" in section and "see &lt;http://evil|here&gt;" in section
    assert "<!channel>" not in server.received[0].body.decode()


def test_teams_gets_one_adaptive_card(server) -> None:
    chat.post_alerts([hook("teams", server.url())], ALERTS, date(2025, 3, 10), "run1")
    body = server.received[0].json
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    texts = [b["text"] for b in card["body"]]
    assert texts[0] == "wfm-forecast 2025-03-10: 1 critical, 1 warning alerts"
    assert texts[1:3] == ["CRITICAL data_freshness: no contacts loaded",
                          "WARNING model_vs_naive [Billing]: Billing: lightgbm 12.0% vs naive 10.0%"]
    assert [b.get("color") for b in card["body"][1:3]] == ["Attention", "Warning"]


def test_generic_gets_every_alert_as_structured_json_with_nan_as_null(server) -> None:
    chat.post_alerts([hook("generic", server.url("/hook"))], ALERTS, date(2025, 3, 10), "run1")
    body = server.received[0].json
    assert {k: body[k] for k in ("source", "event", "step", "run_id", "as_of", "counts")} == {
        "source": "wfm-forecast", "event": "alerts", "step": "4_evaluate", "run_id": "run1", "as_of": "2025-03-10",
        "counts": {"critical": 1, "warning": 1}}
    assert body["alerts"] == [
        {"severity": "critical", "rule": "data_freshness", "queue": None, "metric": "hours_behind", "value": None,
         "threshold": 6.0, "message": "no contacts loaded"},
        {"severity": "warning", "rule": "model_vs_naive", "queue": "Billing", "metric": "wmape", "value": 0.12,
         "threshold": 0.1, "message": "Billing: lightgbm 12.0% vs naive 10.0%"}]


def test_min_severity_filters_and_a_quiet_night_posts_nothing(server) -> None:
    critical_only = hook("generic", server.url(), min_severity="critical")
    chat.post_alerts([critical_only], ALERTS, date(2025, 3, 10), "run1")
    assert [a["severity"] for a in server.received[0].json["alerts"]] == ["critical"]
    assert chat.post_alerts([critical_only], ALERTS[:1], date(2025, 3, 10), "run1") == []
    assert chat.post_alerts([hook("slack", server.url())], [], date(2025, 3, 10), "run1") == []
    assert len(server.received) == 1


def test_a_500_is_retried_and_the_second_attempt_lands(server) -> None:
    server.answers = [(500, 0.0)]
    [posted] = chat.post_alerts([hook("slack", server.url(), retries=2)], ALERTS, date(2025, 3, 10), "run1")
    assert posted.ok and posted.attempts == 2
    assert len(server.received) == 2 and server.received[0].body == server.received[1].body


def test_retries_wait_longer_each_time_and_give_up_with_one_warning(server, caplog) -> None:
    server.answers = [(503, 0.0)] * 3
    waits = []
    with pytest.raises(chat.DeliveryError, match="HTTP 503") as err:
        chat.post_json(server.url(), {"text": "x"}, timeout=5, retries=2, backoff=0.5, sleep=waits.append)
    assert err.value.attempts == 3 and waits == [0.5, 1.0] and len(server.received) == 3
    server.answers = [(503, 0.0)] * 3
    with caplog.at_level(logging.WARNING):
        [posted] = chat.post_alerts([hook("teams", server.url(), retries=2)], ALERTS, date(2025, 3, 10), "run1")
    assert not posted.ok and posted.attempts == 3
    [line] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert line == (f"chat: alerts.webhooks[0] (teams 127.0.0.1:{server.port}): 2 alert(s) not posted after 3 "
                    "attempt(s): HTTP 503 Service Unavailable: no_service; the run goes on")


def test_a_client_error_is_not_retried(server) -> None:
    server.answers = [(404, 0.0)]
    [posted] = chat.post_alerts([hook("slack", server.url(), retries=3)], ALERTS, date(2025, 3, 10), "run1")
    assert (posted.ok, posted.attempts, posted.error) == (False, 1, "HTTP 404 Not Found: no_service")
    assert len(server.received) == 1


def test_a_dead_port_and_a_server_slower_than_the_timeout_are_one_warning_each_without_the_token(
        server, caplog) -> None:
    server.answers = [(200, 1.5)]
    dead = f"http://127.0.0.1:{dead_port()}/services/T000/B000/{TOKEN}"
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        posted = chat.post_alerts([hook("slack", dead, retries=1), hook("generic", server.url(), retries=0,
                                                                         timeout_seconds=0.3)],
                                  ALERTS, date(2025, 3, 10), "run1")
    assert time.monotonic() - started < 1.5  # the slow answer was not waited for
    assert [p.ok for p in posted] == [False, False]
    assert posted[0].error.startswith("cannot connect: ") and posted[0].attempts == 2
    assert posted[1].error == "no answer within 0.3 s (timeout_seconds)"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2 and f"(slack 127.0.0.1:{dead.split(':')[2].split('/')[0]})" in warnings[0]
    assert not any(TOKEN in r.getMessage() for r in caplog.records)


def test_the_url_can_come_from_an_env_var_and_an_unset_one_is_a_warning(server, monkeypatch, caplog) -> None:
    from_env = WebhookConfig(kind="generic", url_env="WFM_TEST_WEBHOOK")
    monkeypatch.setenv("WFM_TEST_WEBHOOK", server.url())
    assert chat.post_alerts([from_env], ALERTS, date(2025, 3, 10), "run1")[0].ok
    monkeypatch.delenv("WFM_TEST_WEBHOOK")
    with caplog.at_level(logging.WARNING):
        [posted] = chat.post_alerts([from_env], ALERTS, date(2025, 3, 10), "run1")
    assert not posted.ok and len(server.received) == 1
    assert ("alerts.webhooks[0] (generic no URL): environment variable WFM_TEST_WEBHOOK (url_env) is not set or empty"
            in caplog.text)


@pytest.mark.parametrize("entry, message", [
    ({"kind": "slack", "url": f"ftp://hooks.example.com/{TOKEN}"},
     "alerts.webhooks.0.url: must be an http:// or https:// URL with a host"),
    ({"kind": "slack"}, "alerts.webhooks.0.url_env: give either url or url_env"),
    ({"kind": "slack", "url": f"https://hooks.example.com/{TOKEN}", "url_env": "X"},
     "alerts.webhooks.0.url_env: give either url or url_env"),
    ({"kind": "chat", "url_env": "X"}, "alerts.webhooks.0.kind: Input should be 'slack', 'teams' or 'generic'"),
    ({"kind": "teams", "url_env": "X", "retries": 99}, "alerts.webhooks.0.retries: Input should be less than or equal"),
])
def test_a_bad_webhook_entry_names_its_key_and_never_shows_the_url(tmp_path: Path, entry, message) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, alerts__webhooks=[entry]))
    assert message in str(err.value) and TOKEN not in str(err.value) and "\n" not in str(err.value)


# --- step 4 and run_daily.sh ----------------------------------------------------------------------------------

def _evaluated(tmp_path: Path, webhooks: list[dict]) -> Path:
    """test_evaluation's database (3 alerts for 2025-03-10: 1 critical, 2 warning), with `webhooks`."""
    config = write_config(tmp_path, alerts__naive_min_days=5, alerts__webhooks=webhooks)
    engine = db.make_engine(load_config(config).database_url)
    db.ensure_schema(engine)
    with engine.begin() as conn:
        db.insert_frame(conn, tables.silver_daily, _silver())
        db.insert_frame(conn, tables.gold_forecast_daily, pd.concat([
            _forecast("2025-03-03", [100, 90, 88, 70, 60, 0, 0], "lightgbm", "abs"),
            _forecast("2025-03-05", [80, 70, 60, 0, 0, 100, 90], "seasonal_naive", "rel"),
        ], ignore_index=True))
    return config


def test_step_4_posts_its_alerts_and_a_dead_or_slow_webhook_does_not_fail_it(tmp_path: Path, server,
                                                                             caplog) -> None:
    server.answers = [(200, 0.0), (200, 2.0)]  # the generic webhook answers; the teams one is too slow
    config = _evaluated(tmp_path, [
        {"kind": "generic", "url": server.url("/generic"), "backoff_seconds": 0},
        {"kind": "teams", "url": server.url(f"/teams/{TOKEN}"), "timeout_seconds": 0.3, "retries": 0},
        {"kind": "slack", "url": f"http://127.0.0.1:{dead_port()}/{TOKEN}", "retries": 1, "backoff_seconds": 0},
        {"kind": "slack", "url": server.url("/critical-only"), "min_severity": "critical"},
    ])
    with caplog.at_level(logging.WARNING):
        assert evaluate.main(["--config", str(config), "--as-of", AS_OF]) == 0
    got = {r.path: r.json for r in server.received}
    assert set(got) == {"/generic", f"/teams/{TOKEN}", "/critical-only"}
    generic = got["/generic"]
    assert generic["as_of"] == AS_OF and generic["counts"] == {"critical": 1, "warning": 2}
    assert {(a["severity"], a["rule"], a["queue"]) for a in generic["alerts"]} == {
        ("critical", "data_freshness", None), ("warning", "model_vs_naive", "A"), ("warning", "forecast_fallback", "A")}
    with db.make_engine(load_config(config).database_url).connect() as conn:
        runs = db.read_table(conn, tables.pipeline_runs)
    assert generic["run_id"] == runs["run_id"].iloc[0] and runs["status"].iloc[0] == "success"
    assert got["/critical-only"]["text"] == "wfm-forecast 2025-03-10: 1 critical alert"
    chat_warnings = [r.getMessage() for r in caplog.records if r.name == "common.chat"]
    assert len(chat_warnings) == 2 and not any(TOKEN in r.getMessage() for r in caplog.records)


def test_failure_cli_posts_the_log_tail_without_credentials(tmp_path: Path, server) -> None:
    config = write_config(tmp_path, alerts__webhooks=[{"kind": "generic", "url": server.url()}])
    log = tmp_path / "run.log"
    log.write_text("".join(f"line {i}\n" for i in range(1, 21)) + "cannot reach postgresql://wfm:hunter2@db/wfm\n")
    assert chat.main(["--config", str(config), "--failure", "--subject", "step 3 failed", "--log-file", str(log)]) == 0
    body = server.received[0].json
    assert (body["event"], body["subject"], body["log_file"]) == ("failure", "step 3 failed", str(log))
    assert body["log_tail"][:9] == [f"line {i}" for i in range(12, 21)] and len(body["log_tail"]) == 10
    assert "hunter2" not in server.received[0].body.decode()


def test_failure_cli_still_posts_when_the_rest_of_the_config_is_broken(tmp_path: Path, server) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"alerts:\n  webhooks:\n    - {{kind: slack, url: '{server.url()}'}}\nsource: {{kind: nonsense}}\n")
    assert chat.main(["--config", str(config), "--failure", "--subject", "bad config"]) == 0
    assert server.received[0].json["text"] == "bad config"


def test_run_daily_failure_posts_to_the_webhooks_and_keeps_the_steps_exit_code(tmp_path: Path, server) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("run_daily.sh", "requirements.txt", *(p.name for p in REPO.glob("[0-9]*.py"))):
        shutil.copy2(REPO / name, project / name)
    shutil.copytree(REPO / "common", project / "common", ignore=shutil.ignore_patterns("__pycache__"))
    (project / ".venv").symlink_to(Path(sys.prefix))  # the interpreter running the tests, nothing installed
    config = write_config(project, alerts__webhooks=[
        {"kind": "slack", "url": server.url()},
        {"kind": "generic", "url": f"http://127.0.0.1:{dead_port()}/{TOKEN}", "retries": 0}])
    done = subprocess.run(["bash", "run_daily.sh", "--config", str(config), "--as-of", AS_OF,
                           "--set", "rules.interval_minutes=7"], cwd=project, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "WFM_CONFIG": ""})
    assert done.returncode == 2, done.stderr[-2000:]  # step 0's bad config, not the dead webhook's 1
    [got] = server.received
    assert got.json["text"] == f"wfm-forecast FAILED at step 0 for {AS_OF} (exit 2)"
    assert "rules.interval_minutes" in got.json["blocks"][1]["text"]["text"]
    assert "failure alert posted to 1 of 2 webhook(s); not to alerts.webhooks[1] (generic 127.0.0.1:" in done.stderr
    assert TOKEN not in done.stderr + done.stdout


def test_a_url_http_client_refuses_is_not_retried_and_its_path_is_not_quoted(server) -> None:
    bad = server.url(f"/services/{TOKEN} x")  # a space: urllib's own error quotes the path
    [posted] = chat.post_alerts([hook("slack", bad, retries=3)], ALERTS, date(2025, 3, 10), "run1")
    assert (posted.ok, posted.attempts) == (False, 1) and posted.error.startswith("InvalidURL: ")
    assert TOKEN not in posted.error and "***" in posted.error and not server.received
