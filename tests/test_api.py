"""The REST API over HTTP: a real uvicorn server (`python -m common.api`) on a loopback port, hand-made gold rows
(tests/api_server.py lists them with the answers worked out by hand)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from common import api, db
from tests.api_server import KEYS, api_command, api_env, get, running_api, serving
from tests.conftest import REPO, write_config


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> str:
    with running_api(tmp_path_factory.mktemp("api")) as url:
        yield url


def _items(base: str, path: str, **params) -> list[dict]:
    status, body = get(f"{base}{path}?{urllib.parse.urlencode(params)}")
    assert status == 200, body
    return body["items"]


def test_latest_daily_forecast_takes_the_newest_origin_per_queue_and_date(base: str) -> None:
    rows = _items(base, "/v1/forecasts/daily", queue="Billing")
    assert [(r["date"], r["forecast_origin"], r["p50"]) for r in rows] == [
        ("2026-01-05", "2026-01-04", 100.0), ("2026-01-06", "2026-01-05", 120.0), ("2026-01-07", "2026-01-05", 130.0)]


def test_one_origin_and_a_date_range_filter_the_daily_forecast(base: str) -> None:
    rows = _items(base, "/v1/forecasts/daily", queue="Billing", origin="2026-01-04")
    assert [(r["date"], r["p50"]) for r in rows] == [("2026-01-05", 100.0), ("2026-01-06", 110.0)]
    rows = _items(base, "/v1/forecasts/daily", date_from="2026-01-05", date_to="2026-01-05")
    assert [(r["queue"], r["p50"]) for r in rows] == [("Billing", 100.0), ("Support", 50.0)]


def test_daily_forecast_names_its_units_and_time_zone(base: str) -> None:
    status, body = get(f"{base}/v1/forecasts/daily?queue=Support")
    assert status == 200
    assert body["timezone"] == "Europe/Stockholm"
    assert body["units"]["p50"] == "calls per day"
    assert body["count"] == 1 and body["next_offset"] is None


def test_latest_interval_forecast_takes_a_whole_day_from_one_origin_with_utc_and_local_offsets(base: str) -> None:
    status, body = get(f"{base}/v1/forecasts/interval?queue=Billing")
    assert status == 200
    # 01-06: the newest origin (01-05) has only 08:00; the older origin's 08:15 is not mixed in.
    assert [(r["interval_start_utc"], r["interval_start_local"], r["p50"]) for r in body["items"]] == [
        ("2026-01-06T07:00:00Z", "2026-01-06T08:00:00+01:00", 12.0),
        ("2026-07-01T06:00:00Z", "2026-07-01T08:00:00+02:00", 7.0)]
    assert body["units"]["p50"] == "calls per 30-minute interval"  # config.yaml's rules.interval_minutes
    assert body["units"]["aht_seconds"] == "seconds"


def test_staffing_interval_and_daily_give_agents_and_fte(base: str) -> None:
    status, body = get(f"{base}/v1/staffing/interval?queue=Billing")
    assert [(r["interval_start_utc"], r["staff_p50"], r["agents_p90"]) for r in body["items"]] == [
        ("2026-01-06T07:00:00Z", 6, 6)]
    assert body["units"]["staff_p50"] == "agents"
    status, body = get(f"{base}/v1/staffing/daily?queue=Billing")
    assert [(r["date"], r["fte_p50"], r["fte_p10"]) for r in body["items"]] == [("2026-01-06", 4.8, None)]
    assert body["units"]["fte_p50"].startswith("FTE")


def test_accuracy_daily_latest_is_the_shortest_horizon_per_method(base: str) -> None:
    rows = _items(base, "/v1/accuracy/daily", queue="Billing")
    assert [(r["method"], r["forecast_origin"], r["error"]) for r in rows] == [
        ("ensemble", "2026-01-04", 5.0), ("naive_benchmark", "2026-01-04", -20.0)]
    rows = _items(base, "/v1/accuracy/daily", queue="Billing", method="ensemble", origin="2026-01-03")
    assert [(r["p50"], r["actual"], r["in_band"]) for r in rows] == [(90.0, 100.0, True)]


def test_accuracy_summary_is_the_newest_as_of_unless_one_is_asked(base: str) -> None:
    rows = _items(base, "/v1/accuracy/summary")
    assert [(r["as_of"], r["scope"], r["scope_value"], r["wmape"]) for r in rows] == [
        ("2026-01-06", "overall", "all", 0.12), ("2026-01-06", "queue", "Billing", 0.09)]
    assert [r["wmape"] for r in _items(base, "/v1/accuracy/summary", as_of="2026-01-05")] == [0.10]
    assert _items(base, "/v1/accuracy/summary", scope="queue")[0]["scope_value"] == "Billing"


def test_alerts_of_a_queue_include_the_whole_centers_newest_first(base: str) -> None:
    rows = _items(base, "/v1/alerts", queue="Billing")
    assert [(r["queue"], r["severity"], r["created_at_utc"]) for r in rows] == [
        (None, "critical", "2026-01-05T05:10:00Z"), ("Billing", "warning", "2026-01-05T05:10:00Z")]
    assert [r["queue"] for r in _items(base, "/v1/alerts")] == [None, "Billing", "Support"]
    assert [r["queue"] for r in _items(base, "/v1/alerts", severity="critical")] == [None]


def test_runs_page_newest_first_and_next_offset_walks_the_pages(base: str) -> None:
    status, body = get(f"{base}/v1/runs?limit=2")
    assert [r["run_id"] for r in body["items"]] == ["n6", "n5"] and body["next_offset"] == 2
    status, body = get(f"{base}/v1/runs?limit=2&offset=2")
    assert [r["run_id"] for r in body["items"]] == ["n3"] and body["next_offset"] is None
    assert body["items"][0]["finished_at_utc"].endswith("Z")


def test_health_reports_the_database_and_the_last_successful_nightly_run_and_its_age(base: str) -> None:
    status, body = get(f"{base}/v1/health", key=None)  # a monitor needs no key
    assert status == 200
    assert (body["status"], body["database"]) == ("ok", "reachable")
    nightly = body["last_nightly_run"]
    assert nightly["run_id"] == "n5"  # the newer 5_report failed
    assert 7200 <= nightly["age_seconds"] < 7200 + 120  # finished two hours before the server started
    assert body["last_forecast_run"]["run_id"] == "n3"


def test_queues_lists_every_forecast_queue_with_its_origins(base: str) -> None:
    status, body = get(f"{base}/v1/queues")
    assert body["items"] == [{"queue": "Billing", "first_origin": "2026-01-04", "newest_origin": "2026-01-05"},
                             {"queue": "Support", "first_origin": "2026-01-04", "newest_origin": "2026-01-04"}]


def test_capacity_plan_latest_published_takes_the_newest_plan_origin_per_queue_and_week(base: str) -> None:
    status, body = get(f"{base}/v1/capacity/plan?queue=Billing")
    assert [(r["scenario"], r["week_start"], r["plan_origin"], r["fte_required_p50"]) for r in body["items"]] == [
        ("published", "2026-01-05", "2026-01-04", 10.0), ("published", "2026-01-12", "2026-01-05", 11.0)]
    assert body["units"]["fte_required_p50"].startswith("FTE") and body["units"]["volume_p50"] == "calls per ISO week"
    assert [r["fte_required_p50"] for r in _items(base, "/v1/capacity/plan", queue="(centre)")] == [20.0]
    assert [r["fte_required_p50"] for r in _items(base, "/v1/capacity/plan", origin="2026-01-04")] == [10.0, 12.0]


def test_a_scenario_reads_its_own_rows_and_never_the_published_ones(base: str) -> None:
    rows = _items(base, "/v1/capacity/plan", scenario="hire10")
    assert [(r["scenario"], r["week_start"], r["fte_required_p50"]) for r in rows] == [("hire10", "2026-01-05", 9.0)]
    rows = _items(base, "/v1/forecasts/daily", scenario="hire10")
    assert [(r["queue"], r["date"], r["p50"]) for r in rows] == [("Billing", "2026-01-06", 150.0)]
    status, body = get(f"{base}/v1/scenarios")
    assert [(r["scenario"], r["step"], r["created_at_utc"]) for r in body["items"]] == [
        ("hire10", "3_forecast", "2026-01-05T09:00:00Z")]


def test_an_unknown_scenario_or_one_an_endpoint_lacks_is_404(base: str) -> None:
    status, body = get(f"{base}/v1/capacity/plan?scenario=nosuch")
    assert (status, body["detail"]) == (404, "scenario 'nosuch' not found: GET /v1/scenarios lists them")
    status, body = get(f"{base}/v1/forecasts/interval?scenario=hire10")
    assert status == 404 and "has only scenario=published" in body["detail"]


@pytest.mark.parametrize("header", ["X-API-Key", "Authorization"])
def test_each_configured_key_is_accepted_in_either_header(base: str, header: str) -> None:
    for key in KEYS:
        assert get(f"{base}/v1/queues", key=key, header=header)[0] == 200


@pytest.mark.parametrize("key", [None, "", "key-on", "KEY-ONE", "key-one,k2-second-key", "clé"])
def test_a_missing_or_wrong_key_is_401(base: str, key: str | None) -> None:
    status, body = get(f"{base}/v1/forecasts/daily", key=key)
    assert status == 401
    assert "API key" in body["detail"]


def test_an_unknown_queue_is_404_naming_it(base: str) -> None:
    status, body = get(f"{base}/v1/forecasts/daily?queue=nosuch")
    assert (status, body["detail"]) == (404, "queue 'nosuch' not found: GET /v1/queues lists the queues")


def test_a_known_queue_without_rows_in_a_table_is_an_empty_page_not_404(base: str) -> None:
    assert _items(base, "/v1/staffing/daily", queue="Support") == []


@pytest.mark.parametrize("query", ["date_from=2026-13-01", "date_to=yesterday", "date_to=0", "date_from=1700000000",
                                   "origin=2026-02-30", "origin=newest", "date_from=2026-01-07&date_to=2026-01-05", "limit=10001",
                                   "limit=0", "offset=-1"])
def test_a_bad_date_origin_or_page_size_is_422(base: str, query: str) -> None:
    status, body = get(f"{base}/v1/forecasts/daily?{query}")
    assert status == 422, body
    assert body["detail"]


@pytest.mark.parametrize("value", ["Billing' OR '1'='1", "Billing'; DROP TABLE gold_forecast_daily; --",
                                   "%", "Billing%", "*", "billing"])
def test_sql_looking_queue_is_just_a_queue_that_does_not_exist(base: str, value: str) -> None:
    status, body = get(f"{base}/v1/forecasts/daily?{urllib.parse.urlencode({'queue': value})}")
    assert status == 404 and repr(value) in body["detail"]
    assert len(_items(base, "/v1/forecasts/daily")) == 4  # the table is intact


def test_an_unknown_scenario_is_404(base: str) -> None:
    status, body = get(f"{base}/v1/forecasts/daily?scenario={urllib.parse.quote('x OR 1=1')}")
    assert status == 404 and "scenario 'x OR 1=1' not found" in body["detail"]


def test_there_is_no_way_to_write(base: str) -> None:
    assert get(f"{base}/v1/forecasts/daily", method="POST")[0] == 405
    assert get(f"{base}/v1/alerts", method="DELETE")[0] == 405
    methods = {method for route in api.create_app(None).routes for method in getattr(route, "methods", ())}
    assert methods <= {"GET", "HEAD"}


def test_the_served_openapi_is_the_committed_docs_openapi_json(base: str) -> None:
    committed = (REPO / "docs" / "openapi.json").read_text()
    assert api.openapi_text() == committed, (
        "docs/openapi.json differs from the app's schema: regenerate it with "
        "`python -m common.api --write-openapi docs/openapi.json` and commit it (a contract change: note it)")
    status, served = get(f"{base}/openapi.json", key=None)
    assert status == 200 and served["paths"].keys() == api.create_app(None).openapi()["paths"].keys()
    with urllib.request.urlopen(f"{base}/docs", timeout=10) as page:
        assert page.status == 200 and b"swagger" in page.read().lower()


def test_without_keys_the_server_refuses_to_bind_all_interfaces_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(api_command(write_config(tmp_path), "--host", "0.0.0.0", "--port", "1"), cwd=REPO,
                          env=api_env(None), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "no API key configured" in done.stderr and "WFM_API_KEYS" in done.stderr and "0.0.0.0" in done.stderr


@pytest.mark.parametrize("host", ["::", "192.168.1.10", "example.org"])
def test_without_keys_no_address_beyond_loopback_is_served(tmp_path: Path, host: str, monkeypatch, capsys) -> None:
    monkeypatch.delenv("WFM_API_KEYS", raising=False)
    assert api.main(["--config", str(write_config(tmp_path)), "--host", host]) == 2
    assert f"--host {host} is not a loopback address" in capsys.readouterr().err


def test_a_missing_sqlite_file_is_a_one_line_error(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("WFM_API_KEYS", KEYS[0])
    assert api.main(["--config", str(write_config(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not found; run the pipeline first" in err


def test_keys_come_from_the_environment_comma_separated_blanks_ignored() -> None:
    keys = api.api_keys({"WFM_API_KEYS": " a1, ,b2,"})
    assert len(keys) == 2 and api.api_keys({}) == ()
    assert api.key_matches("a1", keys) and api.key_matches("b2", keys)
    assert not any(api.key_matches(wrong, keys) for wrong in ("b", "a1,b2", "", " a1", "A1"))


def test_loopback_hosts() -> None:
    assert all(api.is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "localhost"))
    assert not any(api.is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.org", ""))


def test_the_server_never_logs_a_key(base: str, tmp_path_factory) -> None:
    get(f"{base}/v1/forecasts/daily", key="wrong-key-123")
    logs = list(Path(tmp_path_factory.getbasetemp()).glob("api*/api.log"))
    assert logs and not any(k in log.read_text() for log in logs for k in (*KEYS, "wrong-key-123"))


def test_the_readmes_command_and_curl_return_the_latest_forecast(base: str) -> None:
    section = (REPO / "README.md").read_text().split("## REST API", 1)[1].split("\n## ", 1)[0]
    command = next(line for line in section.splitlines() if "-m common.api" in line)
    argv = shlex.split(command.split("#")[0])
    assert argv[0] == "WFM_API_KEYS=change-me" and argv[2:4] == ["-m", "common.api"]
    args = api.parse_args(argv[4:])
    assert (args.config, args.host, args.port) == ("config.yaml", "127.0.0.1", 8080)
    url = re.search(r'curl -s -H "X-API-Key: change-me" "http://127.0.0.1:8080([^"]+)"', section).group(1)
    status, body = get(base + url)
    assert status == 200
    assert [(r["queue"], r["date"], r["forecast_origin"]) for r in body["items"]] == [
        ("Billing", "2026-01-05", "2026-01-04")]


def test_help_names_the_keys_variable_and_the_options(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        api.main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all(word in out for word in ("WFM_API_KEYS", "--config", "--host", "--port", "--write-openapi"))


def test_an_unreachable_database_is_503_and_health_says_unavailable(caplog) -> None:
    # Nothing listens on port 1: every connection is refused at once.
    engine = db.make_read_only_engine("postgresql+psycopg://wfm:secret-pw@127.0.0.1:1/wfm")
    with serving(api.create_app(engine, "Europe/Stockholm", 30, api.api_keys({"WFM_API_KEYS": "k"}))) as url:
        status, body = get(f"{url}/v1/health")
        assert (status, body["status"], body["database"]) == (503, "unavailable", "unreachable")
        status, body = get(f"{url}/v1/forecasts/daily", key="k")
        assert status == 503 and "unavailable" in body["detail"] and "secret-pw" not in body["detail"]
    engine.dispose()
    assert "database error: OperationalError" in caplog.text and "secret-pw" not in caplog.text


def test_without_the_api_extra_the_command_says_what_to_install() -> None:
    block = "import runpy, sys; sys.modules['fastapi'] = None; runpy.run_module('common.api', run_name='__main__')"
    done = subprocess.run([sys.executable, "-c", block], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == ('wfm-api: fastapi is not installed; install the api extra: pip install '
                                   '"wfm-forecast[api]" (in a clone: .venv/bin/pip install ".[api]")')
